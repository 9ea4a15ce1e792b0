"""WebSocket frames after the 101: wsproto's frame-level `Connection` ⇄ ASGI.

The opening handshake never goes through wsproto (it is parsed once, in
`handshake.py`); a `wsproto.connection.Connection` is created only when the
app accepts, so refused handshakes never pay for it.

The channel answers pings and close frames by itself, reassembles fragmented
messages, enforces the message size limit (1009) and turns wsproto's parse
failures (1002 protocol error, 1007 invalid UTF-8 ...) into a close frame
followed by the end of the TCP connection.
"""

from __future__ import annotations

from typing import Any

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
from wsproto.handshake import server_extensions_handshake

from tinyws.types import Message

ABNORMAL = 1006
TOO_BIG = 1009


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
        "_max",
        "_out",
        "_parts",
        "_size",
        "_ws",
        "close_code",
        "compressed",
        "failed",
        "finished",
    )

    def __init__(
        self, extensions: list[Extension], trailing: bytes, max_message: int, out: bytearray
    ) -> None:
        self._ws = Connection(ConnectionType.SERVER, extensions, trailing)
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

    @property
    def closing(self) -> bool:
        """True once the server has sent its close frame."""
        return self._ws.state is ConnectionState.LOCAL_CLOSING

    def receive_data(self, data: bytes) -> None:
        if self.finished:
            return
        self._ws.receive_data(data or None)  # wsproto wants None for EOF

    def next_message(self) -> Message | None:
        """The next message for the app, or None when more bytes are needed."""
        if self.finished:
            return _disconnect(self.close_code or ABNORMAL, "")
        for event in self._ws.events():
            message = self._handle(event)
            if message is not None:
                return message
        return None

    def send(self, message: Message) -> None:
        """Frame one websocket.send or websocket.close from the app."""
        if self._ws.state is not ConnectionState.OPEN:
            return  # closing or closed: late sends are dropped
        if message["type"] == "websocket.close":
            self.close(int(message.get("code", 1000)), str(message.get("reason") or ""))
            return
        text = message.get("text")
        if text is not None:
            self._out += self._ws.send(TextMessage(data=text))
        else:
            self._out += self._ws.send(BytesMessage(data=message.get("bytes") or b""))

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake (a no-op if it already started)."""
        if self._ws.state is ConnectionState.OPEN:
            self._out += self._ws.send(CloseConnection(code=code, reason=reason))

    def ping(self, payload: bytes = b"") -> None:
        if self._ws.state is ConnectionState.OPEN:
            self._out += self._ws.send(Ping(payload=payload))

    def _handle(self, event: Event) -> Message | None:
        if isinstance(event, WSMessage):
            return self._fragment(event)
        if isinstance(event, Ping):
            self._out += self._ws.send(event.response())
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
            return _receive("".join(parts))  # type: ignore[arg-type]
        return _receive(b"".join(parts))  # type: ignore[arg-type]

    def _closed(self, event: CloseConnection) -> Message:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:  # the client started closing
            self._out += self._ws.send(event.response())
        elif state is not ConnectionState.CLOSED:  # a parse failure, not a close frame
            return self._fail(event.code, event.reason or "")
        self.finished = True
        self.close_code = event.code
        return _disconnect(event.code, event.reason or "")

    def _fail(self, code: int, reason: str) -> Message:
        """Fail the connection (RFC 6455 §7.1.7): send a close frame, then drop TCP."""
        if code != ABNORMAL:
            self.close(code, reason)
        self.finished = self.failed = True
        self.close_code = code
        self._parts = []
        return _disconnect(code, reason)


def _receive(data: str | bytes | bytearray) -> Message:
    if isinstance(data, str):
        return {"type": "websocket.receive", "text": data}
    return {"type": "websocket.receive", "bytes": bytes(data)}


def _disconnect(code: int, reason: str) -> Message:
    return {"type": "websocket.disconnect", "code": int(code), "reason": reason}
