"""The connection core's phase table, its timer, its bounded WebSocket queue,
and the bad input it refuses at once (sans-IO: no sockets)."""

from __future__ import annotations

import math

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from tinyws.errors import ASGIProtocolError
from tinyws.server.config import Limits
from tinyws.server.connection import ServerConnection
from tinyws.server.phases import Event, Phase, advance

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def core(clock: Clock | None = None, **limits: object) -> ServerConnection:
    kind: type[ServerConnection] = ServerConnection
    if clock is not None:  # a core whose deadlines follow this clock
        kind = type("TimedConnection", (ServerConnection,), {"clock": staticmethod(clock)})
    return kind(Limits(**limits), ("127.0.0.1", 1), ("127.0.0.1", 2))  # type: ignore[arg-type]


def opened(clock: Clock | None = None, **limits: object) -> tuple[ServerConnection, Connection]:
    conn = core(clock, **limits)
    conn.receive_data(UPGRADE)
    assert conn.next_request() is not None
    assert conn.ws_receive() == {"type": "websocket.connect"}
    conn.ws_send({"type": "websocket.accept"})
    conn.take_output()
    return conn, Connection(ConnectionType.CLIENT)


# -- the table ---------------------------------------------------------------------


def test_every_phase_but_closed_can_end_and_closed_only_ends() -> None:
    for phase in Phase:
        assert advance(phase, Event.ENDED) is Phase.CLOSED
    for event in Event:
        if event is not Event.ENDED:
            with pytest.raises(ASGIProtocolError):
                advance(Phase.CLOSED, event)


def test_an_illegal_move_names_what_was_expected() -> None:
    expected = r"ACCEPT .* phase OPEN; expected CLOSE_SENT, ENDED"
    with pytest.raises(ASGIProtocolError, match=expected):
        advance(Phase.OPEN, Event.ACCEPT)


def test_next_request_outside_idle_is_refused_by_the_table() -> None:
    conn, _ = opened()
    with pytest.raises(ASGIProtocolError, match=r"REQUEST .* phase OPEN"):
        conn.next_request()


# -- bad input refused at once ---------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET / HTTP/1.1\nHost: x\n\n", id="bare-lf-head"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", id="one-bare-lf"),
        pytest.param(b"GET / HTTP/1.1\nHost: x\n", id="bare-lf-incomplete"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            id="chunked-twice",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            id="chunked-two-headers",
        ),
    ],
)
def test_heads_refused_with_400_at_once(data: bytes) -> None:
    conn = core()
    conn.receive_data(data)
    assert conn.next_request() is None
    assert conn.phase is Phase.CLOSED
    assert conn.take_output().startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"5\nhello", b"400", id="bare-lf-chunk-line"),
        pytest.param(b"ffffffffffffffffff\r\nabc", b"400", id="chunk-size-over-2**63"),
        pytest.param(b"ffffffff\r\nabc", b"413", id="chunk-over-the-limit"),
    ],
)
def test_chunked_bodies_that_cannot_end_well_are_refused_at_once(
    body: bytes, status: bytes
) -> None:
    conn = core()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert conn.next_request() is not None
    for _ in range(3):
        message = conn.http_receive()
        if message is not None and message["type"] == "http.disconnect":
            break
    else:
        pytest.fail("the app was never told")
    conn.http_finish(failed=False)
    assert conn.take_output().startswith(b"HTTP/1.1 " + status + b" ")
    assert conn.phase is Phase.CLOSED


# -- the timer ---------------------------------------------------------------------------


def test_head_and_keepalive_deadlines() -> None:
    clock = Clock()
    conn = core(clock, head_timeout=10.0, keepalive_timeout=5.0)
    assert conn.deadline == 1010.0
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.next_request() is not None
    assert conn.deadline == math.inf  # the app's time
    conn.http_send({"type": "http.response.start", "status": 204})
    conn.http_send({"type": "http.response.body"})
    clock.now = 2000.0
    conn.http_finish(failed=False)
    assert (conn.phase, conn.deadline) == (Phase.IDLE, 2005.0)
    clock.now = 2001.0
    conn.receive_data(b"GE")  # the next head started: the head timer runs
    assert conn.deadline == 2011.0
    assert conn.expire(2011.0) is True


def test_a_slow_body_must_keep_the_minimum_rate_after_the_grace() -> None:
    clock = Clock()
    conn = core(clock, head_timeout=10.0, min_data_rate=100.0)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n")
    assert conn.next_request() is not None
    assert conn.http_receive() is None
    assert conn.deadline == 1005.0  # grace 5 s, nothing seen yet
    clock.now = 1004.0
    conn.receive_data(b"x" * 300)
    assert conn.http_receive() is not None
    assert conn.http_receive() is None
    assert conn.deadline == 1008.0  # 300 bytes at 100 B/s buy 3 s more
    clock.now = 1007.9
    conn.receive_data(b"x")
    conn.http_receive()
    assert conn.http_receive() is None
    assert conn.deadline == pytest.approx(1008.01)  # not the pause timeout (1017.9)


def test_keepalive_pings_then_drops_a_silent_client() -> None:
    clock = Clock()
    conn, client = opened(clock, ping_interval=20.0, ping_timeout=5.0)
    assert conn.deadline == 1020.0
    assert conn.expire(1020.0) is False
    client.receive_data(conn.take_output())
    assert isinstance(next(client.events()), Ping)
    assert conn.deadline == 1025.0
    conn.receive_data(client.send(Pong()))
    assert conn.expire(1025.0) is False
    assert conn.deadline == 1045.0  # heard from: the next interval
    assert conn.expire(1045.0) is False  # silent: a ping
    assert conn.expire(1050.0) is True  # still silent: drop


# -- the bounded queue ----------------------------------------------------------------


def test_the_queue_pauses_reading_when_full_and_pings_are_answered_meanwhile() -> None:
    conn, client = opened(max_queue=2)
    data = b"".join(client.send(TextMessage(data=str(i))) for i in range(3))
    conn.receive_data(data + client.send(Ping(b"p")))
    assert conn.ws_paused()
    assert conn.ws_queued() == 2
    assert conn.ws_receive() == {"type": "websocket.receive", "text": "0"}
    assert not conn.ws_paused()
    assert [conn.ws_receive(), conn.ws_receive()] == [
        {"type": "websocket.receive", "text": "1"},
        {"type": "websocket.receive", "text": "2"},
    ]
    client.receive_data(conn.take_output())
    assert list(client.events()) == [Pong(b"p")]


def test_a_close_is_answered_while_the_app_is_not_receiving() -> None:
    conn, client = opened()
    conn.receive_data(client.send(TextMessage(data="unread")))
    conn.receive_data(client.send(CloseConnection(code=4001, reason="bye")))
    assert conn.phase is Phase.CLOSED
    client.receive_data(conn.take_output())
    assert isinstance(next(client.events()), CloseConnection)
    assert conn.ws_receive() == {"type": "websocket.receive", "text": "unread"}
    assert conn.ws_receive() == {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}
    assert conn.ws_receive() == {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}


def test_after_the_app_returned_queued_messages_are_dropped_not_kept() -> None:
    conn, client = opened(max_queue=1)
    conn.receive_data(client.send(TextMessage(data="a")) + client.send(TextMessage(data="b")))
    assert conn.ws_paused()
    conn.ws_finish(failed=False)
    assert conn.phase is Phase.CLOSING
    conn.receive_data(client.send(TextMessage(data="c")))
    assert not conn.ws_paused()


def test_a_failure_behind_unread_messages_closes_after_the_apps_answer() -> None:
    # Autobahn 3.2: a good message, then a frame with RSV bits set, arriving together.
    conn, client = opened()
    bad = bytearray(client.send(TextMessage(data="bad")))
    bad[0] |= 0x20  # RSV2
    conn.receive_data(client.send(TextMessage(data="good")) + bytes(bad))
    assert conn.take_output() == b""  # nothing yet: the app has not read "good"
    assert conn.ws_receive() == {"type": "websocket.receive", "text": "good"}
    conn.ws_send({"type": "websocket.send", "text": "good"})  # the echo goes first
    client.receive_data(conn.take_output())
    events = list(client.events())
    assert isinstance(events[0], TextMessage) and events[0].data == "good"
    assert isinstance(events[1], CloseConnection) and events[1].code == 1002
    message = conn.ws_receive()
    assert message is not None and message["code"] == 1002
