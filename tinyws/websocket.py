"""``WebSocket``: the application's side of one ASGI WebSocket connection.

Its states and their one transition table are in ``ws_state.py``; how a
refusal reaches the client (denial, fallback, accept-then-close) is decided
in ``denial.py``. This class keeps the SPEC's API and records what the
client saw: ``status`` (101 or the denial's) and ``close_code``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tinyws import denial
from tinyws.datastructures import Namespace
from tinyws.denial import EXTENSION, DenialMode, Ending, Way, way_of
from tinyws.errors import HeadersLike, HTTPError, WebSocketDisconnect
from tinyws.request import Request
from tinyws.response import Response, encode_headers
from tinyws.types import Message, Receive, Send
from tinyws.ws_state import ACCEPTED, CLOSED, CONNECTING, DENIED, GONE, expect, transition

_RESERVED_CODES = frozenset({1004, 1005, 1006, 1015})
# A pipeline ending from ``tinyws.denial`` (crash, unanswered): (send, way, accepted) -> Ending.
Settle = Callable[[Send, Way, bool], Awaitable[Ending]]


def check_close_code(code: int) -> None:
    if not isinstance(code, int) or not 1000 <= code <= 4999 or code in _RESERVED_CODES:
        raise ValueError(f"{code!r} is not a close code an endpoint may send")


_OVER = frozenset({DENIED, CLOSED, GONE})  # the states nothing leaves


class WebSocket:
    """One WebSocket connection, from the handshake to the close."""

    __slots__ = (
        "_extension",
        "_receive",
        "_send",
        "_state",
        "_subprotocols",
        "_way",
        "close_code",
        "close_reason",
        "request",
        "status",
        "subprotocol",
    )

    def __init__(self, request: Request, receive: Receive, send: Send, mode: DenialMode) -> None:
        self.request = request
        self._receive = receive
        self._send = send
        self._state = CONNECTING
        self._extension = extension = EXTENSION in (request.scope.get("extensions") or ())
        self._way: Way
        if mode == "http":  # the default, decided without a call
            self._way = "http" if extension else "fallback"
        else:  # only "auto" reads the headers
            self._way = way_of(mode, extension, mode == "auto" and self._browser())
        self._subprotocols: Sequence[str] = ()
        self.status: int | None = None
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    def _browser(self) -> bool:
        return "origin" in self.request.headers

    def _use_route(self, mode: DenialMode | None, subprotocols: Sequence[str]) -> None:
        """The matched route's denial mode (if it sets one) and subprotocols."""
        if mode is not None:
            self._way = way_of(mode, self._extension, mode == "auto" and self._browser())
        self._subprotocols = subprotocols

    @property
    def params(self) -> dict[str, Any]:
        return self.request.params

    @property
    def context(self) -> Namespace:
        return self.request.context

    @property
    def state(self) -> Namespace:
        return self.request.state

    @property
    def accepted(self) -> bool:
        # CLOSED and GONE are only reached from ACCEPTED; a refusal ends DENIED.
        return self._state is ACCEPTED or self._state is CLOSED or self._state is GONE

    @property
    def closed(self) -> bool:
        return self._state in _OVER

    # -- handshake ---------------------------------------------------------

    async def accept(
        self, subprotocol: str | None = None, headers: HeadersLike | None = None
    ) -> None:
        if self._state is not CONNECTING:
            expect(self._state, "accept()", CONNECTING)
        if subprotocol is None:
            if self._subprotocols:
                offered = self.request.subprotocols
                subprotocol = next((p for p in offered if p in self._subprotocols), None)
        elif subprotocol not in self.request.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers is not None:
            message["headers"] = encode_headers(headers)
        await self._send(message)
        self._state = ACCEPTED
        self.status = 101
        self.subprotocol = subprotocol

    async def deny(self, response: Response) -> None:
        """Refuse the handshake with exactly ``response`` (see ``tinyws.denial``)."""
        expect(self._state, "deny()", CONNECTING)
        self._record(await denial.deny(self._refusal_send(), self._way, response))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; before ``accept()`` this refuses the handshake.

        Closing an already closed or denied WebSocket does nothing.
        """
        check_close_code(code)
        if self._state is CONNECTING:
            send = self._refusal_send()
            self._record(await denial.close_unaccepted(send, self._way, code, reason))
        elif self._state is ACCEPTED:
            self._state = transition(self._state, "close", "close()")
            self.close_code = code
            await denial.close_accepted(self._send, code, reason)

    # The pipeline's endings, if the connection is still open. Two methods, not
    # one taking *args: unpacking them cost 3 % of a refused handshake.

    async def _settle(self, end: Settle) -> None:
        """End the connection with ``denial.crash`` or ``denial.unanswered``."""
        state = self._state
        if state is CONNECTING:
            send = self._send if self._way != "close" else self._refusal_send()
            self._record(await end(send, self._way, False))
        elif state is ACCEPTED:
            self._record(await end(self._send, self._way, True))

    async def _refuse(self, refusal: HTTPError | Response) -> None:
        """End the connection with ``denial.refuse``: an ``HTTPError`` or a guard's ``Response``."""
        state = self._state
        if state is CONNECTING:
            send = self._send if self._way != "close" else self._refusal_send()
            self._record(await denial.refuse(send, self._way, False, refusal))
        elif state is ACCEPTED:
            self._record(await denial.refuse(self._send, self._way, True, refusal))

    def _refusal_send(self) -> Send:
        """How a refusal is sent: with a subprotocol when it accepts one a client offered."""
        if self._way != "close":
            return self._send
        offered = self.request.subprotocols
        if not offered:
            return self._send
        chosen = next((p for p in offered if p in self._subprotocols), offered[0])
        return denial.with_subprotocol(self._send, chosen)

    def _record(self, ending: Ending) -> None:
        status, code = ending
        if code is None:
            self._state = transition(self._state, "deny", "a denial")
            self.status = status
            return
        if self._state is CONNECTING:  # the "close" way: accepted, then closed
            self._state = transition(self._state, "accept", "a denial")
            self.status = 101
        self._state = transition(self._state, "close", "a close")
        self.close_code = code

    def _gone(self, code: int, reason: str) -> None:
        """The client left (its close frame, or the connection dropped)."""
        if self._state is ACCEPTED:
            self._state = transition(self._state, "gone", "a disconnect")
            self.close_code, self.close_reason = code, reason

    # -- messages ----------------------------------------------------------

    async def receive(self) -> str | bytes:
        """The next message; raises ``WebSocketDisconnect`` once the peer has closed."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise WebSocketDisconnect(self.close_code or 1005, self.close_reason) from None

    async def receive_text(self) -> str:
        message = await self.receive()
        if not isinstance(message, str):
            raise TypeError("expected a text message, got a binary one")
        return message

    async def receive_bytes(self) -> bytes:
        message = await self.receive()
        if not isinstance(message, bytes):
            raise TypeError("expected a binary message, got a text one")
        return message

    async def receive_json(self) -> Any:
        return json.loads(await self.receive())

    async def send(self, data: str | bytes) -> None:
        if self._state is not ACCEPTED:
            if self._state is GONE:
                raise WebSocketDisconnect(self.close_code or 1006, self.close_reason)
            expect(self._state, "send()", ACCEPTED)
        if isinstance(data, str):
            message: Message = {"type": "websocket.send", "text": data}
        elif isinstance(data, bytes | bytearray | memoryview):
            message = {"type": "websocket.send", "bytes": bytes(data)}
        else:
            raise TypeError(f"send() takes str or bytes, got {type(data).__name__}")
        try:
            await self._send(message)
        except OSError:
            # ASGI servers raise an OSError once the peer is gone (spec 2.4).
            self._gone(1006, "")
            raise WebSocketDisconnect(1006) from None

    async def send_text(self, data: str) -> None:
        if not isinstance(data, str):
            raise TypeError(f"send_text() takes str, got {type(data).__name__}")
        await self.send(data)

    async def send_bytes(self, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"send_bytes() takes bytes, got {type(data).__name__}")
        await self.send(data)

    async def send_json(self, data: Any) -> None:
        await self.send(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        """The next message; the peer's close ends ``async for``, not an exception.

        A class iterator, not an async generator: asyncio tracks every async
        generator in a weak set, which costs more than the loop itself.
        """
        if self._state is not ACCEPTED:
            if self._state is GONE:
                raise StopAsyncIteration
            expect(self._state, "receive()", ACCEPTED)
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text: str | None = message.get("text")
                return text if text is not None else (message.get("bytes") or b"")
            if kind == "websocket.disconnect":
                self._gone(message.get("code") or 1005, message.get("reason") or "")
                raise StopAsyncIteration
            # websocket.connect is not consumed before accept(): skipping it here saves a
            # round trip through the server's queue on every handshake.

    def __repr__(self) -> str:
        return f"<WebSocket {self.request.path} {self._state.value}>"


__all__ = ["WebSocket", "check_close_code"]
