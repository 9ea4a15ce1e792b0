"""Property tests of the bench client's response parser (tinyws.bench.client_handshake).

Whatever a server answers, split at any points, `ClientHandshake` either
completes or raises its own `HandshakeError`, never anything else, and it
never holds more than `MAX_HEAD` bytes between calls. Well-formed replies
(101 and close frame, denials framed by length, chunks or EOF) complete
with their status.

Bounded (200 examples) and derandomized by default. A longer random run
(tests/fuzzing.py tells more):

    TINYWS_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_client_handshake.py
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzzing import FUZZ
from tinyws.bench.client_handshake import MAX_HEAD, ClientHandshake, HandshakeError, Target

ACCEPT = b"{ACCEPT}"  # replaced by the right Sec-WebSocket-Accept for the run's key
TARGET = Target(
    socket.AF_INET,
    ("127.0.0.1", 8000),
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: ",
    b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
    frozenset({"chat"}),
)


def frame(opcode: int, payload: bytes, masked: bool = False, declared: int | None = None) -> bytes:
    """One server frame; `declared` lies about the payload length."""
    size = len(payload) if declared is None else declared
    if size < 126:
        head = bytes((0x80 | opcode, size | (0x80 if masked else 0)))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 126 | (0x80 if masked else 0))) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127 | (0x80 if masked else 0))) + size.to_bytes(8, "big")
    return head + (b"\x01\x02\x03\x04" if masked else b"") + payload


SIZES = st.sampled_from([0, 1, 125, 126, 127, 65535, 65536, MAX_HEAD + 10])
FRAMES = st.lists(
    st.builds(
        frame,
        st.sampled_from([0x0, 0x1, 0x2, 0x9, 0xA, 0x3]),
        SIZES.map(lambda n: b"m" * n) | st.binary(max_size=20),
        st.booleans(),
    ),
    max_size=3,
)
HEADER_LINES = st.lists(
    st.sampled_from(
        [b"Server: fuzz", b"X-Empty:", b"Connection: keep-alive", b"Content-Type: text/plain"]
    ),
    max_size=2,
)


@st.composite
def accepts(draw: st.DrawFn) -> tuple[bytes, int]:
    """A 101 that completes the upgrade, frames from the app, then the close frame."""
    headers = [b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + ACCEPT]
    headers += draw(
        st.lists(st.sampled_from([b"Sec-WebSocket-Protocol: chat", b"Server: x"]), unique=True)
    )
    head = b"HTTP/1.1 101 Switching Protocols\r\n" + b"\r\n".join(headers) + b"\r\n\r\n"
    close = frame(0x8, draw(st.sampled_from([b"", b"\x03\xe8", b"\x03\xe9bye"])))
    return head + b"".join(draw(FRAMES)) + close, 101


@st.composite
def denials(draw: st.DrawFn) -> tuple[bytes, int]:
    """A complete non-101 response: body framed by Content-Length, chunks or EOF."""
    status = draw(st.sampled_from([200, 204, 304, 400, 403, 404, 426, 500, 503]))
    body = draw(st.binary(max_size=40) | SIZES.map(lambda n: b"b" * n))
    headers = draw(HEADER_LINES)
    framing = draw(st.sampled_from(["length", "chunked", "eof"]))
    if status in (204, 304):
        body = b""
    elif framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
    elif framing == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        # Chunks of at least 1/16 of the body: many tiny chunks of a big
        # body only make the run slow (the parser copies what is left per line).
        least = max(1, len(body) // 16)
        body = chunked(body, draw(st.integers(least, least + 64)), draw(st.booleans()))
    head = b"HTTP/1.1 %d Status\r\n" % status + b"".join(h + b"\r\n" for h in headers)
    return head + b"\r\n" + body, status


def chunked(body: bytes, size: int, extras: bool) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    ext = b";name=value" if extras else b""
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in parts)
    return out + b"0\r\n" + (b"Trailer: x\r\n" if extras else b"") + b"\r\n"


@st.composite
def mutated(draw: st.DrawFn, replies: st.SearchStrategy[tuple[bytes, int]]) -> bytes:
    """A valid reply with a few bytes deleted, inserted or replaced."""
    data = bytearray(draw(replies)[0])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        what = draw(st.sampled_from([b"", b"\r", b"\n", b" ", b"\x00", b"-", b"1", b"f", b"\xff"]))
        cut = draw(st.integers(0, 2))
        data[at : at + cut] = what
    return bytes(data)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def accept_for(key: bytes) -> bytes:
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    return base64.b64encode(hashlib.sha1(key + guid).digest())


def run(reply: bytes, cuts: list[int], eof: bool) -> tuple[ClientHandshake, bytes]:
    """Feed `reply` in pieces; return the handshake and what it sent back."""
    handshake = ClientHandshake(TARGET)
    reply = reply.replace(ACCEPT, accept_for(handshake.key))
    sent = b""
    for piece in split(reply, cuts):
        sent += handshake.receive(piece)
        assert len(handshake.buf) <= MAX_HEAD, "holds more than MAX_HEAD between calls"
    if eof:
        handshake.receive_eof()
    return handshake, sent


CUTS = st.lists(st.integers(0, 1 << 20), max_size=8)
ANY_REPLY = st.one_of(
    st.binary(max_size=200),
    mutated(accepts()),
    mutated(denials()),
    st.tuples(accepts() | denials(), st.binary(max_size=30)).map(lambda t: t[0][0] + t[1]),
)


@FUZZ
@given(ANY_REPLY, CUTS, st.booleans())
@example(b"HTTP/1.1 101 S\r\nX: 1\r\n\r\n\x81\x7f" + b"\xff" * 8, [], False)
def test_any_reply_completes_or_raises_handshake_error(
    reply: bytes, cuts: list[int], eof: bool
) -> None:
    try:
        handshake, _ = run(reply, cuts, eof)
    except HandshakeError as exc:
        assert exc.kind
        return
    if eof:
        assert handshake.done


@FUZZ
@given(accepts() | denials(), CUTS)
@example((b"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n" + frame(0x2, b"m" * 2 * MAX_HEAD)
          + frame(0x8, b""), 101), [200, MAX_HEAD + 1000])  # fmt: skip
@example((b"HTTP/1.1 200 Status\r\n\r\nchunked", 200), [])
def test_valid_replies_complete(case: tuple[bytes, int], cuts: list[int]) -> None:
    reply, status = case
    handshake, sent = run(reply, cuts, eof=False)
    assert handshake.status == status
    if status == 101:
        assert sent[:2] == b"\x88\x82" and len(sent) == 8, "one masked close frame back"
        assert not handshake.done  # waits for the server to close TCP first
        handshake.receive_eof()
    elif not handshake.done:  # a body delimited by the end of the connection
        head = reply.split(b"\r\n\r\n")[0]
        assert b"Content-Length" not in head and b"chunked" not in head
        handshake.receive_eof()
    assert handshake.done


@FUZZ
@given(st.binary(min_size=1, max_size=64), st.integers(1, 4))
def test_an_endless_head_is_refused_once_over_max_head(filler: bytes, pieces: int) -> None:
    handshake = ClientHandshake(TARGET)
    filler = filler.replace(b"\r", b"") or b"x"  # never a blank line: no end of head
    body = filler * (MAX_HEAD // len(filler) + 2)
    step = len(body) // pieces + 1
    try:
        for start in range(0, len(body), step):
            handshake.receive(body[start : start + step])
            assert len(handshake.buf) <= MAX_HEAD
    except HandshakeError as exc:
        assert exc.kind == "bad_response"
    else:
        raise AssertionError("a head larger than MAX_HEAD was accepted")


@FUZZ
@given(st.text("0123456789abcdefABCDEFxX-+_", max_size=6))
@example("-5")  # int(..., 16) took it: a negative chunk then sliced the buffer from its end
@example("0x5")
@example("5_0")
def test_chunk_sizes_are_hex_digits_only(field: str) -> None:
    handshake = ClientHandshake(TARGET)
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\n" % field.encode()
    if re.fullmatch("[0-9a-fA-F]+", field):
        handshake.receive(reply)
        assert not handshake.done or int(field, 16) == 0
    else:
        with pytest.raises(HandshakeError, match="bad chunk size") as caught:
            handshake.receive(reply)
        assert caught.value.kind == "bad_response"
