"""The server side of one TCP connection, sans-IO: bytes in, ASGI out.

No sockets and no `await` here: the runtime (`peer.py`) feeds received bytes
to `receive_data()`, asks for the next scope or ASGI message, passes the
app's messages to `send()`, and writes whatever accumulates in `output`.
Phases and moves: `phases.py`; the WebSocket half: `ws_session.py`.

The core owns the connection's one timer: `deadline` (`time.monotonic()`
seconds, `math.inf` for none) is set on every move that starts a wait;
`expire(now)` decides what a passed deadline means (a ping, or the end).
"""

from __future__ import annotations

import math
from typing import Any

import h11

from tinyws.errors import ClientDisconnect
from tinyws.server import heads
from tinyws.server.config import Limits
from tinyws.server.heads import RequestHead, check_upgrade, parse_plain_head
from tinyws.server.http11 import HTTPCycle
from tinyws.server.phases import Event, Phase, advance
from tinyws.server.responses import error_response
from tinyws.server.scope import build_scope
from tinyws.server.ws_session import WebSocketSession
from tinyws.types import Message, Scope

__all__ = ["Phase", "ServerConnection"]

#: Seconds a request body may be slower than `min_data_rate` at its start.
RATE_GRACE = 5.0
_DISCONNECT: Message = {"type": "http.disconnect"}


class ServerConnection(WebSocketSession):
    """Protocol state for one connection; see the module docstring."""

    eof = False
    keep_alive = True
    _cycle: HTTPCycle | None = None
    _h11: h11.Connection | None = None
    _between = False  # kept alive between requests, no byte of the next yet
    _body_start = 0.0  # when the request body began (clock seconds)

    def __init__(
        self,
        limits: Limits,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        lifespan_state: dict[str, Any] | None = None,
    ) -> None:
        self.limits = limits
        self.client = client
        self.server = server
        self.lifespan_state = lifespan_state
        self.phase = Phase.IDLE
        self.output = bytearray()
        self._buffer = b""
        self.deadline = self.clock() + limits.head_timeout

    # -- input -------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; b"" means the client closed its side."""
        if self.eof:
            return  # nothing can follow the end
        self.heard = True
        if not data:
            self.eof = True
        if self.channel is not None:
            self.channel.receive_data(data)
            self._pump()
        elif self._h11 is not None:
            self._h11.receive_data(data)
        elif data:
            self._buffer += data
            if self._between:  # a new head has started: the head timer runs
                self._between = False
                self.deadline = self.clock() + self.limits.head_timeout

    def has_buffered_data(self) -> bool:
        """True when bytes of a next request are already here (pipelining)."""
        return bool(self._buffer)

    def awaiting_body(self) -> bool:
        """True while the request body is still coming in."""
        conn = self._h11
        return conn is not None and conn.their_state is h11.SEND_BODY

    def reading_paused(self) -> bool:
        """True when the request is complete and too much of the next one is queued.

        The runtime then stops reading until the app finishes (backpressure).
        """
        conn = self._h11
        return (
            conn is not None
            and conn.their_state is not h11.SEND_BODY
            and len(conn.trailing_data[0]) > self.limits.max_header
        )

    def take_output(self) -> bytes:
        data = bytes(self.output)
        del self.output[:]
        return data

    # -- the timer -------------------------------------------------------------

    def expire(self, now: float) -> bool:
        """The deadline passed: True when the connection should be dropped.

        An open WebSocket heard from since the last look gets a new interval;
        one that was not gets a ping (in `output`). Anything else waited too long.
        """
        if self.phase is Phase.OPEN:
            return self._keepalive(now)
        self.deadline = math.inf
        return True

    def slow_body(self, now: float) -> bool:
        """True while a request body comes in slower than `min_data_rate`
        (grace or not): at the connection cap, such a client may be evicted."""
        rate = self.limits.min_data_rate
        cycle = self._cycle
        return (
            rate is not None
            and cycle is not None
            and self.awaiting_body()
            and cycle.body_seen < (now - self._body_start) * rate
        )

    # -- request heads -------------------------------------------------------

    def next_request(self) -> Scope | None:
        """The scope of the next request, or None (more bytes needed, or CLOSED)."""
        if self.phase is not Phase.IDLE:
            advance(self.phase, Event.REQUEST)  # raises, naming what was expected
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > self.limits.max_header:
                return self._refuse(error_response(431), linger=True)
            if b"\n" in self._buffer and heads.bare_lf(self._buffer):
                return self._refuse(error_response(400, b"Bare LF in the request head"), True)
            if self.eof:
                self._move(Event.ENDED)
            return None
        if end + 4 > self.limits.max_header:
            return self._refuse(error_response(431), linger=True)
        head = parse_plain_head(self._buffer[:end])
        if head is not None:
            self._buffer = self._buffer[end + 4 :]
            return self._upgrade(head)
        if heads.bare_lf(self._buffer[: end + 2]):
            return self._refuse(error_response(400, b"Bare LF in the request head"), True)
        return self._parse_with_h11()

    def _parse_with_h11(self) -> Scope | None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header)
        raw, self._buffer = self._buffer, b""
        conn.receive_data(raw)
        if self.eof:
            conn.receive_data(b"")
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint or 400
            if status == 501 and heads.chunked_twice(raw):  # a framing error, not a feature
                status = 400
            return self._refuse(error_response(status), linger=True)
        if not isinstance(event, h11.Request):  # e.g. only blank lines before EOF
            return self._refuse(error_response(400), linger=True)
        head = RequestHead(event.method, event.target, event.http_version, list(event.headers))
        if head.http_version not in (b"1.0", b"1.1"):
            return self._refuse(error_response(505), linger=True)
        if heads.wants_websocket(head.headers):
            self._buffer = conn.trailing_data[0]
            return self._upgrade(head)
        return self._http_request(conn, head)

    def _http_request(self, conn: h11.Connection, head: RequestHead) -> Scope | None:
        lengths = [v for n, v in head.headers if n == b"content-length"]
        chunked = any(n == b"transfer-encoding" for n, _ in head.headers)
        if lengths and chunked:
            return self._refuse(
                error_response(400, b"Content-Length with Transfer-Encoding"), linger=True
            )
        limit = self.limits.max_body
        if limit is not None and lengths and int(lengths[0]) > limit:
            return self._refuse(error_response(413), linger=True)
        self._h11 = conn
        self._cycle = HTTPCycle(conn, head.method, limit)
        self._move(Event.REQUEST)
        self.deadline = math.inf
        self._body_start = self.clock()
        return self._scope("http", head)

    def _upgrade(self, head: RequestHead) -> Scope | None:
        offer = check_upgrade(head)
        if isinstance(offer, bytes):
            return self._refuse(offer)
        self._offer = offer
        self._move(Event.UPGRADE)
        self.deadline = math.inf
        scope = self._scope("websocket", head)
        scope["subprotocols"] = offer.subprotocols
        return scope

    def _scope(self, kind: str, head: RequestHead) -> Scope:
        client, server, limits = self.client, self.server, self.limits
        root, state, source = limits.root_path, self.lifespan_state, limits.source
        return build_scope(
            kind, head, client=client, server=server, root_path=root, state=state, source=source
        )

    # -- HTTP ------------------------------------------------------------------

    def http_receive(self) -> Message | None:
        """The next http.* message for the app, or None when more bytes are needed."""
        cycle = self._cycle
        if cycle is None:
            return _DISCONNECT
        message, out = cycle.receive()
        self.output += out
        if cycle.too_large and not cycle.head_sent:
            self.output += cycle.error_response(413)
            self.linger = True
            self.keep_alive = False
        if message is None and self.eof:
            cycle.disconnected = True
            return _DISCONNECT
        self._body_timer(message is None and self.awaiting_body())
        return message

    def _body_timer(self, waiting: bool) -> None:
        """While the body comes in: each pause is bounded by the head timeout,
        and the whole body must average `min_data_rate` after a grace period.
        (Waiting for a disconnect after the body has no limit: long polling.)
        """
        if not waiting:
            self.deadline = math.inf
            return
        now = self.clock()
        self.deadline = now + self.limits.head_timeout
        rate = self.limits.min_data_rate
        cycle = self._cycle
        if rate is not None and cycle is not None:
            due = self._body_start + RATE_GRACE + cycle.body_seen / rate
            self.deadline = min(self.deadline, due)

    def http_send(self, message: Message) -> None:
        cycle = self._cycle
        if cycle is None:
            raise ClientDisconnect("the connection is closed")
        if cycle.too_large and cycle.status == 413:
            return  # the app is answering a request that was already refused
        self.output += cycle.send(message)

    def http_finish(self, failed: bool) -> None:
        """The app returned (or raised); end the cycle, keep-alive if possible."""
        cycle, conn = self._cycle, self._h11
        assert cycle is not None and conn is not None
        if not cycle.head_sent and cycle.malformed and not self.eof:
            self.output += cycle.error_response(400)
        elif not cycle.head_sent and not cycle.disconnected:
            self.output += cycle.error_response(500)
        if not failed:
            cycle.skip_unread_body()
        reusable = (
            cycle.done
            and not failed
            and self.keep_alive
            and not self.eof
            and conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
        )
        self._cycle = None
        self._h11 = None
        if not reusable:
            self._move(Event.ENDED)
            return
        conn.start_next_cycle()
        self._buffer = conn.trailing_data[0]
        self._move(Event.REUSE)
        self._between = not self._buffer
        timeout = self.limits.keepalive_timeout if self._between else self.limits.head_timeout
        self.deadline = self.clock() + timeout

    def client_left(self) -> bool:
        """True when the client went away before the request was complete."""
        cycle = self._cycle
        return cycle is not None and cycle.disconnected and self.eof and not cycle.too_large

    @property
    def response_status(self) -> int:
        return self._cycle.status if self._cycle is not None else 0
