"""What the server fuzz test sends and how it reads the answer.

Client side: hypothesis strategies for request heads (plain HTTP with and
without bodies, WebSocket upgrades through both head parsers), mutated heads,
garbage, and client frames with any opcode, length encoding, mask, RSV bits
and fragmentation, compressed or not.

Server side: a strict reader of what the core wrote: HTTP/1.1 responses
(status line, header syntax, framing by Content-Length or chunks) and, after
a 101, WebSocket frames checked by wsproto as a client would.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0

# -- client bytes -------------------------------------------------------------

HEADER_EXTRAS = st.lists(
    st.sampled_from(
        [
            b"User-Agent: fuzz",
            b"X-Spaces:   a  b  ",
            b"Accept: */*",
            b"Cookie: a=b; c=d",
            b"X-Latin: caf\xe9",
            b"X-Empty:",
            # Framing and routing headers that must be refused or ignored cleanly.
            b"Content-Length: 99999999999999999999",
            b"Content-Length: 1, 1",
            b"Transfer-Encoding: chunked, chunked",
            b"Transfer-Encoding: gzip",
            b"Host: second",
            b"Upgrade: h2c",
            b"Sec-WebSocket-Key: short",
            b"Sec-WebSocket-Version: 8",
        ]
    ),
    max_size=3,
)


@st.composite
def http_request(draw: st.DrawFn) -> bytes:
    """A well-formed HTTP/1.x request, with or without a body."""
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"OPTIONS"]))
    target = draw(st.sampled_from([b"/", b"/a/b?x=1", b"/%2F%00", b"*", b"http://h/abs"]))
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    headers = [b"Host: h", *draw(HEADER_EXTRAS)]
    headers += draw(st.lists(st.sampled_from([b"Connection: close", b"Connection: keep-alive",
                                              b"Expect: 100-continue"]), max_size=1))  # fmt: skip
    body = draw(st.binary(max_size=80))
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
    elif framing == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        size = draw(st.integers(1, 40))
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    else:
        body = b""
    head = b"%s %s HTTP/%s\r\n" % (method, target, version)
    return head + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


DEFLATE_OFFERS = [
    b"permessage-deflate",
    b"permessage-deflate; client_max_window_bits",
    b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    b"permessage-deflate; server_max_window_bits=9",
    b"permessage-deflate; bogus=1",
    b"x-unknown, permessage-deflate",
]


@st.composite
def upgrade_request(draw: st.DrawFn) -> bytes:
    """A valid WebSocket upgrade; some shapes go to the fast parser, some to h11."""
    headers = [b"Host: h", b"Upgrade: websocket", b"Connection: Upgrade"]
    headers += [b"Sec-WebSocket-Key: " + KEY, b"Sec-WebSocket-Version: 13"]
    headers += draw(HEADER_EXTRAS)
    if draw(st.booleans()):
        headers.append(b"Sec-WebSocket-Protocol: chat, superchat")
    if draw(st.booleans()):
        headers.append(b"Sec-WebSocket-Extensions: " + draw(st.sampled_from(DEFLATE_OFFERS)))
    if draw(st.booleans()):  # shapes the fast parser leaves to h11
        headers[1] = draw(st.sampled_from([b"upgrade: WebSocket", b"Upgrade:websocket"]))
        headers[2] = draw(
            st.sampled_from([b"Connection: keep-alive, Upgrade", b"connection: upgrade"])
        )
        headers = draw(st.permutations(headers))
    target = draw(st.sampled_from([b"/", b"/chat?room=1", b"/%E2%82%AC"]))
    return b"GET " + target + b" HTTP/1.1\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few bytes deleted, inserted or replaced, or its line ends bare LF."""
    if draw(st.sampled_from([False] * 4 + [True])):
        return data.replace(b"\r\n", b"\n")
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(out)))
        what = draw(st.sampled_from([b"", b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x00", b":",
                                     b"\xff", b",", b"0", b"HTTP/1.1", b"\r\n\r\n"]))  # fmt: skip
        out[at : at + draw(st.integers(0, 3))] = what
    return bytes(out)


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x37\xfa\x21\x3d",
    long_form: bool = False,
    declared: int | None = None,
) -> bytes:
    """One client frame; `long_form` spends more length bytes than needed,
    `declared` states a length other than the payload's."""
    size = len(payload) if declared is None else declared
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)
    bit = 0x80 if mask is not None else 0
    if size < 126 and not long_form:
        head = bytes((first, bit | size))
    elif size < 1 << 16:
        head = bytes((first, bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + size.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def deflate(data: bytes) -> bytes:
    """A permessage-deflate payload (RFC 7692 section 7.2.1)."""
    compressor = zlib.compressobj(wbits=-15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


CLOSE_CODES = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1011, 1015, 999, 2999, 3000, 4999, 5000]
PAYLOADS = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20).map(str.encode),
    st.sampled_from([126, 200, 1100]).map(lambda n: b"z" * n),  # over the small limits
)


@st.composite
def message_frames(draw: st.DrawFn) -> list[bytes]:
    """One data message, maybe fragmented, maybe compressed, maybe broken."""
    opcode = draw(st.sampled_from([TEXT, BINARY, CONTINUATION]))
    payload = draw(PAYLOADS)
    rsv = 4 if draw(st.sampled_from([False] * 3 + [True])) else 0
    if rsv:
        payload = deflate(payload) if draw(st.booleans()) else payload
    pieces = draw(st.integers(1, 3))
    step = len(payload) // pieces + 1
    parts = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
    frames = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        frames.append(
            frame(
                opcode if index == 0 else CONTINUATION, part, fin=last, rsv=rsv if index == 0 else 0
            )
        )
    return frames


@st.composite
def control_frame(draw: st.DrawFn) -> bytes:
    opcode = draw(st.sampled_from([PING, PONG, CLOSE]))
    if opcode == CLOSE:
        code = draw(st.sampled_from(CLOSE_CODES))
        reason = draw(st.sampled_from([b"", b"bye", b"\xff\xfe", b"r" * 124]))
        payload = draw(st.sampled_from([b"", b"\x03", code.to_bytes(2, "big") + reason]))
    else:
        payload = draw(st.binary(max_size=10) | st.just(b"p" * 126))
    return frame(opcode, payload, fin=draw(st.booleans() | st.just(True)))


@st.composite
def odd_frame(draw: st.DrawFn) -> bytes:
    """A frame breaking some rule: reserved opcode or RSV bits, no mask, a
    length in the wrong form or larger than what follows."""
    return frame(
        draw(st.integers(0, 15)),
        draw(st.binary(max_size=20)),
        fin=draw(st.booleans()),
        rsv=draw(st.integers(0, 7)),
        mask=draw(st.sampled_from([None, b"\x00\x00\x00\x00", b"\xff\x01\x02\x03"])),
        long_form=draw(st.booleans()),
        declared=draw(st.none() | st.sampled_from([0, 125, 126, 65536, (1 << 63) - 1])),
    )


FRAMES = st.lists(
    st.one_of(message_frames(), control_frame().map(lambda f: [f]), odd_frame().map(lambda f: [f])),
    max_size=6,
).map(lambda groups: b"".join(b"".join(g) for g in groups))


# -- reading what the server wrote -----------------------------------------------

_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [\t !-~\x80-\xff]*\r\n")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?([^\x00-\x08\x0a-\x1f\x7f]*)\r\n")


class BadOutput(AssertionError):
    """The core wrote bytes no client can read."""


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.headers if n.lower() == name]
        return b", ".join(values) if values else None


@dataclass
class Output:
    """The responses in order; after a 101, the server's frames."""

    responses: list[Response] = field(default_factory=list)
    frames: bytes | None = None


def read_output(data: bytes) -> Output:
    out = Output()
    pos = 0
    while pos < len(data):
        line = _STATUS_LINE.match(data, pos)
        if line is None:
            raise BadOutput(f"no status line at {pos}: {data[pos : pos + 60]!r}")
        response = Response(int(line[1]), [])
        pos = line.end()
        while not data.startswith(b"\r\n", pos):
            header = _HEADER_LINE.match(data, pos)
            if header is None:
                raise BadOutput(f"bad header line: {data[pos : pos + 60]!r}")
            response.headers.append((header[1], header[2]))
            pos = header.end()
        pos += 2
        out.responses.append(response)
        if response.status == 101:
            out.frames = data[pos:]
            return out
        pos = _read_body(data, pos, response)
    return out


def _read_body(data: bytes, pos: int, response: Response) -> int:
    if response.status < 200 or response.status in (204, 304):
        if response.header(b"content-length") not in (None, b"0") and response.status < 200:
            raise BadOutput(f"a {response.status} with a body")
        return pos
    chunked = response.header(b"transfer-encoding")
    length = response.header(b"content-length")
    if chunked is not None:
        if length is not None or chunked.lower() != b"chunked":
            raise BadOutput(f"bad framing: {response.headers}")
        return _read_chunks(data, pos, response)
    if length is None:  # delimited by the end of the connection
        response.body = data[pos:]
        return len(data)
    if not length.isdigit() or len(data) < pos + int(length):
        raise BadOutput(f"Content-Length {length!r} but {len(data) - pos} bytes")
    response.body = data[pos : pos + int(length)]
    return pos + int(length)


def _read_chunks(data: bytes, pos: int, response: Response) -> int:
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0 or re.fullmatch(rb"[0-9a-f]+", data[pos:end]) is None:
            raise BadOutput(f"bad chunk size line at {pos}")
        size = int(data[pos:end], 16)
        pos = end + 2
        if size == 0:
            if not data.startswith(b"\r\n", pos):
                raise BadOutput("trailers or no blank line after the last chunk")
            return pos + 2
        response.body += data[pos : pos + size]
        if data[pos + size : pos + size + 2] != b"\r\n":
            raise BadOutput("chunk not followed by CRLF")
        pos += size + 2


@dataclass
class ServerFrames:
    """What the server sent after its 101, as a client reads it."""

    messages: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None
    closed: bool = False


def read_frames(data: bytes, extension: bytes | None) -> ServerFrames:
    """Split and check the server's frames; wsproto (as the client) checks semantics."""
    extensions: list[Extension] = []
    if extension is not None:
        deflate_ext = PerMessageDeflate()
        deflate_ext.finalize(extension.decode("ascii"))
        extensions.append(deflate_ext)
    client = Connection(ConnectionType.CLIENT, extensions)
    seen = ServerFrames()
    parts: list[str | bytes] = []
    for one in _split_frames(data):
        if seen.closed:
            raise BadOutput(f"a frame after the close frame: {one[:20]!r}")
        client.receive_data(one)
        for event in client.events():
            if isinstance(event, CloseConnection):
                if client.state is ConnectionState.OPEN:  # wsproto failed to parse
                    raise BadOutput(f"invalid frame from the server: {event.reason}")
                seen.closed, seen.close_code = True, event.code
            elif isinstance(event, TextMessage | BytesMessage):
                parts.append(bytes(event.data) if isinstance(event, BytesMessage) else event.data)
                if event.message_finished:
                    seen.messages.append(type(parts[0])().join(parts))  # type: ignore[arg-type]
                    parts = []
    return seen


def _split_frames(data: bytes) -> list[bytes]:
    frames, pos = [], 0
    while pos < len(data):
        if len(data) < pos + 2:
            raise BadOutput("a partial frame header")
        if data[pos + 1] & 0x80:
            raise BadOutput("a masked frame from the server")
        size, start = data[pos + 1] & 0x7F, pos + 2
        if size >= 126:
            start += 2 if size == 126 else 8
            size = int.from_bytes(data[pos + 2 : start], "big")
        if len(data) < start + size:
            raise BadOutput("a partial frame")
        frames.append(data[pos : start + size])
        pos = start + size
    return frames
