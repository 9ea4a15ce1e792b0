"""SPEC §9: the access log, on by default, has a line for every WebSocket: its
path and handshake status (101 or the denial's) and, when it ends, its close
code and duration. Read from caplog (in-process, both backends) and from a
real `tinyws serve` process's stderr."""

from __future__ import annotations

import logging
import re
import time

import anyio
import pytest
from wsproto.events import CloseConnection, TextMessage

from tests import wire
from tests.server_helpers import connect, read_response, running, upgrade_head, ws_client
from tests.servers import run_server
from tinyws.types import Receive, Scope, Send

CLOSED = re.compile(r'^127\.0\.0\.1:\d+ - "WebSocket (\S+)" closed (\d+) after (\d+\.\d{3})s$')


async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return
    await receive()
    if scope["path"] == "/deny":
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no"})
    elif scope["path"] == "/close-early":
        await send({"type": "websocket.close"})
    else:
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tinyws.access"]


async def wait_for_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    with anyio.fail_after(3):
        while len(access_lines(caplog)) < count:
            await anyio.sleep(0.01)
    return access_lines(caplog)


@pytest.mark.anyio
async def test_an_accepted_websocket_has_a_101_line_then_a_closed_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tinyws.access")
    async with running(ws_app) as server, ws_client(server) as client:
        await client.handshake("/chat?room=1")
        opened = await wait_for_lines(caplog, 1)
        assert re.fullmatch(r'127\.0\.0\.1:\d+ - "WebSocket /chat\?room=1" 101', opened[0])
        await client.send(TextMessage(data="hi"))
        await anyio.sleep(0.2)
        await client.send(CloseConnection(code=4003, reason="bye"))
        lines = await wait_for_lines(caplog, 2)
    match = CLOSED.fullmatch(lines[1])
    assert match is not None, lines
    assert match[1] == "/chat?room=1" and match[2] == "4003"
    assert 0.2 <= float(match[3]) < 3


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "status"), [("/deny", 401), ("/close-early", 403)])
async def test_a_refused_handshake_has_one_line_with_its_status(
    caplog: pytest.LogCaptureFixture, path: str, status: int
) -> None:
    caplog.set_level(logging.INFO, logger="tinyws.access")
    async with running(ws_app) as server, await connect(server) as stream:
        await stream.send(upgrade_head(path))
        assert (await read_response(stream)).startswith(b"HTTP/1.1 %d " % status)
        await wait_for_lines(caplog, 1)
        await anyio.sleep(0.1)
    lines = access_lines(caplog)
    assert len(lines) == 1
    assert re.fullmatch(rf'127\.0\.0\.1:\d+ - "WebSocket {path}" {status}', lines[0])


@pytest.mark.anyio
async def test_no_access_log_means_no_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tinyws.access")
    async with running(ws_app, access_log=False) as server, ws_client(server) as client:
        await client.handshake("/quiet")
        await client.send(CloseConnection(code=1000))
        await client.expect_close()
        await anyio.sleep(0.1)
    assert access_lines(caplog) == []


def _one_websocket(server_address: tuple[str, int]) -> None:
    conn, response = wire.connect_ws(server_address, b"/ws/echo")
    assert response.status == 101
    ws = wire.WebSocket(conn, response)
    assert ws.close(1000).close_code == 1000
    conn.close()


def test_the_serve_command_logs_websockets_by_default_and_not_with_no_access_log() -> None:
    for flags, expect in (((), True), (("--no-access-log",), False)):
        with run_server("tinyws", "tests.apps.probe:app", flags) as server:
            _one_websocket(server.address)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and ("closed 1000" in server.log()) != expect:
                time.sleep(0.05)
            log = server.log()
        assert ('"WebSocket /ws/echo" 101' in log) is expect, log
        assert bool(re.search(r'"WebSocket /ws/echo" closed 1000 after \d+\.\d{3}s', log)) is expect
