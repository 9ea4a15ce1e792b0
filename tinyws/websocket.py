"""``WebSocket``: the application's side of one ASGI WebSocket connection.

The connection is a small state machine::

    CONNECTING --accept()--> ACCEPTED --close() / peer closes--> CLOSED
        |
        +--deny() / close() / a refusal--> DENIED

Every method names the states it works in; calling it in another raises
``WebSocketStateError`` saying which state it expected. A refusal in
CONNECTING is a denial (see ``tinyws.denial``); in ACCEPTED it is a close
frame, since the HTTP exchange is over by then.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from typing import Any

from tinyws.datastructures import Namespace
from tinyws.denial import (
    EXTENSION,
    DenialMode,
    close_code,
    close_reason,
    denial_reason,
    error_denial,
    internal_error,
)
from tinyws.errors import HeadersLike, HTTPError, WebSocketDisconnect, WebSocketStateError
from tinyws.request import Request
from tinyws.response import NO_BODY, Response, encode_headers
from tinyws.types import Message, Receive, Send

_RESERVED_CODES = frozenset({1004, 1005, 1006, 1015})


class State(enum.Enum):
    CONNECTING = "CONNECTING"
    ACCEPTED = "ACCEPTED"
    DENIED = "DENIED"
    CLOSED = "CLOSED"


# An Enum member lookup costs as much as twenty plain name lookups on Python
# 3.11, and the handshake path checks the state a dozen times.
CONNECTING, ACCEPTED, DENIED, CLOSED = State


def check_close_code(code: int) -> None:
    if not isinstance(code, int) or not 1000 <= code <= 4999 or code in _RESERVED_CODES:
        raise ValueError(f"{code!r} is not a close code an endpoint may send")


class WebSocket:
    """One WebSocket connection, from the handshake to the close."""

    __slots__ = (
        "_extension",
        "_mode",
        "_receive",
        "_send",
        "_state",
        "_subprotocols",
        "close_code",
        "close_reason",
        "default_mode",
        "request",
        "subprotocol",
    )

    def __init__(self, request: Request, receive: Receive, send: Send, mode: DenialMode) -> None:
        self.request = request
        self._receive = receive
        self._send = send
        self._state = CONNECTING
        self._extension = EXTENSION in (request.scope.get("extensions") or ())
        self._subprotocols: Sequence[str] = ()
        self.default_mode = mode
        self._mode = mode if mode != "auto" else self._resolve(mode)
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    def use_route(self, mode: DenialMode, subprotocols: Sequence[str]) -> None:
        self._mode = self._resolve(mode)
        self._subprotocols = subprotocols

    def _resolve(self, mode: DenialMode) -> DenialMode:
        if mode == "auto":
            return "close" if "origin" in self.request.headers else "http"
        return mode

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
        # CLOSED is only reached from ACCEPTED; a refused handshake ends DENIED.
        return self._state in (ACCEPTED, CLOSED)

    @property
    def answered(self) -> bool:
        """Whether the handshake got its answer (accepted, denied or closed)."""
        return self._state is not CONNECTING

    @property
    def closed(self) -> bool:
        return self._state in (CLOSED, DENIED)

    def _expect(self, action: str, *states: State) -> None:
        if self._state not in states:
            wanted = " or ".join(state.value for state in states)
            raise WebSocketStateError(
                f"{action} needs the WebSocket to be {wanted}, but it is {self._state.value}"
            )

    # -- handshake ---------------------------------------------------------

    async def accept(
        self, subprotocol: str | None = None, headers: HeadersLike | None = None
    ) -> None:
        if self._state is not CONNECTING:
            self._expect("accept()", CONNECTING)
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
        self.subprotocol = subprotocol

    async def deny(self, response: Response) -> None:
        """Refuse the handshake with exactly ``response`` (see ``tinyws.denial``)."""
        self._expect("deny()", CONNECTING)
        status = response.status
        body = b"" if status in NO_BODY else response.body
        await self._deny(status, denial_reason(response), response.raw_headers, body)

    async def _deny(
        self,
        status: int,
        reason: str,
        headers: Callable[[], list[tuple[bytes, bytes]]],
        body: bytes,
    ) -> None:
        # ``headers`` is called only when a denial response is really sent.
        if self._mode == "close":
            await self._accept_then_close(close_code(status), reason)
        elif self._extension:
            self._state = DENIED
            await self._send(
                {"type": "websocket.http.response.start", "status": status, "headers": headers()}
            )
            # One body message: some servers (granian) refuse a denial body in parts.
            await self._send({"type": "websocket.http.response.body", "body": body})
        else:
            await self._close_before_accept(1000, "")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; before ``accept()`` this refuses the handshake.

        Closing an already closed or denied WebSocket does nothing.
        """
        check_close_code(code)
        if self._state is CONNECTING:
            if self._mode == "close":
                await self._accept_then_close(code, reason)
            else:
                # ASGI: a close before accept is a refusal, which servers send as 403.
                await self._close_before_accept(code, reason)
        elif self._state is ACCEPTED:
            self._state = CLOSED
            self.close_code = code
            await self._send(
                {"type": "websocket.close", "code": code, "reason": close_reason(reason)}
            )

    async def _close_before_accept(self, code: int, reason: str) -> None:
        self._state = DENIED
        await self._send({"type": "websocket.close", "code": code, "reason": close_reason(reason)})

    async def _accept_then_close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.accept"})
        self._state = ACCEPTED
        await self.close(code, reason)

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
        self._expect("send()", ACCEPTED)
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
            self._state = CLOSED
            self.close_code = 1006
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
            self._expect("receive()", ACCEPTED)
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text: str | None = message.get("text")
                return text if text is not None else (message.get("bytes") or b"")
            if kind == "websocket.disconnect":
                self._state = CLOSED
                self.close_code = message.get("code") or 1005
                self.close_reason = message.get("reason") or ""
                raise StopAsyncIteration
            # websocket.connect is not consumed before accept(): skipping it here saves a
            # round trip through the server's queue on every handshake.

    # -- endings, decided by the app's pipeline --------------------------------

    async def refuse(self, refusal: HTTPError | Response) -> None:
        """Refuse with an ``HTTPError`` or a guard's ``Response``.

        Before ``accept()`` that is a denial; after it, a close with ``4000 + status``.
        """
        if isinstance(refusal, Response):
            if self._state is CONNECTING:
                await self.deny(refusal)
            elif self._state is ACCEPTED:
                await self._quietly_close(close_code(refusal.status), "")
        elif self._state is CONNECTING and self._mode == "http":
            headers, body = error_denial(refusal)
            await self._deny(refusal.status, refusal.title, headers.copy, body)
        elif self._state in (CONNECTING, ACCEPTED):
            await self._quietly_close(close_code(refusal.status), refusal.title)

    async def crash(self) -> None:
        if self._state is CONNECTING:
            await self.deny(internal_error())
        elif self._state is ACCEPTED:
            await self._quietly_close(1011, "")

    async def finish(self) -> None:
        """The handler returned: an unanswered handshake is denied, an open socket closed."""
        if self._state is CONNECTING:
            await self.refuse(HTTPError(403))
        elif self._state is ACCEPTED:
            await self._quietly_close(1000, "")

    async def _quietly_close(self, code: int, reason: str) -> None:
        # The peer may already be gone; the close is then moot, not an error.
        try:
            await self.close(code, reason)
        except OSError:
            self._state = CLOSED

    def __repr__(self) -> str:
        return f"<WebSocket {self.request.path} {self._state.value}>"


__all__ = ["State", "WebSocket", "check_close_code"]
