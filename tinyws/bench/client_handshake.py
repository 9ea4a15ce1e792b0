"""The client side of one WebSocket opening handshake, without any I/O.

Bytes in, bytes out: a driver (``client.py`` over raw sockets, ``aio.py``
over asyncio protocols) sends :attr:`ClientHandshake.request`, feeds everything the
server sends to :meth:`ClientHandshake.receive`, sends back whatever that returns,
reports the end of the stream with :meth:`ClientHandshake.receive_eof`, and closes
the connection once :attr:`ClientHandshake.done` is true. Failures raise
:class:`HandshakeError`, whose ``kind`` names them in the report.

The handshake finishes what the server started, so that the server does all
of its work for the connection::

    HEAD --101, accept key right--> CLOSING --server's close frame--> DRAINING --EOF--> DONE
      |                             (our close frame is sent on entry)
      +--any other status--> LENGTH | CHUNK_SIZE ... TRAILERS | UNTIL_EOF --body read--> DONE

In DRAINING the client waits for the server to close TCP first (RFC 6455
section 7.1.1), so that TIME_WAIT stays on the server's side. A denial with
a Content-Length or chunked body is done at the end of its body even if the
server keeps the connection alive.
"""

from __future__ import annotations

import base64
import enum
import errno
import os
import ssl
from dataclasses import dataclass
from typing import Any

from tinyws.rfc6455 import accept_key

MAX_HEAD = 65536
CLOSE_CODE = (1000).to_bytes(2, "big")

# Errors worth their own line in the report; any other OSError is named by errno.
_OS_KINDS = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "reset",
    errno.ECONNABORTED: "reset",
    errno.EPIPE: "reset",
    errno.ETIMEDOUT: "timeout",
}


class HandshakeError(Exception):
    """Raised when a handshake fails; ``kind`` is the name the report counts it under."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind


def os_error(exc: OSError) -> HandshakeError:
    """Return the HandshakeError that stands for a socket error."""
    kind = _OS_KINDS.get(exc.errno or 0)
    if kind is None:
        kind = "oserror:" + errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return HandshakeError(kind, str(exc))


@dataclass(frozen=True)
class Target:
    """Everything about the request that does not change between handshakes."""

    family: int
    address: tuple[Any, ...]
    head: bytes  # the request up to the value of Sec-WebSocket-Key
    tail: bytes  # the rest of the request, after the key
    subprotocols: frozenset[str]
    tls: ssl.SSLContext | None = None  # wss://: the context, and the name to verify
    server_hostname: str | None = None


class Attempt:
    """What the current handshake has got so far: 0 and 0 until the response head.

    Kept outside the driver's coroutine so that the runner can still read it
    when the handshake failed, or was cancelled by a timeout, after the head.
    """

    __slots__ = ("connected_ns", "latency_ns", "secured_ns", "status", "tls")

    def __init__(self) -> None:
        self.status = 0
        self.latency_ns = 0
        self.connected_ns = 0  # since the start: the TCP connection is up
        self.secured_ns = 0  # since the start: the TLS handshake is done (wss:// only)
        self.tls: tuple[str, str] | None = None  # negotiated version and cipher


class Stage(enum.Enum):
    HEAD = enum.auto()
    CLOSING = enum.auto()
    DRAINING = enum.auto()
    LENGTH = enum.auto()
    CHUNK_SIZE = enum.auto()
    CHUNK_DATA = enum.auto()
    CHUNK_END = enum.auto()
    TRAILERS = enum.auto()
    UNTIL_EOF = enum.auto()
    DONE = enum.auto()


class ClientHandshake:
    """One handshake's protocol state: see the module's docstring for the states."""

    __slots__ = ("buf", "key", "mask", "offered", "remaining", "request", "state", "status")

    def __init__(self, target: Target) -> None:
        rand = os.urandom(20)  # 16 bytes of key and 4 of close-frame mask: one syscall
        self.key = base64.b64encode(rand[:16])
        self.mask = rand[16:]
        self.request = target.head + self.key + target.tail
        self.offered = target.subprotocols
        self.state = Stage.HEAD
        self.status = 0  # set as soon as the response head has been parsed
        self.buf = b""
        self.remaining = 0

    @property
    def done(self) -> bool:
        return self.state is Stage.DONE

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the server; return the bytes to send back (often none)."""
        self.buf = self.buf + data if self.buf else data
        reply = b""
        if self.state is Stage.HEAD:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    raise HandshakeError("bad_response", "response head too large")
                return reply
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            reply = self._respond(head)
        while self.buf and self._step():
            pass
        return reply

    def receive_eof(self) -> None:
        """Note that the server closed the connection; raise if that was too early."""
        if self.state not in (Stage.DRAINING, Stage.UNTIL_EOF, Stage.DONE):
            raise HandshakeError("eof", f"connection closed by the server in {self.state.name}")
        self.state = Stage.DONE

    def _respond(self, head: bytes) -> bytes:
        self.status, headers = parse_head(head)
        if self.status == 101:
            check_upgrade(headers, self.key, self.offered)
            self.state = Stage.CLOSING
            payload = bytes(byte ^ self.mask[i] for i, byte in enumerate(CLOSE_CODE))
            return b"\x88\x82" + self.mask + payload
        self.state, self.remaining = body_state(self.status, headers)
        return b""

    def _step(self) -> bool:
        """Consume what the current state can from ``buf``; say whether to go on."""
        state = self.state
        if state is Stage.CLOSING:
            return self._skip_frame()
        if state is Stage.LENGTH or state is Stage.CHUNK_DATA:
            taken = min(len(self.buf), self.remaining)
            self.buf, self.remaining = self.buf[taken:], self.remaining - taken
            if not self.remaining:
                self.state = Stage.DONE if state is Stage.LENGTH else Stage.CHUNK_END
            return True
        if state is Stage.CHUNK_SIZE or state is Stage.TRAILERS:
            return self._line(state)
        if state is Stage.CHUNK_END:
            if len(self.buf) < 2:
                return False
            if self.buf[:2] != b"\r\n":
                raise HandshakeError("bad_response", "chunk not followed by CRLF")
            self.buf, self.state = self.buf[2:], Stage.CHUNK_SIZE
            return True
        self.buf = b""  # DRAINING, UNTIL_EOF, DONE: whatever comes now is ignored
        return False

    def _skip_frame(self) -> bool:
        # Frames the app sent after accepting are skipped up to the server's
        # close, payloads as they come: a big (or endless) frame is never held.
        if self.remaining:
            taken = min(len(self.buf), self.remaining)
            self.buf, self.remaining = self.buf[taken:], self.remaining - taken
            return True
        header = frame_header(self.buf)
        if header is None:
            return False
        opcode, start, size = header
        if opcode != 0x8:
            self.buf, self.remaining = self.buf[start:], size
            return True
        if size > 125:  # a control frame's limit (RFC 6455 section 5.5)
            raise HandshakeError("bad_response", f"close frame of {size} bytes")
        if len(self.buf) < start + size:
            return False
        self.buf, self.state = self.buf[start + size :], Stage.DRAINING
        return True

    def _line(self, state: Stage) -> bool:
        end = self.buf.find(b"\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                raise HandshakeError("bad_response", "line too long in chunked body")
            return False
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        if state is Stage.TRAILERS:
            if not line:  # the blank line after the trailer fields
                self.state = Stage.DONE
            return True
        size_field = line.split(b";", 1)[0].strip()
        # int() alone would also take "-5", "+5", "0x5" and "5_0".
        if not size_field or size_field.strip(b"0123456789abcdefABCDEF"):
            raise HandshakeError("bad_response", f"bad chunk size {size_field[:40]!r}")
        size = int(size_field, 16)
        self.state, self.remaining = (Stage.CHUNK_DATA, size) if size else (Stage.TRAILERS, 0)
        return True


def receive_timed(
    handshake: ClientHandshake, data: bytes, attempt: Attempt, elapsed_ns: int
) -> bytes:
    """Pass bytes that may complete the head, received ``elapsed_ns`` after the start."""
    try:
        return handshake.receive(data)
    finally:  # a head that fails its checks was still a response: it counts
        if handshake.status:
            attempt.status, attempt.latency_ns = handshake.status, elapsed_ns


def parse_head(head: bytes) -> tuple[int, dict[bytes, bytes]]:
    """Return the status and the headers (lower-cased names, repeats joined by commas)."""
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code = rest[:3]
    if not (version.startswith(b"HTTP/1.") and code.isdigit() and rest[3:4] in (b"", b" ")):
        raise HandshakeError("bad_response", f"bad status line {lines[0][:80]!r}")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise HandshakeError("bad_response", f"bad header line {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        headers[name] = headers[name] + b", " + value if name in headers else value
    return int(code), headers


def check_upgrade(headers: dict[bytes, bytes], key: bytes, offered: frozenset[str]) -> None:
    """Raise unless a 101 response completes the upgrade that ``key`` asked for."""
    if headers.get(b"sec-websocket-accept") != accept_key(key):
        raise HandshakeError("bad_accept", "missing or wrong Sec-WebSocket-Accept")
    connection = {token.strip() for token in headers.get(b"connection", b"").lower().split(b",")}
    if headers.get(b"upgrade", b"").lower() != b"websocket" or b"upgrade" not in connection:
        raise HandshakeError("bad_upgrade", "101 without Upgrade: websocket, Connection: upgrade")
    chosen = headers.get(b"sec-websocket-protocol")
    if chosen is not None and chosen.decode("latin-1") not in offered:
        raise HandshakeError("bad_subprotocol", f"server chose {chosen!r}, not offered")


def body_state(status: int, headers: dict[bytes, bytes]) -> tuple[Stage, int]:
    """Return how a response's body is delimited, and its length when that is known."""
    if status < 200 or status in (204, 304):
        return Stage.DONE, 0
    if headers.get(b"transfer-encoding", b"").lower().endswith(b"chunked"):
        return Stage.CHUNK_SIZE, 0
    length = headers.get(b"content-length")
    if length is None:
        return Stage.UNTIL_EOF, 0
    if not length.isdigit():
        raise HandshakeError("bad_response", f"bad Content-Length {length[:40]!r}")
    return (Stage.LENGTH, int(length)) if int(length) else (Stage.DONE, 0)


def frame_header(buf: bytes) -> tuple[int, int, int] | None:
    """Return ``(opcode, header size, payload size)`` of the frame at the start
    of ``buf``, or None until its whole header is there."""
    if len(buf) < 2:
        return None
    size, start = buf[1] & 0x7F, 2
    if size >= 126:
        start = 4 if size == 126 else 10
        if len(buf) < start:
            return None
        size = int.from_bytes(buf[2:start], "big")
    if buf[1] & 0x80:  # servers must not mask, but skipping a mask key costs nothing
        start += 4
    return (buf[0] & 0x0F, start, size) if len(buf) >= start else None
