"""The server side of one TCP connection, sans-IO: bytes in, ASGI out.

No sockets and no `await` here: the runtime (`loop.py`) feeds received bytes
to `receive_data()`, asks for the next scope or ASGI message, passes the
app's messages to `send()`, and writes whatever accumulates in `output`.
That keeps every protocol decision testable without a network.

How the state machine works
---------------------------

A connection is in exactly one `Phase`. It starts in IDLE, waiting for a
request head. A complete head moves it to

* HTTP - an ordinary request is with the app (h11 frames body and response),
  and back to IDLE when the cycle ends and the connection may be reused;
* HANDSHAKE - a valid WebSocket upgrade is with the app, nothing sent yet;
* CLOSED - the head was refused (400, 413, 426, 431, 505 ...): the refusal
  sits in `output` and the socket is closed once it is written.

From HANDSHAKE, `websocket.accept` writes the 101 and moves to OPEN;
`websocket.http.response.start` moves to DENYING until the last body chunk;
`websocket.close` before accept is a 403 (as ASGI defines). Once the server
has sent its close frame the state is CLOSING until the client answers; a
close frame from the client, a protocol failure (1002, 1007, 1009) or the
end of TCP go straight to CLOSED. CLOSED means: flush `output`, then drop
the socket (with `linger` set, after draining what the client still sends).

    IDLE ──head──▶ HTTP ──cycle done, keep-alive──▶ IDLE
      │             └────────error / close──────────▶ CLOSED
      └──upgrade──▶ HANDSHAKE ──accept──▶ OPEN ──close sent──▶ CLOSING ──▶ CLOSED
                        │                   └──client close / failure──────▶ CLOSED
                        └──deny──▶ DENYING ──body done──▶ CLOSED
"""

from __future__ import annotations

import enum
from typing import Any

import h11

from tinyws.errors import ASGIProtocolError, ClientDisconnect
from tinyws.server.config import Limits
from tinyws.server.frames import WebSocketChannel, negotiate_deflate
from tinyws.server.heads import (
    Offer,
    RequestHead,
    check_upgrade,
    parse_plain_head,
    wants_websocket,
)
from tinyws.server.http11 import HTTPCycle
from tinyws.server.responses import (
    FORBIDDEN,
    SERVER_ERROR,
    RawHeaders,
    accept_response,
    asgi_headers,
    denial_response,
    error_response,
)
from tinyws.server.scope import build_scope
from tinyws.types import Message, Scope


class Phase(enum.Enum):
    """Where one connection is; see the diagram above."""

    IDLE = "idle"
    HTTP = "http"
    HANDSHAKE = "handshake"
    DENYING = "denying"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_CONNECT: Message = {"type": "websocket.connect"}


class ServerConnection:
    """Protocol state for one connection; see the module docstring."""

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
        #: Bytes the runtime must write, in order.
        self.output = bytearray()
        self.eof = False
        self.keep_alive = True
        #: Closing should be graceful: half-close, then drain what the client sends.
        self.linger = False
        self._buffer = b""
        self._cycle: HTTPCycle | None = None
        self._h11: h11.Connection | None = None
        self._offer: Offer | None = None
        self._connect_sent = False
        self._denial: tuple[int, RawHeaders, list[bytes]] | None = None
        self.channel: WebSocketChannel | None = None

    # -- input -------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; b"" means the client closed its side."""
        if self.eof:
            return  # nothing can follow the end
        if not data:
            self.eof = True
        if self.channel is not None:
            self.channel.receive_data(data)
        elif self._h11 is not None:
            self._h11.receive_data(data)
        elif data:
            self._buffer += data

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
        self.output.clear()
        return data

    # -- request heads -------------------------------------------------------

    def next_request(self) -> Scope | None:
        """The scope of the next request, or None (more bytes needed, or CLOSED)."""
        if self.phase is not Phase.IDLE:
            raise ASGIProtocolError(f"next_request() in state {self.phase.name}")
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > self.limits.max_header:
                return self._refuse(error_response(431), linger=True)
            if self.eof:
                self.phase = Phase.CLOSED
            return None
        if end + 4 > self.limits.max_header:
            return self._refuse(error_response(431), linger=True)
        head = parse_plain_head(self._buffer[:end])
        if head is not None:
            self._buffer = self._buffer[end + 4 :]
            return self._upgrade(head)
        return self._parse_with_h11()

    def _parse_with_h11(self) -> Scope | None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header)
        conn.receive_data(self._buffer)
        if self.eof:
            conn.receive_data(b"")
        self._buffer = b""
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return self._refuse(error_response(exc.error_status_hint or 400), linger=True)
        if not isinstance(event, h11.Request):  # e.g. only blank lines before EOF
            return self._refuse(error_response(400), linger=True)
        head = RequestHead(event.method, event.target, event.http_version, list(event.headers))
        if head.http_version not in (b"1.0", b"1.1"):
            return self._refuse(error_response(505), linger=True)
        if wants_websocket(head.headers):
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
        self.phase = Phase.HTTP
        return self._scope("http", head)

    def _upgrade(self, head: RequestHead) -> Scope | None:
        offer = check_upgrade(head)
        if isinstance(offer, bytes):
            return self._refuse(offer)
        self._offer = offer
        self.phase = Phase.HANDSHAKE
        scope = self._scope("websocket", head)
        scope["subprotocols"] = offer.subprotocols
        return scope

    def _scope(self, kind: str, head: RequestHead) -> Scope:
        return build_scope(
            kind,
            head,
            client=self.client,
            server=self.server,
            root_path=self.limits.root_path,
            state=self.lifespan_state,
        )

    def _refuse(self, response: bytes, linger: bool = False) -> Scope | None:
        """Queue a final response and end the connection; returns None (no scope).

        `linger`: the client may still be sending (a body, the rest of a head);
        closing with unread data makes the kernel reset the connection, which
        can destroy the response before the client reads it.
        """
        self.linger = linger
        self.output += response
        self.phase = Phase.CLOSED
        return None

    # -- HTTP ------------------------------------------------------------------

    def http_receive(self) -> Message | None:
        """The next http.* message for the app, or None when more bytes are needed."""
        cycle = self._cycle
        if cycle is None:
            return {"type": "http.disconnect"}
        message, out = cycle.receive()
        self.output += out
        if cycle.too_large and not cycle.head_sent:
            self.output += cycle.error_response(413)
            self.linger = True
            self.keep_alive = False
        if message is None and self.eof:
            cycle.disconnected = True
            return {"type": "http.disconnect"}
        return message

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
        if not reusable:
            self._h11 = None
            self.phase = Phase.CLOSED
            return
        conn.start_next_cycle()
        self._buffer = conn.trailing_data[0]
        self._h11 = None
        self.phase = Phase.IDLE

    @property
    def response_status(self) -> int:
        return self._cycle.status if self._cycle is not None else 0

    # -- WebSocket --------------------------------------------------------------

    def ws_receive(self) -> Message | None:
        """The next websocket.* message for the app, or None when more bytes are needed."""
        if self.channel is not None:
            message = self.channel.next_message()
            if self.channel.finished:
                self.phase = Phase.CLOSED
                # The client may still be sending: drain rather than reset,
                # so that it gets to read our close frame.
                self.linger = self.channel.failed
            return message
        if self.phase is Phase.HANDSHAKE and not self._connect_sent:
            self._connect_sent = True
            return _CONNECT
        if self.eof or self.phase is not Phase.HANDSHAKE:
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        if len(self._buffer) > self.limits.max_header:  # a flood before the 101
            self.phase = Phase.CLOSED
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        return None

    def ws_send(self, message: Message) -> None:
        kind = message["type"]
        if self.phase is Phase.HANDSHAKE:
            self._handshake_send(kind, message)
        elif self.phase is Phase.DENYING and kind == "websocket.http.response.body":
            self._denial_body(message)
        elif self.channel is not None and kind in ("websocket.send", "websocket.close"):
            if self.channel.finished or self.eof:  # eof: the TCP connection ended
                raise ClientDisconnect("the WebSocket is closed")
            self.channel.send(message)
            if self.channel.closing:
                self.phase = Phase.CLOSING
        elif self.phase is Phase.CLOSED and kind in ("websocket.send", "websocket.close"):
            raise ClientDisconnect("the WebSocket is closed")
        else:
            raise ASGIProtocolError(f"{kind!r} is not allowed in state {self.phase.name}")

    def _handshake_send(self, kind: str, message: Message) -> None:
        if kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.close":
            self._refuse(FORBIDDEN())
        elif kind == "websocket.http.response.start":
            status = int(message["status"])
            if not 200 <= status <= 599:  # 1xx is not a final response
                raise ASGIProtocolError(f"invalid denial status {status}")
            self._denial = (status, asgi_headers(message), [])
            self.phase = Phase.DENYING
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
        self._buffer = b""
        self._offer = None
        self.phase = Phase.OPEN

    def _denial_body(self, message: Message) -> None:
        assert self._denial is not None
        status, headers, chunks = self._denial
        chunks.append(bytes(message.get("body", b"")))
        if message.get("more_body"):
            return
        self._refuse(denial_response(status, headers, b"".join(chunks)))

    def ws_finish(self, failed: bool) -> None:
        """The app returned (or raised): settle whatever it left open."""
        if self.phase is Phase.HANDSHAKE or self.phase is Phase.DENYING:
            self._refuse(SERVER_ERROR())
        elif self.phase is Phase.OPEN and self.channel is not None:
            self.channel.close(1011 if failed else 1000)
            self.phase = Phase.CLOSING

    def ws_shutdown(self) -> None:
        """The server is going away: close an open WebSocket with 1001."""
        if self.phase is Phase.OPEN and self.channel is not None:
            self.channel.close(1001)
            self.phase = Phase.CLOSING
