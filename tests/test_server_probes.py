"""Raw-socket probes of the built-in server: bad input, limits, broken apps.

The server runs as a real process (``python -m tinyws serve``) with the raw
``tests.apps.probe:app`` and deliberately small limits, once per anyio
backend. Each probe sends what a broken or hostile client would, asserts the
exact status line or close code that comes back (and that nothing else does:
no second response, no traceback), then checks that the server still serves
the next client, over HTTP and WebSocket.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests import wire
from tests.servers import RunningServer, run_server, stop
from tests.wire import Conn, read_response

MAX_HEADER_BYTES = 4096
MAX_BODY_BYTES = 1024
MAX_MESSAGE_BYTES = 1024
HEAD_TIMEOUT = 1.0
KEEPALIVE_TIMEOUT = 2.0
LIMIT_FLAGS = (
    "--max-header-bytes",
    str(MAX_HEADER_BYTES),
    "--max-body-bytes",
    str(MAX_BODY_BYTES),
    "--ws-max-message-bytes",
    str(MAX_MESSAGE_BYTES),
    "--head-timeout",
    str(HEAD_TIMEOUT),
    "--keepalive-timeout",
    str(KEEPALIVE_TIMEOUT),
)
PROBE_APP = "tests.apps.probe:app"
#: Point the shared-server probes at a peer instead, with its default limits:
#: how docs/servers.md compares the servers. Not a CI setting.
PROBED = os.environ.get("TINYWS_PROBE_SERVER", "tinyws")


@pytest.fixture(scope="module", params=["asyncio", "trio"] if PROBED == "tinyws" else [PROBED])
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    flags = ("--backend", request.param, *LIMIT_FLAGS) if PROBED == "tinyws" else ()
    with run_server(PROBED, PROBE_APP, flags) as running:
        yield running


def assert_still_serving(server: RunningServer) -> None:
    """The next client gets a normal answer, over HTTP and over WebSocket."""
    response = wire.http_get(server.address, b"/alive?after=probe")
    assert status_of(response) == b"HTTP/1.1 200", server.describe()
    assert response.body == b"GET /alive?after=probe"
    ws = open_ws(server, b"/ws/echo")
    ws.send_text("still here")
    assert ws.receive() == wire.Frame(wire.TEXT, b"still here")
    assert ws.close(1000).close_code == 1000
    ws.conn.close()


def exchange(server: RunningServer, data: bytes) -> tuple[wire.Response, bytes]:
    """Send ``data``; return the response and all the server sent after it."""
    with Conn(server.address) as conn:
        conn.send(data)
        response = read_response(conn)
        return response, conn.read_to_eof()


def status_of(response: wire.Response) -> bytes:
    """``HTTP/1.1 NNN``: the reason phrase is free text, the rest is not."""
    return b" ".join(response.status_line.split(b" ", 2)[:2])


def assert_refused(server: RunningServer, data: bytes, status: int) -> wire.Response:
    """``data`` gets exactly this status, then the connection closes."""
    response, after = exchange(server, data)
    assert status_of(response) == b"HTTP/1.1 %d" % status, (response.head, server.describe())
    assert after == b"", f"server sent more after {status}: {after!r}"
    assert b"Traceback" not in response.body
    assert_still_serving(server)
    return response


def open_ws(server: RunningServer, target: bytes) -> wire.WebSocket:
    conn, response = wire.connect_ws(server.address, target)
    assert status_of(response) == b"HTTP/1.1 101", server.describe()
    return wire.WebSocket(conn, response)


def assert_closed_with(server: RunningServer, frames: bytes, code: int) -> None:
    """After ``frames`` the server sends a close frame with ``code``, then closes."""
    ws = open_ws(server, b"/ws/echo")
    ws.conn.send(frames)
    frame = ws.receive()
    assert frame.opcode == wire.CLOSE, frame
    assert frame.close_code == code, (frame, server.describe())
    ws.conn.send(wire.close_frame(code))
    assert ws.conn.read_to_eof() == b""
    ws.conn.close()
    assert_still_serving(server)


# -- HTTP: malformed requests ---------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="no-target"),
        pytest.param(b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", id="extra-token"),
        pytest.param(b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n", id="nul-in-method"),
        pytest.param(b"GET / HTTX/1.1\r\nHost: x\r\n\r\n", id="bad-version"),
        pytest.param(b"GET /\r\n\r\n", id="http-0.9"),
    ],
)
def test_malformed_request_line_is_400(server: RunningServer, data: bytes) -> None:
    assert_refused(server, data, 400)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(b"Host: x\r\nNo-colon-here\r\n", id="no-colon"),
        pytest.param(b"Host: x\r\nBad Name: v\r\n", id="space-in-name"),
        pytest.param(b"Host: x\r\nX: a\x00b\r\n", id="nul-in-value"),
        pytest.param(b"Host: x\r\nContent-Length: abc\r\n", id="bad-content-length"),
        pytest.param(b"Host: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n", id="two-lengths"),
        pytest.param(b"Accept: */*\r\n", id="no-host"),
    ],
)
def test_malformed_headers_are_400(server: RunningServer, headers: bytes) -> None:
    data = b"POST /body HTTP/1.1\r\n" + headers + b"\r\n"
    assert_refused(server, data, 400)


def test_transfer_coding_without_chunked_last_is_refused(server: RunningServer) -> None:
    # RFC 9112 says both: 400 when chunked is not the final coding (6.3), 501
    # for a coding the server does not implement (6.1). Either way the body
    # length is unknown, so the connection must close unread.
    data = b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxyz"
    response, after = exchange(server, data)
    assert status_of(response) in (b"HTTP/1.1 400", b"HTTP/1.1 501"), response.head
    assert after == b""
    assert_still_serving(server)


def test_content_length_with_transfer_encoding_is_400_and_not_smuggled(
    server: RunningServer,
) -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    data = (
        b"POST /body HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body)
    ) + body
    response = assert_refused(server, data, 400)
    assert b"smuggled" not in response.body


def test_absolute_form_target_is_routed_to_its_path(server: RunningServer) -> None:
    host = b"127.0.0.1:%d" % server.port
    data = b"GET http://" + host + b"/some/path?x=1 HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    with Conn(server.address) as conn:
        conn.send(data)
        response = read_response(conn)
    assert status_of(response) == b"HTTP/1.1 200"
    assert response.body == b"GET /some/path?x=1"
    assert_still_serving(server)


def test_http_2_request_line_is_505(server: RunningServer) -> None:
    assert_refused(server, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505)


# -- HTTP: limits ------------------------------------------------------------------


def test_too_large_head_is_431(server: RunningServer) -> None:
    data = wire.request(b"GET", b"/", [(b"X-Big", b"a" * (MAX_HEADER_BYTES + 1))])
    assert_refused(server, data, 431)


def test_too_large_body_is_413(server: RunningServer) -> None:
    data = wire.request(b"POST", b"/body", body=b"b" * (MAX_BODY_BYTES + 1))
    assert_refused(server, data, 413)


def test_too_large_chunked_body_is_413(server: RunningServer) -> None:
    chunk = b"c" * 600
    data = (
        b"POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"258\r\n" + chunk + b"\r\n") * 2
        + b"0\r\n\r\n"
    )
    assert_refused(server, data, 413)


def test_body_at_the_limit_is_served(server: RunningServer) -> None:
    body = b"b" * MAX_BODY_BYTES
    with Conn(server.address) as conn:
        conn.send(wire.request(b"POST", b"/body", body=body))
        response = read_response(conn)
    assert status_of(response) == b"HTTP/1.1 200"
    assert response.body == body


def test_slow_head_is_closed_after_the_head_timeout(server: RunningServer) -> None:
    started = time.monotonic()
    with Conn(server.address, timeout=HEAD_TIMEOUT + 4) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for n in range(40):  # one header line every 0.1 s: never a complete head
            try:
                conn.send(b"X-%d: y\r\n" % n)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - started > HEAD_TIMEOUT + 2:
                break
        after = conn.read_to_eof() if not closed else b""
    elapsed = time.monotonic() - started
    assert elapsed < HEAD_TIMEOUT + 2, f"slow head still open after {elapsed:.1f}s"
    assert after == b"" or after.startswith(b"HTTP/1.1 408 "), after
    assert_still_serving(server)


def test_idle_keepalive_connection_is_closed_after_its_timeout(server: RunningServer) -> None:
    with Conn(server.address, timeout=KEEPALIVE_TIMEOUT + 4) as conn:
        conn.send(wire.request(b"GET", b"/first"))
        assert read_response(conn).body == b"GET /first?"
        time.sleep(0.5)
        conn.send(wire.request(b"GET", b"/second"))
        assert read_response(conn).body == b"GET /second?"
        idle_from = time.monotonic()
        assert conn.read_to_eof() == b""
        idle = time.monotonic() - idle_from
    assert KEEPALIVE_TIMEOUT - 0.5 < idle < KEEPALIVE_TIMEOUT + 1.5, f"closed after {idle:.1f}s"


def test_pipelined_requests_are_answered_in_order(server: RunningServer) -> None:
    with Conn(server.address) as conn:
        conn.send(b"".join(wire.request(b"GET", b"/%d" % n) for n in range(3)))
        bodies = [read_response(conn).body for _ in range(3)]
    assert bodies == [b"GET /0?", b"GET /1?", b"GET /2?"]


def test_connections_over_the_limit_get_503() -> None:
    flags = ("--max-connections", "2", "--head-timeout", "30")
    with run_server("tinyws", PROBE_APP, flags) as server:
        time.sleep(0.3)  # let the server reap the harness's readiness probe
        # Open WebSockets hold the places (a connection still waiting for its
        # head would be evicted instead: see the slowloris tests).
        first, second = open_ws(server, b"/ws/echo"), open_ws(server, b"/ws/echo")
        response, after = exchange(server, wire.request(b"GET", b"/three"))
        assert status_of(response) == b"HTTP/1.1 503", response.head
        assert after == b""
        first.conn.close()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the server notices the close soon
            response = wire.http_get(server.address, b"/four")
            if response.status == 200:
                break
            time.sleep(0.1)
        second.conn.close()
        assert response.body == b"GET /four?"


# -- HTTP: broken apps ---------------------------------------------------------------


@pytest.mark.parametrize("target", [b"/raise", b"/return"])
def test_app_without_a_response_is_500(server: RunningServer, target: bytes) -> None:
    with Conn(server.address) as conn:
        conn.send(wire.request(b"GET", target))
        response = read_response(conn)
    assert status_of(response) == b"HTTP/1.1 500"
    assert b"Traceback" not in response.body
    assert b"ProbeError" not in response.body
    assert_still_serving(server)


# -- WebSocket: handshakes -----------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(None, id="missing"),
        pytest.param(b"", id="empty"),
        pytest.param(b"not base64!", id="not-base64"),
        pytest.param(b"c2hvcnQ=", id="not-16-bytes"),
    ],
)
def test_bad_websocket_key_is_400(server: RunningServer, key: bytes | None) -> None:
    assert_refused(server, wire.handshake(b"/ws/echo", key=key), 400)


def test_websocket_version_8_is_426(server: RunningServer) -> None:
    response = assert_refused(server, wire.handshake(b"/ws/echo", version=b"8"), 426)
    assert response.header(b"sec-websocket-version") == b"13"


def test_close_before_accept_is_403(server: RunningServer) -> None:
    conn, response = wire.connect_ws(server.address, b"/ws/close-early")
    conn.close()
    assert status_of(response) == b"HTTP/1.1 403"
    assert_still_serving(server)


def test_denial_response_is_sent_as_given(server: RunningServer) -> None:
    conn, response = wire.connect_ws(server.address, b"/ws/deny")
    conn.close()
    assert status_of(response) == b"HTTP/1.1 404"
    assert response.header(b"content-type") == b"application/json"
    assert response.header(b"upgrade") is None
    assert response.body == b'{"error":"denied"}'
    assert_still_serving(server)


@pytest.mark.parametrize("target", [b"/ws/raise", b"/ws/return"])
def test_app_without_a_handshake_reply_is_500(server: RunningServer, target: bytes) -> None:
    conn, response = wire.connect_ws(server.address, target)
    conn.close()
    assert status_of(response) == b"HTTP/1.1 500"
    assert b"Traceback" not in response.body
    assert_still_serving(server)


def test_scope_advertises_the_denial_extension(server: RunningServer) -> None:
    ws = open_ws(server, b"/ws/facts")
    facts = json.loads(ws.receive().payload)
    ws.conn.close()
    assert "websocket.http.response" in facts["extensions"]
    assert facts["request_state"] == "yes"


# -- WebSocket: frames ---------------------------------------------------------------


def test_crash_after_accept_is_1011(server: RunningServer) -> None:
    ws = open_ws(server, b"/ws/crash")
    frame = ws.receive()
    ws.conn.close()
    assert frame.close_code == 1011
    assert b"Traceback" not in frame.close_reason
    assert_still_serving(server)


def test_invalid_utf8_text_is_1007(server: RunningServer) -> None:
    assert_closed_with(server, wire.encode_frame(wire.TEXT, b"caf\xc3"), 1007)


def test_invalid_utf8_across_fragments_is_1007(server: RunningServer) -> None:
    frames = wire.encode_frame(wire.TEXT, b"ok \xed", fin=False) + wire.encode_frame(
        wire.CONTINUATION,
        b"\xa0\x80",  # a UTF-16 surrogate: never valid UTF-8
    )
    assert_closed_with(server, frames, 1007)


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(wire.encode_frame(wire.TEXT, b"hi", mask=False), id="unmasked"),
        pytest.param(wire.encode_frame(0x3, b"hi"), id="reserved-opcode"),
        pytest.param(wire.encode_frame(0xB, b""), id="reserved-control-opcode"),
        pytest.param(wire.encode_frame(wire.TEXT, b"hi", rsv=0b010), id="rsv-bits"),
        pytest.param(wire.encode_frame(wire.PING, b"", fin=False), id="fragmented-ping"),
        pytest.param(wire.encode_frame(wire.PING, b"p" * 126), id="long-ping"),
        pytest.param(wire.encode_frame(wire.CONTINUATION, b"x"), id="orphan-continuation"),
        pytest.param(
            wire.encode_frame(wire.TEXT, b"a", fin=False) + wire.encode_frame(wire.TEXT, b"b"),
            id="new-message-inside-fragmented",
        ),
        pytest.param(wire.encode_frame(wire.CLOSE, b"\x03"), id="one-byte-close"),
        pytest.param(wire.close_frame(1005), id="close-code-1005"),
        pytest.param(wire.close_frame(999), id="close-code-999"),
    ],
)
def test_protocol_error_is_1002(server: RunningServer, frames: bytes) -> None:
    assert_closed_with(server, frames, 1002)


def test_too_large_message_is_1009(server: RunningServer) -> None:
    assert_closed_with(server, wire.encode_frame(wire.BINARY, b"m" * (MAX_MESSAGE_BYTES + 1)), 1009)


def test_too_large_fragmented_message_is_1009(server: RunningServer) -> None:
    half = b"f" * (MAX_MESSAGE_BYTES // 2 + 1)
    frames = wire.encode_frame(wire.TEXT, half, fin=False) + wire.encode_frame(
        wire.CONTINUATION, half
    )
    assert_closed_with(server, frames, 1009)


def test_message_at_the_limit_is_echoed(server: RunningServer) -> None:
    ws = open_ws(server, b"/ws/echo")
    ws.send_bytes(b"m" * MAX_MESSAGE_BYTES)
    assert ws.receive() == wire.Frame(wire.BINARY, b"m" * MAX_MESSAGE_BYTES)
    assert ws.close(1000).close_code == 1000
    ws.conn.close()


def test_client_close_code_and_reason_are_echoed(server: RunningServer) -> None:
    ws = open_ws(server, b"/ws/echo")
    ws.conn.send(wire.close_frame(4321, b"bye"))
    frame = ws.receive()
    assert frame.opcode == wire.CLOSE
    assert frame.close_code == 4321
    assert ws.conn.read_to_eof() == b""
    ws.conn.close()


def test_pings_keep_an_answering_client_and_drop_a_silent_one() -> None:
    flags = ("--ws-ping-interval", "0.3", "--ws-ping-timeout", "0.6")
    with run_server("tinyws", PROBE_APP, flags) as server:
        answering = open_ws(server, b"/ws/echo")
        pings, started = 0, time.monotonic()
        while time.monotonic() - started < 2:  # longer than interval + timeout
            frame = wire.read_frame(answering.conn)
            assert frame.opcode == wire.PING, frame
            answering.conn.send(wire.encode_frame(wire.PONG, frame.payload))
            pings += 1
        assert pings >= 3
        answering.send_text("still here")
        assert answering.receive() == wire.Frame(wire.TEXT, b"still here")
        assert answering.close(1000).close_code == 1000
        answering.conn.close()

        silent = open_ws(server, b"/ws/echo")
        assert wire.read_frame(silent.conn).opcode == wire.PING  # no pong goes back
        started = time.monotonic()
        frames = []
        while (last := wire.read_frame_or_none(silent.conn)) is not None:
            frames.append(last)
        dropped_after = time.monotonic() - started
        silent.conn.close()
        assert dropped_after < 3, f"silent client kept for {dropped_after:.1f}s"
        assert all(f.opcode in (wire.PING, wire.CLOSE) for f in frames), frames


# -- process lifecycle ---------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_websockets_with_1001_and_exits_0(sig: int) -> None:
    with run_server("tinyws", PROBE_APP) as server:
        ws = open_ws(server, b"/ws/echo")
        ws.send_text("before")
        assert ws.receive() == wire.Frame(wire.TEXT, b"before")
        server.process.send_signal(sig)
        frame = ws.receive()
        assert frame.opcode == wire.CLOSE
        assert frame.close_code == 1001
        ws.conn.send(wire.close_frame(1001))
        ws.conn.close()
        assert stop(server) == 0, server.describe()


def test_failed_startup_exits_non_zero_with_the_message() -> None:
    with pytest.raises(RuntimeError, match=r"exited with [1-9]") as failed:  # noqa: SIM117
        with run_server("tinyws", "tests.apps.failing_startup:app"):
            pass
    assert "no database today" in str(failed.value)
