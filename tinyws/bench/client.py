"""One WebSocket opening handshake over a raw non-blocking socket.

A handshake is: connect, send an upgrade request with a fresh random
``Sec-WebSocket-Key``, read the response head, then finish the exchange so
the server does all of its work — on ``101`` check the accept key and run the
close handshake (send a masked close frame, read the server's close frame,
wait for its FIN); on any other status read the body (Content-Length,
chunked, or until EOF). Latency is timed from just before ``connect`` to the
arrival of the head's final ``\\r\\n\\r\\n``.

Why raw sockets: anyio's stream layer costs tens of microseconds per
connection, enough to make a benchmark client measure itself. Every socket
call here is tried first and the event loop is asked to wait only when the
kernel says ``EAGAIN`` (see ``waiting.py``); the one exception is the
response head, which cannot have arrived the moment the request is sent, so
that read waits first.

Failures raise :class:`HandshakeError` whose ``kind`` names them in the
report; timeouts are not handled here but by the runner, which cancels the
waiting task (the ``finally`` below still closes the socket).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from tinyws.bench.waiting import Waiters

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RECV_SIZE = 65536
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


class Attempt:
    """What the current handshake has got so far: 0 and 0 until the response head.

    Kept outside the coroutine so that the runner can still read it when the
    handshake failed, or was cancelled by a timeout, after the head arrived.
    """

    __slots__ = ("latency_ns", "status")

    def __init__(self) -> None:
        self.status = 0
        self.latency_ns = 0


@dataclass(frozen=True)
class Target:
    """Everything about the request that does not change between handshakes."""

    family: int
    address: tuple[Any, ...]
    head: bytes  # the request up to the value of Sec-WebSocket-Key
    tail: bytes  # the rest of the request, after the key
    subprotocols: frozenset[str]


def accept_for(key: bytes) -> bytes:
    """Return the ``Sec-WebSocket-Accept`` value a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def os_error_kind(exc: OSError) -> str:
    kind = _OS_KINDS.get(exc.errno or 0)
    if kind is None:
        kind = "oserror:" + errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return kind


async def handshake(target: Target, waiters: Waiters, attempt: Attempt) -> None:
    """Run one handshake, noting its status and latency in ``attempt``.

    Raises HandshakeError if it fails.
    """
    rand = os.urandom(20)  # 16 bytes of key and 4 of close-frame mask: one syscall
    key = base64.b64encode(rand[:16])
    attempt.status = attempt.latency_ns = 0
    try:
        with socket.socket(target.family, socket.SOCK_STREAM) as sock:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.perf_counter_ns()
            _connect(sock, target.address)
            reader = _Reader(sock, waiters)
            await reader.send_all(target.head + key + target.tail)
            head = await reader.head()
            attempt.latency_ns = time.perf_counter_ns() - start
            status, headers = parse_head(head)
            attempt.status = status
            if status == 101:
                check_upgrade(headers, key, target.subprotocols)
                await _close_handshake(reader, rand[16:])
            else:
                await _skip_body(reader, status, headers)
    except OSError as exc:
        raise HandshakeError(os_error_kind(exc), str(exc)) from None


def _connect(sock: socket.socket, address: tuple[Any, ...]) -> None:
    # No wait for the connection here: the request's send does it. On loopback
    # the kernel completes the connection inside connect(), so the send goes
    # through at once; elsewhere it says EAGAIN until connected, or names the
    # reason the connection failed.
    err = sock.connect_ex(address)
    if err and err not in (errno.EINPROGRESS, errno.EAGAIN):
        raise OSError(err, os.strerror(err))


class _Reader:
    """A socket with a receive buffer, for the few reads a handshake needs."""

    __slots__ = ("buf", "sock", "waiters")

    def __init__(self, sock: socket.socket, waiters: Waiters) -> None:
        self.sock = sock
        self.waiters = waiters
        self.buf = b""

    async def send_all(self, data: bytes) -> None:
        while data:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                await self.waiters.writable(self.sock)
                continue
            data = data[sent:]

    async def fill(self) -> None:
        """Append at least one byte to ``buf``; raise ``eof`` at end of stream."""
        while True:
            try:
                chunk = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                await self.waiters.readable(self.sock)
                continue
            if not chunk:
                raise HandshakeError("eof", "connection closed by the server")
            self.buf += chunk
            return

    async def head(self) -> bytes:
        """Return the response head without its final blank line."""
        await self.waiters.readable(self.sock)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise HandshakeError("bad_response", "response head too large")
            await self.fill()
        head, self.buf = self.buf[:end], self.buf[end + 4 :]
        return head

    async def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise HandshakeError("bad_response", "line too long in chunked body")
            await self.fill()
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        return line

    async def skip(self, size: int) -> None:
        while len(self.buf) < size:
            size -= len(self.buf)
            self.buf = b""
            await self.fill()
        self.buf = self.buf[size:]

    async def skip_to_eof(self) -> None:
        try:
            while True:
                self.buf = b""
                await self.fill()
        except HandshakeError:
            return


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
    if headers.get(b"sec-websocket-accept") != accept_for(key):
        raise HandshakeError("bad_accept", "missing or wrong Sec-WebSocket-Accept")
    connection = {token.strip() for token in headers.get(b"connection", b"").lower().split(b",")}
    if headers.get(b"upgrade", b"").lower() != b"websocket" or b"upgrade" not in connection:
        raise HandshakeError("bad_upgrade", "101 without Upgrade: websocket, Connection: upgrade")
    chosen = headers.get(b"sec-websocket-protocol")
    if chosen is not None and chosen.decode("latin-1") not in offered:
        raise HandshakeError("bad_subprotocol", f"server chose {chosen!r}, not offered")


def _frame(buf: bytes) -> tuple[int, int] | None:
    """Return ``(opcode, end)`` of the first complete frame in ``buf``, or None."""
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
    end = start + size
    return (buf[0] & 0x0F, end) if len(buf) >= end else None


async def _close_handshake(reader: _Reader, mask: bytes) -> None:
    payload = bytes(byte ^ mask[i] for i, byte in enumerate(CLOSE_CODE))
    await reader.send_all(b"\x88\x82" + mask + payload)
    if _frame(reader.buf) is None:  # the server's close cannot be here yet: wait, not recv
        await reader.waiters.readable(reader.sock)
    # Frames the app sent after accepting are skipped up to the server's close.
    while True:
        frame = _frame(reader.buf)
        if frame is None:
            await reader.fill()
            continue
        opcode, end = frame
        reader.buf = reader.buf[end:]
        if opcode == 0x8:
            break
    # The server closes TCP first (RFC 6455 section 7.1.1), so TIME_WAIT stays on its side.
    await reader.skip_to_eof()


async def _skip_body(reader: _Reader, status: int, headers: dict[bytes, bytes]) -> None:
    if status < 200 or status in (204, 304):
        return
    coding = headers.get(b"transfer-encoding", b"").lower()
    length = headers.get(b"content-length")
    if coding.endswith(b"chunked"):
        await _skip_chunked(reader)
    elif length is not None:
        if not length.isdigit():
            raise HandshakeError("bad_response", f"bad Content-Length {length[:40]!r}")
        await reader.skip(int(length))
    else:
        await reader.skip_to_eof()


async def _skip_chunked(reader: _Reader) -> None:
    while True:
        size_field = (await reader.line()).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise HandshakeError("bad_response", f"bad chunk size {size_field[:40]!r}") from None
        if size == 0:
            break
        await reader.skip(size)
        if await reader.line():
            raise HandshakeError("bad_response", "chunk not followed by CRLF")
    while await reader.line():  # trailer fields, up to the blank line
        pass
