"""The bench client's sans-IO handshake: bytes in, bytes out, no network."""

from __future__ import annotations

import base64
import hashlib
import socket

import pytest

from tinyws.bench.client_handshake import (
    Attempt,
    ClientHandshake,
    HandshakeError,
    Stage,
    Target,
    os_error,
    receive_timed,
)

TARGET = Target(
    socket.AF_INET,
    ("127.0.0.1", 9),
    b"GET / HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: ",
    b"\r\n\r\n",
    frozenset({"chat"}),
)


def switching(handshake: ClientHandshake, extra: bytes = b"") -> bytes:
    digest = hashlib.sha1(handshake.key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        b"Sec-WebSocket-Accept: " + base64.b64encode(digest) + b"\r\n" + extra + b"\r\n"
    )


def feed_bytewise(handshake: ClientHandshake, data: bytes) -> bytes:
    replies = b""
    for i in range(len(data)):
        replies += handshake.receive(data[i : i + 1])
    return replies


def state(handshake: ClientHandshake) -> Stage:
    # A call, not an attribute: mypy would keep the narrowing of a previous assert.
    return handshake.state


def kind_of(handshake: ClientHandshake, data: bytes) -> str:
    with pytest.raises(HandshakeError) as caught:
        handshake.receive(data)
    return caught.value.kind


def test_request_carries_a_fresh_key() -> None:
    first, second = ClientHandshake(TARGET), ClientHandshake(TARGET)
    assert first.key != second.key
    assert len(base64.b64decode(first.key)) == 16
    assert first.request == TARGET.head + first.key + b"\r\n\r\n"


def test_accept_then_close_handshake_byte_by_byte() -> None:
    handshake = ClientHandshake(TARGET)
    reply = feed_bytewise(handshake, switching(handshake))
    assert handshake.status == 101 and state(handshake) is Stage.CLOSING
    # Our close frame: FIN + close opcode, masked, 2-byte payload 1000.
    assert reply[:2] == b"\x88\x82" and len(reply) == 8
    mask = reply[2:6]
    assert bytes(b ^ mask[i] for i, b in enumerate(reply[6:])) == b"\x03\xe8"
    big = b"\x82\x7f" + (70_000).to_bytes(8, "big") + b"x" * 70_000
    assert handshake.receive(b"\x81\x02hi" + big + b"\x88\x02\x03") == b""
    assert state(handshake) is Stage.CLOSING
    handshake.receive(b"\xe8" + b"anything after the close is ignored")
    assert state(handshake) is Stage.DRAINING and not handshake.done
    handshake.receive_eof()
    assert handshake.done


def test_head_and_close_frame_in_one_segment() -> None:
    handshake = ClientHandshake(TARGET)
    handshake.receive(switching(handshake) + b"\x88\x00")
    assert state(handshake) is Stage.DRAINING


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        (b"Sec-WebSocket-Protocol: chat\r\n", None),
        (b"Sec-WebSocket-Protocol: other\r\n", "bad_subprotocol"),
    ],
)
def test_subprotocol_choice(extra: bytes, kind: str | None) -> None:
    handshake = ClientHandshake(TARGET)
    if kind is None:
        handshake.receive(switching(handshake, extra))
    else:
        assert kind_of(handshake, switching(handshake, extra)) == kind


def test_wrong_accept_still_reports_the_status() -> None:
    handshake, attempt = ClientHandshake(TARGET), Attempt()
    head = switching(ClientHandshake(TARGET))  # the accept of some other key
    with pytest.raises(HandshakeError, match="Sec-WebSocket-Accept") as caught:
        receive_timed(handshake, head, attempt, 1234)
    assert caught.value.kind == "bad_accept"
    assert (attempt.status, attempt.latency_ns) == (101, 1234)


def test_missing_upgrade() -> None:
    handshake = ClientHandshake(TARGET)
    head = switching(handshake).replace(b"Connection: upgrade\r\n", b"Connection: keep-alive\r\n")
    assert kind_of(handshake, head) == "bad_upgrade"


def test_denial_with_content_length() -> None:
    handshake = ClientHandshake(TARGET)
    handshake.receive(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nab")
    assert state(handshake) is Stage.LENGTH and not handshake.done
    handshake.receive(b"cde")
    assert handshake.done and handshake.status == 403


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    ],
)
def test_responses_without_a_body_are_done_at_the_head(head: bytes) -> None:
    handshake = ClientHandshake(TARGET)
    handshake.receive(head)
    assert handshake.done


def test_body_until_eof() -> None:
    handshake = ClientHandshake(TARGET)
    handshake.receive(b"HTTP/1.0 403 Forbidden\r\n\r\nsome body")
    assert state(handshake) is Stage.UNTIL_EOF
    handshake.receive(b"more")
    handshake.receive_eof()
    assert handshake.done


def test_chunked_body_byte_by_byte() -> None:
    handshake = ClientHandshake(TARGET)
    handshake.receive(b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    body = b"4;name=value\r\nabcd\r\nA\r\n0123456789\r\n0\r\nX-Checksum: 1\r\n\r\n"
    feed_bytewise(handshake, body[:-1])
    assert not handshake.done
    handshake.receive(body[-1:])
    assert handshake.done


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"SSH-2.0-OpenSSH_9\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
        (b"HTTP/1.1 403 No\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 403 No\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 403 No\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc", "not followed by CRLF"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"x" * 70_000, "too large"),
    ],
)
def test_bad_responses(data: bytes, detail: str) -> None:
    with pytest.raises(HandshakeError, match=detail) as caught:
        ClientHandshake(TARGET).receive(data)
    assert caught.value.kind == "bad_response"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"HTTP/1.1 101 Switching",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    ],
)
def test_early_eof(data: bytes) -> None:
    handshake = ClientHandshake(TARGET)
    handshake.receive(data)
    with pytest.raises(HandshakeError) as caught:
        handshake.receive_eof()
    assert caught.value.kind == "eof"


def test_eof_before_the_close_frame() -> None:
    handshake = ClientHandshake(TARGET)
    handshake.receive(switching(handshake) + b"\x81\x01x")
    with pytest.raises(HandshakeError, match="CLOSING"):
        handshake.receive_eof()


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(111, "refused"), "refused"),
        (ConnectionResetError(104, "reset"), "reset"),
        (BrokenPipeError(32, "pipe"), "reset"),
        (OSError(99, "no address"), "oserror:EADDRNOTAVAIL"),
        (OSError("no errno"), "oserror:None"),
    ],
)
def test_os_error_kinds(error: OSError, kind: str) -> None:
    assert os_error(error).kind == kind
