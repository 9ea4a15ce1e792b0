"""WebSocket frames after the 101: wsproto's frame-level `Connection` ⇄ ASGI.

The opening handshake never goes through wsproto (it is parsed once, in
`heads.py`), and the frame-level `wsproto.connection.Connection` is
created only when the connection first needs it: refused handshakes never pay
for it, and neither does the most common short life of a WebSocket, where the
client's first frame is its close frame. That one frame, when it arrives
whole, valid and alone, is answered here directly; anything else (a partial
frame, bytes after it, an invalid code or reason) goes to wsproto, which
makes every decision about it.

The channel answers pings and close frames by itself, reassembles fragmented
messages, enforces the message size limit (1009) and turns wsproto's parse
failures (1002 protocol error, 1007 invalid UTF-8 ...) into a close frame
followed by the end of the TCP connection.
"""

from __future__ import annotations

from typing import Any, cast

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    TextMessage,
)
from wsproto.events import (
    Message as WSMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import (
    LOCAL_ONLY_CLOSE_REASONS,
    MAX_CLOSE_REASON,
    MAX_PROTOCOL_CLOSE_REASON,
    MIN_CLOSE_REASON,
    CloseReason,
)
from wsproto.handshake import server_extensions_handshake

from tinyws.types import Message

ABNORMAL = 1006
NO_STATUS = 1005
TOO_BIG = 1009
_KNOWN_CODES = frozenset(int(code) for code in CloseReason) - set(LOCAL_ONLY_CLOSE_REASONS)


def negotiate_deflate(offers: list[str], enabled: bool) -> tuple[list[Extension], str | None]:
    """Agree on permessage-deflate only when the client offered it."""
    if not enabled or not any(o.lower().startswith("permessage-deflate") for o in offers):
        return [], None
    deflate = PerMessageDeflate()
    answer = server_extensions_handshake(offers, [deflate])
    if answer is None:
        return [], None
    return [deflate], answer.decode("ascii")


class WebSocketChannel:
    """An accepted WebSocket: bytes in → ASGI messages, ASGI messages → bytes."""

    __slots__ = (
        "_extensions",
        "_max",
        "_out",
        "_parts",
        "_size",
        "_unparsed",
        "_ws",
        "close_code",
        "compressed",
        "deferred",
        "failed",
        "finished",
        "hold",
    )

    def __init__(
        self, extensions: list[Extension], trailing: bytes, max_message: int, out: bytearray
    ) -> None:
        self._ws: Connection | None = None
        self._extensions = extensions
        self._unparsed = trailing  # received before wsproto exists
        self.compressed = bool(extensions)
        self._max = max_message
        self._out = out  # shared with the connection: everything to write goes here
        self._parts: list[str | bytes] = []
        self._size = 0
        #: The TCP connection should end once `out` is flushed.
        self.finished = False
        #: Ended by a protocol failure (1002, 1007, 1009 ...) rather than a close handshake.
        self.failed = False
        self.close_code: int | None = None
        #: A failure's close frame, held while the app still has messages to
        #: read and answer (it goes out after them: `send_deferred`).
        self.deferred: tuple[int, str] | None = None
        #: Set by the session while the app has unread messages.
        self.hold = False

    @property
    def closing(self) -> bool:
        """True once the server has sent its close frame."""
        return self._ws is not None and self._ws.state is ConnectionState.LOCAL_CLOSING

    def _wsproto(self) -> Connection:
        if self._ws is None:
            self._ws = Connection(ConnectionType.SERVER, self._extensions, self._unparsed)
            self._unparsed = b""
        return self._ws

    def receive_data(self, data: bytes) -> None:
        if self.finished:
            return
        if self._ws is None and data:
            self._unparsed += data
        else:
            self._wsproto().receive_data(data or None)  # wsproto wants None for EOF

    def next_message(self) -> Message | None:
        """The next message for the app, or None when more bytes are needed."""
        if self.finished:
            return _disconnect(self.close_code or ABNORMAL, "")
        if self._ws is None:
            if not self._unparsed:
                return None
            message = self._lone_close()
            if message is not None:
                return message
        for event in self._wsproto().events():
            message = self._handle(event)
            if message is not None:
                return message
        return None

    def send(self, message: Message) -> None:
        """Frame one websocket.send or websocket.close from the app."""
        if self.finished and not self.deferred:
            return  # closed: late sends are dropped
        if self._wsproto().state is not ConnectionState.OPEN:
            return  # closing or closed: late sends are dropped
        ws = self._wsproto()
        if message["type"] == "websocket.close":
            self.close(int(message.get("code", 1000)), str(message.get("reason") or ""))
            return
        text = message.get("text")
        if text is not None:
            self._out += ws.send(TextMessage(data=text))
        else:
            self._out += ws.send(BytesMessage(data=message.get("bytes") or b""))

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake (a no-op if it already started)."""
        if not self.finished and self._wsproto().state is ConnectionState.OPEN:
            self._out += self._wsproto().send(CloseConnection(code=code, reason=reason))

    def send_deferred(self) -> None:
        """Send a failure's held close frame now."""
        if self.deferred is not None and self._wsproto().state is ConnectionState.OPEN:
            code, reason = self.deferred
            self._out += self._wsproto().send(CloseConnection(code=code, reason=reason))
        self.deferred = None

    def ping(self, payload: bytes = b"") -> None:
        if not self.finished and self._wsproto().state is ConnectionState.OPEN:
            self._out += self._wsproto().send(Ping(payload=payload))

    def _lone_close(self) -> Message | None:
        """Answer the client's close frame without wsproto, when that is all
        there is: one whole masked close frame (FIN, no RSV bits, a payload of
        at most 125 bytes) with a valid code and UTF-8 reason, and nothing
        after it. Returns None for anything else, which wsproto then handles.
        """
        data = self._unparsed
        if len(data) < 6 or data[0] != 0x88 or data[1] & 0x80 == 0:
            return None
        length = data[1] & 0x7F
        if length > 125 or len(data) != 6 + length or length == 1:
            return None
        payload = _unmask(data[2:6], data[6:])
        code, reason = NO_STATUS, ""
        if payload:
            code = int.from_bytes(payload[:2], "big")
            if not (MIN_CLOSE_REASON <= code <= MAX_CLOSE_REASON) or (
                code <= MAX_PROTOCOL_CLOSE_REASON and code not in _KNOWN_CODES
            ):
                return None
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                return None
        # The reply echoes the code (RFC 6455 §5.5.1); an empty close gets an empty one.
        self._out += b"\x88" + bytes((len(payload),)) + payload
        self._unparsed = b""
        self.finished = True
        self.close_code = code
        return _disconnect(code, reason)

    def _handle(self, event: Event) -> Message | None:
        if isinstance(event, WSMessage):
            return self._fragment(event)
        if isinstance(event, Ping):
            if self._wsproto().state is ConnectionState.OPEN:  # no pong after our close frame
                self._out += self._wsproto().send(event.response())
            return None
        if isinstance(event, CloseConnection):
            return self._closed(event)
        return None  # Pong: any bytes at all already count as liveness

    def _fragment(self, event: WSMessage[Any]) -> Message | None:
        data = event.data
        self._size += len(data)
        if self._size > self._max:
            return self._fail(TOO_BIG, "message too big")
        if not self._parts and event.message_finished:
            self._size = 0
            return _receive(data)
        self._parts.append(data)
        if not event.message_finished:
            return None
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(data, str):
            return _receive("".join(cast("list[str]", parts)))
        return _receive(b"".join(cast("list[bytes]", parts)))

    def _closed(self, event: CloseConnection) -> Message:
        ws = self._wsproto()
        state = ws.state
        if state is ConnectionState.REMOTE_CLOSING:  # the client started closing
            self._out += ws.send(event.response())
        elif state is not ConnectionState.CLOSED:  # a parse failure, not a close frame
            return self._fail(event.code, event.reason or "")
        self.finished = True
        self.close_code = event.code
        return _disconnect(event.code, event.reason or "")

    def _fail(self, code: int, reason: str) -> Message:
        """Fail the connection (RFC 6455 §7.1.7): send a close frame, then drop TCP."""
        if code != ABNORMAL:
            if self.hold:
                self.deferred = (code, reason)
            else:
                self.close(code, reason)
        self.finished = self.failed = True
        self.close_code = code
        self._parts = []
        return _disconnect(code, reason)


def _unmask(mask: bytes, data: bytes) -> bytes:
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


def _receive(data: str | bytes | bytearray) -> Message:
    if isinstance(data, str):
        return {"type": "websocket.receive", "text": data}
    return {"type": "websocket.receive", "bytes": bytes(data)}


def _disconnect(code: int, reason: str) -> Message:
    return {"type": "websocket.disconnect", "code": int(code), "reason": reason}
