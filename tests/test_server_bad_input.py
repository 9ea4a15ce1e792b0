"""Bad input and exhaustion, over raw sockets against the in-process server
(both backends): each is answered at once or dropped on time, and never
costs another client its service."""

from __future__ import annotations

import logging
import socket
import time

import anyio
import pytest

from tests.server_helpers import (
    connect,
    echo_app,
    read_response,
    read_until_close,
    running,
    upgrade_head,
)
from tinyws.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio
CHUNKED_POST = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"


async def answer_of(server: object, data: bytes) -> tuple[bytes, float]:
    """What the server sends until it closes, and how long that took."""
    start = time.monotonic()
    async with await connect(server) as stream:  # type: ignore[arg-type]
        await stream.send(data)
        reply = await read_until_close(stream)
    return reply, time.monotonic() - start


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET / HTTP/1.1\nHost: t\n\n", id="bare-lf-head"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", id="one-bare-lf-line"),
        pytest.param(CHUNKED_POST + b"5\nhello\n0\n\n", id="bare-lf-chunked-body"),
        pytest.param(CHUNKED_POST + b"fffffffffffffffffff\r\nabc", id="huge-chunk-size"),
        pytest.param(
            CHUNKED_POST.replace(b"chunked", b"chunked, chunked") + b"0\r\n\r\n",
            id="chunked-chunked",
        ),
    ],
)
async def test_malformed_framing_is_400_at_once(data: bytes) -> None:
    async with running(echo_app, max_body_bytes=None) as server:
        reply, took = await answer_of(server, data)
        assert reply.startswith(b"HTTP/1.1 400 "), reply
        assert took < 1.0


async def test_a_chunk_over_the_body_limit_is_413_at_once() -> None:
    async with running(echo_app, max_body_bytes=1000) as server:
        reply, took = await answer_of(server, CHUNKED_POST + b"ffff\r\nabc")
        assert reply.startswith(b"HTTP/1.1 413 "), reply
        assert took < 1.0


@pytest.mark.parametrize(
    "start",
    [
        pytest.param({"status": 200, "headers": [("x-str", "v")]}, id="str-header"),
        pytest.param({"status": 200, "headers": [(b"x", b"a\r\nb: c")]}, id="crlf-in-value"),
        pytest.param({"status": "200", "headers": []}, id="str-status"),
        pytest.param({"status": 1000, "headers": []}, id="status-out-of-range"),
    ],
)
async def test_an_invalid_response_start_is_a_500(start: Message) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", **start})

    async with running(app) as server:
        reply, _ = await answer_of(server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 500 "), reply
        assert b"a\r\nb: c" not in reply


async def test_a_body_slower_than_the_minimum_rate_is_cut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tinyws.server.connection.RATE_GRACE", 0.5)
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect":
                return

    async with running(app, min_data_rate=100.0, head_timeout=5.0) as server:
        start = time.monotonic()
        async with await connect(server) as stream:
            await stream.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
            with anyio.fail_after(4):
                for _ in range(30):  # 10 bytes per 0.1 s: 100 B/s... minus the pauses
                    try:
                        await stream.send(b"x")
                    except (anyio.BrokenResourceError, OSError):
                        break
                    await anyio.sleep(0.1)
                await read_until_close(stream)
        took = time.monotonic() - start
        assert seen[-1] == "http.disconnect"
        assert took < 2.5  # the pause timeout alone (5 s) would not have ended it


async def test_a_client_leaving_mid_upload_is_one_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tinyws")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})  # raises

    async with running(app) as server:
        async with await connect(server) as stream:
            await stream.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
            await anyio.sleep(0.1)
        await anyio.sleep(0.2)
    records = [r for r in caplog.records if r.name == "tinyws.server"]
    assert [r.levelno for r in records if r.levelno >= logging.WARNING] == []
    left = [r for r in records if "client left" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in left] == [
        (logging.DEBUG, "client left during HTTP POST /up")
    ]


# -- at the connection cap ---------------------------------------------------------


async def test_at_the_cap_a_head_waiter_is_evicted_for_a_new_client() -> None:
    async with (
        running(echo_app, max_connections=2) as server,
        await connect(server) as slow1,
        await connect(server) as slow2,
    ):
        await slow1.send(b"GET / HTTP/1.1\r\n")  # heads that never end
        await anyio.sleep(0.05)
        await slow2.send(b"GET / HTTP/1.1\r\n")
        await anyio.sleep(0.05)
        async with await connect(server) as normal:
            await normal.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert (await read_response(normal)).startswith(b"HTTP/1.1 200 ")
        assert await read_until_close(slow1) == b""  # the oldest went first


async def test_at_the_cap_a_slow_body_is_evicted_for_a_new_client() -> None:
    async with running(echo_app, max_connections=1) as server, await connect(server) as slow:
        await slow.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nx")
        await anyio.sleep(0.3)  # now far under 240 B/s
        async with await connect(server) as normal:
            await normal.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert (await read_response(normal)).startswith(b"HTTP/1.1 200 ")


def _refused_cleanly(port: int) -> bool:
    """A client that sends its whole request at once reads the 503, no reset."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" + b"x" * 20000)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            return False
    return data.startswith(b"HTTP/1.1 503 ")


async def test_a_refused_client_reads_its_503_rather_than_a_reset() -> None:
    async with running(echo_app, max_connections=1) as server, await connect(server) as holder:
        await holder.send(upgrade_head("/hold"))
        assert (await read_response(holder)).startswith(b"HTTP/1.1 101 ")
        for _ in range(10):
            assert await anyio.to_thread.run_sync(_refused_cleanly, server.port)


async def test_reconnecting_slowloris_at_the_cap_leaves_normal_clients_served() -> None:
    cap, attackers = 20, 24
    served = tried = 0

    async def slowloris() -> None:
        while True:  # reconnect as soon as dropped, trickle a head forever
            try:
                async with await connect(server) as stream:
                    await stream.send(b"GET / HTTP/1.1\r\n")
                    while True:
                        await anyio.sleep(0.2)
                        await stream.send(b"X: y\r\n")
            except (OSError, anyio.BrokenResourceError, anyio.EndOfStream):
                await anyio.sleep(0.01)

    async def normal() -> None:
        nonlocal served, tried
        tried += 1
        start = time.monotonic()
        async with await connect(server) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            with anyio.move_on_after(1.0):
                reply = await read_response(stream)
                if reply.startswith(b"HTTP/1.1 200 ") and time.monotonic() - start < 1.0:
                    served += 1

    async with running(echo_app, max_connections=cap) as server, anyio.create_task_group() as tg:
        for _ in range(attackers):
            tg.start_soon(slowloris)
        await anyio.sleep(0.5)
        for _ in range(40):
            await normal()
            await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    assert served >= 0.95 * tried, (served, tried)
