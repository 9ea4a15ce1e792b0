"""The WebSocket half of `ServerConnection`: the handshake's answer, then
messages both ways, the incoming queue and the keepalive pings.

After the 101, every byte the runtime reads goes through `_pump`: pings are
answered and a close frame is answered at once (into `output`), whether or
not the app is receiving; data messages wait in a queue for the app. The
queue is bounded (`max_queue` messages, or `max_message` bytes): when it is
full, `ws_paused()` tells the runtime to stop reading this socket, so a
client that sends faster than the app receives is held back by TCP rather
than by the server's memory.
"""

from __future__ import annotations

import math
import time
from collections import deque

from tinyws.errors import ASGIProtocolError, ClientDisconnect
from tinyws.server.config import Limits
from tinyws.server.frames import WebSocketChannel, negotiate_deflate
from tinyws.server.heads import Offer
from tinyws.server.phases import MOVES, Event, Phase, advance
from tinyws.server.responses import (
    FORBIDDEN,
    SERVER_ERROR,
    RawHeaders,
    accept_response,
    asgi_headers,
    denial_response,
)
from tinyws.types import Message, Scope

_CONNECT: Message = {"type": "websocket.connect"}
_GONE: Message = {"type": "websocket.disconnect", "code": 1006, "reason": ""}


class WebSocketSession:
    """State and methods of the WebSocket phases (mixed into `ServerConnection`)."""

    eof: bool
    _buffer: bytes
    #: The clock deadlines are set by (replaceable in tests).
    clock = staticmethod(time.monotonic)

    # Class-level defaults: an instance pays for an attribute only once it
    # changes (most connections never touch most of these).
    #: Closing should be graceful: half-close, then drain what the client sends.
    linger = False
    #: Bytes arrived since the keepalive timer last looked.
    heard = False
    channel: WebSocketChannel | None = None
    #: The handshake's answer: 101, the denial's status, 403 or 500 (0: none yet).
    ws_status = 0
    _offer: Offer | None = None
    _connect_sent = False
    _denial: tuple[int, RawHeaders, list[bytes]] | None = None
    _inbox: deque[Message] | None = None  # created with the first data message
    _queued = 0  # bytes in the inbox
    _app_done = False  # ws_finish ran: nobody receives any more
    _pinged = False
    _farewell: Message | None = None
    _held = False  # the full queue stopped `_pump` with bytes unparsed

    # Set by `ServerConnection.__init__`.
    limits: Limits
    phase: Phase
    #: Bytes the runtime must write, in order.
    output: bytearray
    #: The current deadline (time.monotonic() seconds); see `expire`.
    deadline: float

    def _move(self, event: Event) -> None:
        try:
            self.phase = MOVES[self.phase][event]
        except KeyError:
            advance(self.phase, event)  # raises, naming what was expected
            raise

    def _refuse(self, response: bytes, linger: bool = False) -> Scope | None:
        """Queue a final response and end the connection; returns None (no scope).

        `linger`: the client may still be sending (a body, the rest of a head);
        closing with unread data makes the kernel reset the connection, which
        can destroy the response before the client reads it.
        """
        self.linger = linger
        self.output += response
        self._move(Event.REFUSE)
        return None

    # -- receiving ---------------------------------------------------------------

    def ws_receive(self) -> Message | None:
        """The next websocket.* message for the app, or None when more bytes are needed."""
        channel = self.channel
        if channel is not None:
            if self._held and not self._inbox:  # room again: parse what waited
                self._pump()
            inbox = self._inbox
            if inbox:
                message = inbox.popleft()
                self._queued -= _size(message)
                return message
            if channel.deferred:
                channel.send_deferred()
            return self._farewell  # the end (as often as the app asks), or None
        if self.phase is Phase.HANDSHAKE and not self._connect_sent:
            self._connect_sent = True
            return _CONNECT
        if self.eof or self.phase is not Phase.HANDSHAKE:
            return _GONE
        if len(self._buffer) > self.limits.max_header:  # a flood before the 101
            self._move(Event.ENDED)
            return _GONE
        return None

    def ws_paused(self) -> bool:
        """True when the incoming queue is full: stop reading until the app receives."""
        inbox, limits = self._inbox, self.limits
        return inbox is not None and (
            len(inbox) >= limits.max_queue or self._queued >= limits.max_message
        )

    def ws_queued(self) -> int:
        """Messages waiting for the app (its disconnect message included)."""
        return (len(self._inbox) if self._inbox else 0) + (self._farewell is not None)

    def _pump(self) -> None:
        """Turn received bytes into queued messages, up to the queue's bound.

        Pings and close frames are answered on the way (by the channel). The
        queue is created with the first data message: the common short life
        (accept, then the client's close) never needs one.
        """
        channel = self.channel
        assert channel is not None
        limits = self.limits
        self._held = False
        while self._farewell is None:
            inbox = self._inbox  # ws_paused(), inline: this runs per message
            if inbox is not None and (
                len(inbox) >= limits.max_queue or self._queued >= limits.max_message
            ):
                self._held = True
                return
            # A failure behind unread messages closes after the app's answers
            # to them (Autobahn's strict order), not before.
            channel.hold = bool(self._inbox)
            message = channel.next_message()
            if message is None:
                return
            if channel.finished:
                self._farewell = message
                self._move(Event.ENDED)
                # The client may still be sending: drain rather than reset,
                # so that it gets to read our close frame.
                self.linger = channel.failed
            elif not self._app_done:  # after the app returned, nobody reads it
                if self._inbox is None:
                    self._inbox = deque()
                self._inbox.append(message)
                self._queued += _size(message)

    # -- sending -------------------------------------------------------------------

    def ws_send(self, message: Message) -> None:
        kind = message["type"]
        if self.phase is Phase.HANDSHAKE:
            self._handshake_send(kind, message)
        elif self.phase is Phase.DENYING and kind == "websocket.http.response.body":
            self._denial_body(message)
        elif self.channel is not None and kind in ("websocket.send", "websocket.close"):
            channel = self.channel
            if (channel.finished and not channel.deferred) or self.eof:  # eof: TCP ended
                code = channel.close_code or 1006
                raise ClientDisconnect(f"the WebSocket is closed ({code})")
            channel.send(message)
            if channel.deferred and not self._inbox:
                channel.send_deferred()
            self._closing()
        elif self.phase is Phase.CLOSED and kind in ("websocket.send", "websocket.close"):
            raise ClientDisconnect("the WebSocket is closed")
        else:
            raise ASGIProtocolError(f"{kind!r} is not allowed in state {self.phase.name}")

    def _closing(self) -> None:
        if self.channel is not None and self.channel.closing and self.phase is Phase.OPEN:
            self._move(Event.CLOSE_SENT)
            self.deadline = self.clock() + self.limits.close_timeout

    def _handshake_send(self, kind: str, message: Message) -> None:
        if kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self.ws_status = 403
            self._refuse(FORBIDDEN())
        elif kind == "websocket.http.response.start":
            status = int(message["status"])
            if not 200 <= status <= 599:  # 1xx is not a final response
                raise ASGIProtocolError(f"invalid denial status {status}")
            self._denial = (status, asgi_headers(message), [])
            self.ws_status = status
            self._move(Event.DENY)
        else:
            raise ASGIProtocolError(
                "expected websocket.accept, websocket.close or "
                f"websocket.http.response.start before the handshake, got {kind!r}"
            )

    def _accept(self, message: Message) -> None:
        offer = self._offer
        assert offer is not None
        headers = asgi_headers(message)
        extensions, answer = negotiate_deflate(offer.extensions, self.limits.deflate)
        self.output += accept_response(offer.key, message.get("subprotocol"), answer, headers)
        self.channel = WebSocketChannel(
            extensions, self._buffer, self.limits.max_message, self.output
        )
        self._offer = None
        self._move(Event.ACCEPT)
        self.ws_status = 101
        interval = self.limits.ping_interval
        self.heard = False
        self.deadline = math.inf if interval is None else self.clock() + interval
        if self.eof:
            self.channel.receive_data(b"")
        if self._buffer or self.eof:  # frames that came with the head
            self._pump()
        self._buffer = b""

    def _denial_body(self, message: Message) -> None:
        assert self._denial is not None
        status, headers, chunks = self._denial
        chunks.append(bytes(message.get("body", b"")))
        if message.get("more_body"):
            return
        self._refuse(denial_response(status, headers, b"".join(chunks)))

    # -- endings ---------------------------------------------------------------------

    def ws_finish(self, failed: bool) -> None:
        """The app returned (or raised): settle whatever it left open."""
        self._app_done = True
        if self.channel is not None and self.channel.deferred:
            self.channel.send_deferred()
        if self._inbox is not None:
            self._inbox = None
            self._queued = 0
        if self.phase is Phase.HANDSHAKE or self.phase is Phase.DENYING:
            self.ws_status = 500
            self._refuse(SERVER_ERROR())
        elif self.phase is Phase.OPEN and self.channel is not None:
            self.channel.close(1011 if failed else 1000)
            self._closing()
        if self.channel is not None and self.phase is not Phase.CLOSED:
            self._pump()  # what was held back by the full queue may be the close

    def ws_shutdown(self) -> None:
        """The server is going away: close an open WebSocket with 1001."""
        if self.phase is Phase.OPEN and self.channel is not None:
            self.channel.close(1001)
            self._closing()

    def _keepalive(self, now: float) -> bool:
        """The OPEN deadline passed: push it out, ping, or give up (True)."""
        if self.heard:  # alive: the next ping moves further out
            self.heard = self._pinged = False
            self.deadline = now + (self.limits.ping_interval or math.inf)
            return False
        if not self._pinged and self.channel is not None:
            self._pinged = True
            self.channel.ping()
            self.deadline = now + self.limits.ping_timeout
            return False
        self.deadline = math.inf
        return True


def _size(message: Message) -> int:
    data = message.get("bytes") or message.get("text") or b""
    return len(data)
