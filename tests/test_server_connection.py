"""The sans-IO core of the built-in server: no sockets, no event loop."""

from __future__ import annotations

import time

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)

from tinyws.errors import ASGIProtocolError, ClientDisconnect
from tinyws.server.config import Limits
from tinyws.server.connection import Phase, ServerConnection
from tinyws.server.heads import Offer, check_upgrade, parse_plain_head

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # the example key of RFC 6455 §1.3
UPGRADE = (
    b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def connection(**limits: object) -> ServerConnection:
    return ServerConnection(Limits(**limits), ("127.0.0.1", 5000), ("127.0.0.1", 80))  # type: ignore[arg-type]


def state_of(conn: ServerConnection) -> Phase:
    """Read the state through a call, so mypy does not narrow it between steps."""
    return conn.phase


def fed(data: bytes, **limits: object) -> ServerConnection:
    conn = connection(**limits)
    conn.receive_data(data)
    return conn


# -- the fast head parser ---------------------------------------------------------


def test_plain_upgrade_head_is_parsed_fast() -> None:
    head = parse_plain_head(UPGRADE[:-4])
    assert head is not None
    assert head.target == b"/chat?room=1"
    assert (b"host", b"server.example.com") in head.headers
    assert (b"sec-websocket-protocol", b"chat, superchat") in head.headers


def test_header_whitespace_is_trimmed_and_inner_kept() -> None:
    extra = b"X-One: \t a \t b \t\r\nX-Empty:  \r\nX-Bare:v\r\n"
    head = parse_plain_head(UPGRADE[:-4] + b"\r\n" + extra[:-2])
    assert head is not None
    assert head.headers[-3:] == [(b"x-one", b"a \t b"), (b"x-empty", b""), (b"x-bare", b"v")]


def test_long_runs_of_spaces_in_a_value_parse_in_linear_time() -> None:
    # Each run of spaces inside a value once made the line's regex try every
    # split point: a 16 KiB head cost seconds of CPU. Now it is about 0.3 ms.
    value = b"a" + b" " * 16000 + b"b"
    start = time.perf_counter()
    head = parse_plain_head(UPGRADE[:-4] + b"\r\nX-Spaces: " + value)
    elapsed = time.perf_counter() - start
    assert head is not None
    assert head.headers[-1] == (b"x-spaces", value)
    assert elapsed < 0.2


@pytest.mark.parametrize(
    "change",
    [
        (b"GET /chat", b"POST /chat"),  # not GET
        (b"Upgrade: websocket\r\n", b"Upgrade: websocket\r\n folded\r\n"),  # obs-fold
        (b"Upgrade: websocket\r\n", b"Upgrade: websocket\nX: bare-lf\r\n"),
        (b"Upgrade: websocket\r\n", b"Upgrade: websocket\rX: bare-cr\r\n"),
        (b"Host: server.example.com\r\n", b""),  # no Host
        (b"Host: server.example.com\r\n", b"Host: a\r\nHost: b\r\n"),  # two
        (b"Upgrade: websocket\r\n", b"Upgrade: websocket\r\nContent-Length: 0\r\n"),
        (b"Upgrade: websocket\r\n", b"Upgrade: websocket\r\nTransfer-Encoding: chunked\r\n"),
        (b"Upgrade: websocket\r\n", b""),  # not an upgrade at all
        (b"HTTP/1.1", b"HTTP/1.0"),
        (b"GET /chat", b"GET http://x/chat"),  # absolute form
    ],
)
def test_unusual_heads_are_left_to_h11(change: tuple[bytes, bytes]) -> None:
    assert parse_plain_head(UPGRADE.replace(*change)[:-4]) is None


def test_upgrade_validation() -> None:
    head = parse_plain_head(UPGRADE[:-4])
    assert head is not None
    offer = check_upgrade(head)
    assert isinstance(offer, Offer)
    assert offer.subprotocols == ["chat", "superchat"]
    for version in (b"8", b"13, 8"):
        head.headers = [
            (n, version if n == b"sec-websocket-version" else v) for n, v in head.headers
        ]
        refusal = check_upgrade(head)
        assert isinstance(refusal, bytes)
        assert refusal.startswith(b"HTTP/1.1 426 ")
        assert b"\r\nsec-websocket-version: 13\r\n" in refusal


@pytest.mark.parametrize(
    "key",
    [
        b"",
        b"short",
        b"!" * 24,
        b"AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        b"A" * 24,  # 18 bytes
        b"A" * 23 + b"=",  # 17 bytes
        b"A" * 21 + b"===",
        b"A" * 20 + b"=A==",
        b"A" * 21 + b"-==",  # base64url, not base64
    ],
)
def test_invalid_key_is_400(key: bytes) -> None:
    conn = fed(UPGRADE.replace(KEY, key))
    assert conn.next_request() is None
    assert state_of(conn) is Phase.CLOSED
    assert conn.take_output().startswith(b"HTTP/1.1 400 ")


# -- HTTP -----------------------------------------------------------------------


def test_http_cycle_and_keep_alive() -> None:
    conn = fed(b"GET /a%2Fb?x=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
    scope = conn.next_request()
    assert scope is not None
    assert (scope["type"], scope["method"], scope["path"]) == ("http", "GET", "/a/b")
    assert (scope["raw_path"], scope["query_string"]) == (b"/a%2Fb", b"x=1")
    assert conn.http_receive() == {"type": "http.request", "body": b"", "more_body": False}
    conn.http_send({"type": "http.response.start", "status": 200, "headers": [(b"X-A", b"1")]})
    assert conn.output == b""  # the head waits for the first body chunk
    conn.http_send({"type": "http.response.body", "body": b"hi"})
    out = conn.take_output()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"x-a: 1\r\n" in out
    assert b"content-length: 2\r\n" in out
    assert out.endswith(b"\r\n\r\nhi")
    conn.http_finish(failed=False)
    assert state_of(conn) is Phase.IDLE
    scope = conn.next_request()
    assert scope is not None
    assert scope["path"] == "/next"


@pytest.mark.parametrize(("method", "status"), [(b"GET", 204), (b"GET", 304), (b"HEAD", 200)])
def test_responses_without_body(method: bytes, status: int) -> None:
    conn = fed(method + b" / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.next_request() is not None
    conn.http_send({"type": "http.response.start", "status": status, "headers": []})
    conn.http_send({"type": "http.response.body", "body": b"dropped"})
    out = conn.take_output()
    assert out.endswith(b"\r\n\r\n")
    assert (b"content-length" in out) is (status == 200)
    conn.http_finish(failed=False)
    assert state_of(conn) is Phase.IDLE


def test_chunked_request_body_in_pieces() -> None:
    conn = fed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert conn.next_request() is not None
    assert conn.http_receive() == {"type": "http.request", "body": b"abc", "more_body": True}
    assert conn.http_receive() is None  # more bytes needed
    conn.receive_data(b"0\r\n\r\n")
    assert conn.http_receive() == {"type": "http.request", "body": b"", "more_body": False}


def test_expect_100_continue_written_when_body_is_read() -> None:
    conn = fed(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert conn.next_request() is not None
    assert conn.output == b""
    assert conn.http_receive() is None
    assert conn.take_output().startswith(b"HTTP/1.1 100 ")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", b"505"),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            b"400",
        ),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99\r\n\r\n", b"413"),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"y" * 200 + b"\r\n\r\n", b"431"),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"y" * 200, b"431"),  # still incomplete
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400"),  # TLS hello
    ],
)
def test_refused_heads(data: bytes, status: bytes) -> None:
    conn = fed(data, max_header=100, max_body=10)
    assert conn.next_request() is None
    assert state_of(conn) is Phase.CLOSED
    out = conn.take_output()
    assert out.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"connection: close\r\n" in out


def test_other_upgrades_are_plain_http() -> None:
    conn = fed(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
    scope = conn.next_request()
    assert scope is not None
    assert scope["type"] == "http"


def test_broken_chunked_body_is_400() -> None:
    conn = fed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert conn.next_request() is not None
    assert conn.http_receive() == {"type": "http.disconnect"}
    conn.http_finish(failed=False)
    assert conn.take_output().startswith(b"HTTP/1.1 400 ")
    assert state_of(conn) is Phase.CLOSED


def test_partial_head_waits_then_eof_closes_quietly() -> None:
    conn = fed(b"GET / HTT")
    assert conn.next_request() is None
    assert state_of(conn) is Phase.IDLE
    conn.receive_data(b"")
    assert conn.next_request() is None
    assert state_of(conn) is Phase.CLOSED
    assert conn.output == b""


def test_app_without_response_gets_500_and_close() -> None:
    conn = fed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.next_request() is not None
    conn.http_finish(failed=True)
    assert conn.take_output().startswith(b"HTTP/1.1 500 ")
    assert state_of(conn) is Phase.CLOSED


def test_http_misuse_is_reported() -> None:
    conn = fed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.next_request() is not None
    with pytest.raises(ASGIProtocolError, match=r"expected http\.response\.start"):
        conn.http_send({"type": "http.response.body", "body": b""})
    with pytest.raises(ValueError, match="invalid response header"):
        conn.http_send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nb: c")]}
        )


# -- WebSocket --------------------------------------------------------------------


def accepted(**limits: object) -> tuple[ServerConnection, Connection]:
    conn = fed(UPGRADE, **limits)
    scope = conn.next_request()
    assert scope is not None
    assert conn.ws_receive() == {"type": "websocket.connect"}
    conn.ws_send({"type": "websocket.accept", "subprotocol": "chat"})
    out = conn.take_output()
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in out
    assert b"sec-websocket-protocol: chat\r\n" in out
    return conn, Connection(ConnectionType.CLIENT)


def test_websocket_scope() -> None:
    scope = fed(UPGRADE).next_request()
    assert scope is not None
    assert scope["type"] == "websocket"
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["scheme"] == "ws"
    assert "method" not in scope


def test_websocket_messages_both_ways() -> None:
    conn, client = accepted()
    conn.receive_data(client.send(TextMessage(data="a", message_finished=False)))
    assert conn.ws_receive() is None
    conn.receive_data(client.send(TextMessage(data="b")) + client.send(BytesMessage(data=b"c")))
    assert conn.ws_receive() == {"type": "websocket.receive", "text": "ab"}
    assert conn.ws_receive() == {"type": "websocket.receive", "bytes": b"c"}
    conn.ws_send({"type": "websocket.send", "text": "out"})
    client.receive_data(conn.take_output())
    assert [e.data for e in client.events()] == ["out"]  # type: ignore[attr-defined]


def test_ping_answered_and_close_handshake() -> None:
    conn, client = accepted()
    conn.receive_data(client.send(Ping(payload=b"p")))
    assert conn.ws_receive() is None
    client.receive_data(conn.take_output())
    assert list(client.events()) == [Pong(payload=b"p")]
    conn.receive_data(client.send(CloseConnection(code=4000, reason="bye")))
    message = conn.ws_receive()
    assert message == {"type": "websocket.disconnect", "code": 4000, "reason": "bye"}
    assert state_of(conn) is Phase.CLOSED
    client.receive_data(conn.take_output())
    assert isinstance(next(client.events()), CloseConnection)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x81\x00", 1002),  # unmasked
        (b"\x83\x80\0\0\0\0", 1002),  # reserved opcode
        (b"\x81\x81\0\0\0\0\xff", 1007),  # invalid UTF-8
    ],
)
def test_bad_frames_fail_the_connection(frame: bytes, code: int) -> None:
    conn, client = accepted()
    conn.receive_data(frame)
    message = conn.ws_receive()
    assert message is not None
    assert message["code"] == code
    assert state_of(conn) is Phase.CLOSED
    client.receive_data(conn.take_output())
    close = next(client.events())
    assert isinstance(close, CloseConnection)
    assert close.code == code


def masked_close(payload: bytes, first: int = 0x88) -> bytes:
    """A client close frame with the mask 01 02 03 04 (wsproto cannot build bad ones)."""
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((first, 0x80 | len(payload))) + mask + body


def client_sees(conn: ServerConnection, client: Connection) -> CloseConnection:
    client.receive_data(conn.take_output())
    close = next(client.events())
    assert isinstance(close, CloseConnection)
    return close


@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"\x03\xe8", 1000, ""),
        (b"\x0f\xa0bye \xe2\x9c\x93", 4000, "bye \u2713"),
        (b"\x0b\xb8", 3000, ""),
        (b"", 1005, ""),  # no code: 1005 to the app, an empty close back
    ],
)
def test_first_frame_close_is_echoed(payload: bytes, code: int, reason: str) -> None:
    conn, client = accepted()
    conn.receive_data(masked_close(payload))
    assert conn.ws_receive() == {"type": "websocket.disconnect", "code": code, "reason": reason}
    assert state_of(conn) is Phase.CLOSED
    assert conn.linger is False
    close = client_sees(conn, client)
    assert (close.code, close.reason) == (code, reason)
    with pytest.raises(ClientDisconnect):
        conn.ws_send({"type": "websocket.send", "text": "late"})


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked_close(b"\x03\xe7"), 1002),  # below 1000
        (masked_close(b"\x03\xed"), 1002),  # 1005 is never sent on the wire
        (masked_close(b"\x03\xec"), 1002),  # 1004: reserved, unassigned
        (masked_close(b"\x0b\xb7"), 1002),  # 2999: reserved
        (masked_close(b"\x13\x88"), 1002),  # 5000: out of range
        (masked_close(b"\x03"), 1002),  # a one-byte payload
        (masked_close(b"\x03\xe8\xff"), 1007),  # reason not UTF-8
        (masked_close(b"\x03\xe8", first=0xC8), 1002),  # RSV1 without an extension
        (masked_close(b"\x03\xe8", first=0x08), 1002),  # fragmented control frame
        (b"\x88\x02\x03\xe8", 1002),  # unmasked
    ],
)
def test_first_frame_bad_close_fails(frame: bytes, code: int) -> None:
    conn, client = accepted()
    conn.receive_data(frame)
    message = conn.ws_receive()
    assert message is not None
    assert message["code"] == code
    assert state_of(conn) is Phase.CLOSED
    assert client_sees(conn, client).code == code


def test_close_in_pieces_and_with_bytes_after_it() -> None:
    conn, client = accepted()
    frame = masked_close(b"\x03\xe8ok")
    conn.receive_data(frame[:3])
    assert conn.ws_receive() is None
    conn.receive_data(frame[3:] + client.send(TextMessage(data="after the close")))
    assert conn.ws_receive() == {"type": "websocket.disconnect", "code": 1000, "reason": "ok"}
    assert client_sees(conn, client).code == 1000


def test_message_then_close() -> None:
    conn, client = accepted()
    conn.receive_data(client.send(TextMessage(data="hi")))
    assert conn.ws_receive() == {"type": "websocket.receive", "text": "hi"}
    conn.receive_data(masked_close(b"\x03\xe9"))
    assert conn.ws_receive() == {"type": "websocket.disconnect", "code": 1001, "reason": ""}
    assert client_sees(conn, client).code == 1001


def test_message_over_limit_closes_1009() -> None:
    conn, client = accepted(max_message=4)
    conn.receive_data(client.send(BytesMessage(data=b"12", message_finished=False)))
    conn.receive_data(client.send(BytesMessage(data=b"345")))
    message = conn.ws_receive()
    assert message is not None
    assert message["code"] == 1009


def test_app_close_then_client_reply() -> None:
    conn, client = accepted()
    conn.ws_send({"type": "websocket.close", "code": 1000, "reason": "done"})
    assert state_of(conn) is Phase.CLOSING
    client.receive_data(conn.take_output())
    close = next(client.events())
    assert isinstance(close, CloseConnection)
    conn.receive_data(client.send(close.response()))
    assert conn.ws_receive() is not None
    assert state_of(conn) is Phase.CLOSED


def test_denial_response() -> None:
    conn = fed(UPGRADE)
    assert conn.next_request() is not None
    conn.ws_send(
        {
            "type": "websocket.http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"999")],
        }
    )
    assert state_of(conn) is Phase.DENYING
    conn.ws_send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
    assert conn.output == b""
    conn.ws_send({"type": "websocket.http.response.body", "body": b"pe"})
    out = conn.take_output()
    assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"content-length: 4\r\n" in out  # the server frames the body itself
    assert b"999" not in out
    assert out.endswith(b"\r\n\r\nnope")
    assert state_of(conn) is Phase.CLOSED


@pytest.mark.parametrize(
    ("action", "status"), [("close", b"403"), ("return", b"500"), ("raise", b"500")]
)
def test_handshake_endings(action: str, status: bytes) -> None:
    conn = fed(UPGRADE)
    assert conn.next_request() is not None
    if action == "close":
        conn.ws_send({"type": "websocket.close", "code": 1000})
    conn.ws_finish(failed=action == "raise")
    assert conn.take_output().startswith(b"HTTP/1.1 " + status + b" ")
    assert state_of(conn) is Phase.CLOSED


def test_crash_after_accept_closes_1011() -> None:
    conn, client = accepted()
    conn.ws_finish(failed=True)
    assert state_of(conn) is Phase.CLOSING
    client.receive_data(conn.take_output())
    close = next(client.events())
    assert isinstance(close, CloseConnection)
    assert close.code == 1011


def test_websocket_misuse_is_reported() -> None:
    conn = fed(UPGRADE)
    assert conn.next_request() is not None
    with pytest.raises(ASGIProtocolError, match=r"expected websocket\.accept"):
        conn.ws_send({"type": "websocket.send", "text": "too early"})


def test_flood_before_accept_is_dropped() -> None:
    conn = fed(UPGRADE, max_header=300)
    assert conn.next_request() is not None
    assert conn.ws_receive() == {"type": "websocket.connect"}
    conn.receive_data(b"x" * 400)
    message = conn.ws_receive()
    assert message is not None
    assert message["code"] == 1006
    assert state_of(conn) is Phase.CLOSED


def test_send_after_the_client_vanished_raises() -> None:
    conn, _ = accepted()
    conn.receive_data(b"")  # TCP closed without a close frame
    with pytest.raises(ClientDisconnect):
        conn.ws_send({"type": "websocket.send", "text": "anyone?"})
    assert conn.ws_receive() == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert state_of(conn) is Phase.CLOSED
