"""A deliberately small HTTP/1.1 and WebSocket client over a raw socket.

The end-to-end tests and the probes assert what is on the wire, byte for
byte, so they cannot use a client that hides it: a status line is compared as
bytes, a close frame is decoded here from its two code bytes. The client
also has to send what no polite library would (unmasked frames, reserved
opcodes, broken UTF-8, two framing headers), so requests and frames are built
by hand. Every read is bounded in size and time.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

TIMEOUT = 5.0
LIMIT = 1 << 20
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0

Headers = Iterable[tuple[bytes, bytes]]


def accept_value(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


class Conn:
    """A socket with a read buffer; reads stop at ``LIMIT`` bytes or ``TIMEOUT``."""

    def __init__(self, address: tuple[str, int], timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buffer = bytearray()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        """Read once into the buffer; False at end of stream (or a reset)."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        self.buffer += chunk
        if len(self.buffer) > LIMIT:
            raise AssertionError(f"peer sent more than {LIMIT} bytes")
        return bool(chunk)

    def read_until(self, marker: bytes) -> bytes:
        """Bytes up to and including ``marker``."""
        while (end := self.buffer.find(marker)) < 0:
            if not self._fill():
                raise EOFError(f"closed before {marker!r}; got {bytes(self.buffer)!r}")
        return self._take(end + len(marker))

    def read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError(f"closed after {len(self.buffer)} of {size} bytes")
        return self._take(size)

    def read_to_eof(self) -> bytes:
        """Everything until the peer closes the connection."""
        while self._fill():
            pass
        return self._take(len(self.buffer))

    def _take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


@dataclass
class Response:
    """An HTTP response as it came: the raw head, parsed, and the body."""

    head: bytes
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    @property
    def status_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (case-insensitive), if any."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


def read_head(conn: Conn) -> Response:
    head = conn.read_until(b"\r\n\r\n")
    status_line, *lines = head[:-4].split(b"\r\n")
    version, status, *_ = status_line.split(b" ", 2)
    assert version == b"HTTP/1.1", head
    headers = []
    for line in lines:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return Response(head, int(status), headers)


def read_response(conn: Conn, *, head_request: bool = False) -> Response:
    """One response: head, then the body framed as the head says."""
    response = read_head(conn)
    if head_request or response.status < 200 or response.status in (204, 304):
        return response
    length = response.header(b"content-length")
    if length is not None:
        response.body = conn.read_exact(int(length))
    elif (response.header(b"transfer-encoding") or b"").lower() == b"chunked":
        response.body = _read_chunked(conn)
    else:
        response.body = conn.read_to_eof()
    return response


def _read_chunked(conn: Conn) -> bytes:
    body = bytearray()
    while size := int(conn.read_until(b"\r\n").split(b";")[0], 16):
        body += conn.read_exact(size)
        conn.read_exact(2)
    while conn.read_until(b"\r\n") != b"\r\n":  # trailers
        pass
    return bytes(body)


def request(method: bytes, target: bytes, headers: Headers = (), body: bytes = b"") -> bytes:
    """A well-formed HTTP/1.1 request (``Host`` included)."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def http_get(address: tuple[str, int], target: bytes) -> Response:
    with Conn(address) as conn:
        conn.send(request(b"GET", target, [(b"Connection", b"close")]))
        return read_response(conn)


def handshake(
    target: bytes,
    headers: Headers = (),
    key: bytes | None = KEY,
    version: bytes | None = b"13",
) -> bytes:
    """A WebSocket opening handshake; ``None`` leaves a header out."""
    fields = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]
    if key is not None:
        fields.append((b"Sec-WebSocket-Key", key))
    if version is not None:
        fields.append((b"Sec-WebSocket-Version", version))
    return request(b"GET", target, [*fields, *headers])


@dataclass
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0

    @property
    def close_code(self) -> int | None:
        """The status code of a close frame (None when it carries none)."""
        assert self.opcode == CLOSE, self
        return struct.unpack("!H", self.payload[:2])[0] if self.payload else None

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]


def encode_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One frame as a client sends it (masked, unless told otherwise)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _xor(payload, key)


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return encode_frame(CLOSE, struct.pack("!H", code) + reason)


def _xor(data: bytes, key: bytes) -> bytes:
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(data), "big"
    )


def read_frame(conn: Conn) -> Frame:
    """One frame as the server sent it (servers never mask)."""
    first, second = conn.read_exact(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", conn.read_exact(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", conn.read_exact(8))[0]
    key = conn.read_exact(4) if second & 0x80 else None
    payload = conn.read_exact(size)
    if key is not None:
        payload = _xor(payload, key)
    return Frame(first & 0x0F, payload, fin=bool(first & 0x80), rsv=(first >> 4) & 7)


def read_frame_or_none(conn: Conn) -> Frame | None:
    """The next frame, or None when the server has closed the connection."""
    try:
        return read_frame(conn)
    except EOFError:
        return None


@dataclass
class WebSocket:
    """The client side of an accepted connection."""

    conn: Conn
    response: Response
    pongs: list[bytes] = field(default_factory=list)

    def send_text(self, text: str) -> None:
        self.conn.send(encode_frame(TEXT, text.encode()))

    def send_bytes(self, data: bytes) -> None:
        self.conn.send(encode_frame(BINARY, data))

    def receive(self) -> Frame:
        """The next data or close frame; pings are answered on the way."""
        while True:
            frame = read_frame(self.conn)
            if frame.opcode == PING:
                self.conn.send(encode_frame(PONG, frame.payload))
            elif frame.opcode == PONG:
                self.pongs.append(frame.payload)
            else:
                return frame

    def close(self, code: int = 1000) -> Frame:
        """Send a close frame and return the server's close frame."""
        self.conn.send(close_frame(code))
        while (frame := self.receive()).opcode != CLOSE:
            pass
        return frame


def connect_ws(
    address: tuple[str, int], target: bytes, headers: Headers = ()
) -> tuple[Conn, Response]:
    """Send a handshake; return the connection and the server's response.

    A 101 response has no body and the connection carries frames from then
    on; any other response is read with its body.
    """
    conn = Conn(address)
    conn.send(handshake(target, headers))
    return conn, read_response(conn)
