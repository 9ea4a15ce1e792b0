"""Every response the server writes itself carries a `Date` (RFC 9110 §6.6.1).

Checked twice: in the sans-IO core (each kind of server-made response), and
over real sockets against an in-process server, on both backends.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import anyio
import pytest

from tests.server_helpers import connect, read_response, running, upgrade_head
from tinyws.server.config import Limits
from tinyws.server.connection import ServerConnection
from tinyws.server.responses import FORBIDDEN, Canned, http_date, refresh_date
from tinyws.types import Message, Receive, Scope, Send

UPGRADE = upgrade_head("/ws").replace(b"Host: test", b"Host: server")
DENIAL_START: Message = {
    "type": "websocket.http.response.start",
    "status": 401,
    "headers": [(b"content-type", b"text/plain")],
}
DENIAL_BODY: Message = {"type": "websocket.http.response.body", "body": b"no"}


def date_of(response: bytes) -> float:
    """The Date header's time; fails when there is not exactly one."""
    head = response.split(b"\r\n\r\n", 1)[0]
    dates = [line for line in head.split(b"\r\n")[1:] if line.lower().startswith(b"date:")]
    assert len(dates) == 1, head
    return parsedate_to_datetime(dates[0][5:].strip().decode()).timestamp()


def assert_dated(response: bytes, status: int) -> None:
    assert response.startswith(b"HTTP/1.1 %d " % status), response
    assert abs(date_of(response) - time.time()) < 3


# -- the sans-IO core --------------------------------------------------------------


def core() -> ServerConnection:
    refresh_date()  # the runtime's tick, which the sans-IO core relies on
    return ServerConnection(Limits(max_header=1024), ("127.0.0.1", 5000), ("127.0.0.1", 80))


def handshake_answer(*messages: Message) -> bytes:
    conn = core()
    conn.receive_data(UPGRADE)
    assert conn.next_request() is not None
    assert conn.ws_receive() == {"type": "websocket.connect"}
    for message in messages:
        conn.ws_send(message)
    if not messages:
        conn.ws_finish(failed=True)
    return conn.take_output()


def refusal_of(data: bytes) -> bytes:
    conn = core()
    conn.receive_data(data)
    assert conn.next_request() is None
    return conn.take_output()


@pytest.mark.parametrize(
    ("messages", "status"),
    [
        pytest.param(({"type": "websocket.accept"},), 101, id="accept"),
        pytest.param((DENIAL_START, DENIAL_BODY), 401, id="denial"),
        pytest.param(({"type": "websocket.close"},), 403, id="close-before-accept"),
        pytest.param((), 500, id="no-reply"),
    ],
)
def test_handshake_answers_are_dated(messages: tuple[Message, ...], status: int) -> None:
    assert_dated(handshake_answer(*messages), status)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(b"GET / HTTP/1.1 x\r\n\r\n", 400, id="bad-request-line"),
        pytest.param(UPGRADE.replace(b"Version: 13", b"Version: 8"), 426, id="version"),
        pytest.param(b"GET / HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n", 431, id="too-big"),
        pytest.param(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, id="http-2"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n", 413, id="body"
        ),
    ],
)
def test_refusals_are_dated(data: bytes, status: int) -> None:
    assert_dated(refusal_of(data), status)


def test_an_app_date_on_a_denial_is_kept_not_doubled() -> None:
    start = {**DENIAL_START, "headers": [(b"date", b"Thu, 01 Jan 1970 00:00:00 GMT")]}
    answer = handshake_answer(start, DENIAL_BODY)
    assert date_of(answer) == 0


def test_canned_responses_get_the_current_date(monkeypatch: pytest.MonkeyPatch) -> None:
    first = FORBIDDEN()
    assert FORBIDDEN() is first  # encoded once per date
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert FORBIDDEN() is first  # the date moves with the runtime's tick only
    refresh_date()
    renewed = FORBIDDEN()
    assert date_of(renewed) == int(later)
    assert renewed.replace(http_date(), b"") == first.replace(date_line(first), b"")
    assert Canned(403)() == renewed
    monkeypatch.undo()
    refresh_date()  # the tests after this one see today's date again


def date_line(response: bytes) -> bytes:
    start = response.index(b"date: ") + 6
    return response[start : response.index(b"\r\n", start)]


# -- over real sockets ------------------------------------------------------------------


async def handshake_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return  # plain HTTP without a response: the server's 500
    await receive()
    path = scope["path"]
    if path == "/accept":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})
    elif path == "/deny":
        await send(DENIAL_START)
        await send(DENIAL_BODY)
    elif path == "/hold":
        await send({"type": "websocket.accept"})
        await receive()
    elif path == "/close":
        await send({"type": "websocket.close"})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(upgrade_head("/accept"), 101, id="accept"),
        pytest.param(upgrade_head("/deny"), 401, id="denial"),
        pytest.param(upgrade_head("/close"), 403, id="close-before-accept"),
        pytest.param(upgrade_head("/none"), 500, id="no-reply"),
        pytest.param(b"GET /http HTTP/1.1\r\nHost: x\r\n\r\n", 500, id="http-no-response"),
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="400"),
        pytest.param(upgrade_head("/x", version="8"), 426, id="426"),
        pytest.param(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431, id="431"),
        pytest.param(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, id="505"),
    ],
)
async def test_every_server_made_response_is_dated(request_bytes: bytes, status: int) -> None:
    async with running(handshake_app) as server, await connect(server) as stream:
        await stream.send(request_bytes)
        assert_dated(await read_response(stream), status)


@pytest.mark.anyio
async def test_503_at_the_connection_cap_is_dated() -> None:
    async with (
        running(handshake_app, max_connections=1) as server,
        await connect(server) as holder,
    ):
        await holder.send(upgrade_head("/hold"))  # an open WebSocket holds the only place
        assert (await read_response(holder)).startswith(b"HTTP/1.1 101 ")
        async with await connect(server) as refused:
            assert_dated(await read_response(refused), 503)


@pytest.mark.anyio
async def test_the_date_follows_the_clock_on_a_running_server() -> None:
    # The runtime's timer renews the value; a server that stopped doing so
    # would keep answering with the date it started with.
    async with running(handshake_app) as server:
        answers = []
        for _ in range(2):
            async with await connect(server) as stream:
                await stream.send(upgrade_head("/deny"))
                answers.append(await read_response(stream))
            await anyio.sleep(1.6)
    first, second = (date_of(answer) for answer in answers)
    assert 1 <= second - first <= 3
    assert_dated(answers[1], 401)
