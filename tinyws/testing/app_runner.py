"""The server half of the test client: an app call driven on an event loop, no sockets.

The test client plays the server. Its synchronous API lives on the test's
thread; the app runs on an event loop in a background thread (an anyio
blocking portal). This module holds what runs on that loop:

- ``HTTPTask`` runs one HTTP request start to finish in a single call.
- ``AppTask`` runs a long-lived call (lifespan, WebSocket) as a task that
  talks to the test through two in-memory queues, one each way. Every method
  the test calls crosses into the loop through the portal and waits at most
  ``timeout`` seconds, so a broken app fails a test instead of hanging it.
- ``WebSocketTask`` adds the ASGI WebSocket state machine::

      CONNECTING --accept--> ACCEPTED --send--> ACCEPTED
      CONNECTING --close--> CLOSED                  (the server answers 403)
      CONNECTING --http.response.start--> DENYING   (only with the extension)
      DENYING --http.response.body(more_body)--> DENYING, last body --> CLOSED
      ACCEPTED --close--> CLOSED;  the client closing --> CLOSED

  Each message the app sends is checked against the state. A message the
  state forbids raises ``ASGIProtocolError`` at the app's ``send`` and is
  reported to the test whatever ``raise_server_exceptions`` says: a real
  server would drop it or hang, which a test cannot show. A send after the
  client closed raises an ``OSError`` subclass, as ASGI 2.4 asks of servers;
  an app that dies of that is not reported (no client could have seen it).
"""

from __future__ import annotations

import concurrent.futures
import enum
import math
from types import TracebackType

import anyio
from anyio.from_thread import BlockingPortal
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from tinyws.errors import ASGIProtocolError, ClientDisconnect
from tinyws.types import ASGIApp, Message, Scope


def _queue() -> tuple[MemoryObjectSendStream[Message], MemoryObjectReceiveStream[Message]]:
    return anyio.create_memory_object_stream[Message](max_buffer_size=math.inf)


class AppTask:
    """One app call running as a task on the portal's loop, fed through queues."""

    def __init__(self, portal: BlockingPortal, app: ASGIApp, scope: Scope, timeout: float) -> None:
        self.portal = portal
        self.timeout = timeout
        self.exception: Exception | None = None
        self.protocol_error: ASGIProtocolError | None = None
        self._reported = False
        self._finished = False
        self._to_app, self._app_inbox = portal.call(_queue)
        self._app_outbox, self._from_app = portal.call(_queue)
        self._future = portal.start_task_soon(self._run, app, scope)

    # -- on the loop ---------------------------------------------------------

    async def _run(self, app: ASGIApp, scope: Scope) -> None:
        # Closing the outbox is how the test learns that the app has returned.
        async with self._app_outbox:
            try:
                await app(scope, self.app_receive, self.app_send)
            except Exception as exc:
                self.exception = exc

    async def app_receive(self) -> Message:
        return await self._app_inbox.receive()

    async def app_send(self, message: Message) -> None:
        await self._app_outbox.send(message)

    def misuse(self, text: str) -> ASGIProtocolError:
        self.protocol_error = ASGIProtocolError(text)
        return self.protocol_error

    async def _next(self) -> Message | None:
        with anyio.fail_after(self.timeout):
            try:
                return await self._from_app.receive()
            except anyio.EndOfStream:
                return None

    def _close_queues(self) -> None:
        for stream in (self._to_app, self._app_inbox, self._app_outbox, self._from_app):
            stream.close()

    # -- on the test's thread ------------------------------------------------

    def put(self, message: Message) -> None:
        self.portal.call(self._to_app.send_nowait, message)

    def get(self) -> Message | None:
        """The app's next message, or ``None`` once the app has returned."""
        try:
            return self.portal.call(self._next)
        except TimeoutError:
            raise TimeoutError(f"the app sent no message within {self.timeout} s") from None

    def finish(self) -> None:
        """Wait for the app to return (cancel it after the timeout) and free the queues."""
        if self._finished:
            return
        self._finished = True
        try:
            self._future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            self._future.cancel()
            raise TimeoutError(
                f"the app did not return within {self.timeout} s after the connection ended;"
                " it was cancelled"
            ) from None
        finally:
            self.portal.call(self._close_queues)

    def abandon(self) -> None:
        """Cancel the app at once and free the queues: the test has already failed."""
        if not self._finished:
            self._finished = True
            self._future.cancel()
            self.portal.call(self._close_queues)

    def __enter__(self) -> AppTask:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # As a context manager: wait for the app normally, abandon it on an error.
        if exc_type is None:
            self.finish()
        else:
            self.abandon()

    def take_error(self, raise_server_exceptions: bool) -> Exception | None:
        """The error to raise in the test, once: misuse always, app exceptions if asked."""
        if self._reported:
            return None
        error: Exception | None = self.protocol_error
        if (
            error is None
            and raise_server_exceptions
            and not isinstance(self.exception, ClientDisconnect)
        ):
            error = self.exception
        self._reported = error is not None
        return error


class SessionState(enum.Enum):
    CONNECTING = "CONNECTING"
    ACCEPTED = "ACCEPTED"
    DENYING = "DENYING"
    CLOSED = "CLOSED"


# (state, message the app sends) -> next state; anything missing is misuse.
_WS_TRANSITIONS = {
    (SessionState.CONNECTING, "websocket.accept"): SessionState.ACCEPTED,
    (SessionState.CONNECTING, "websocket.close"): SessionState.CLOSED,
    (SessionState.CONNECTING, "websocket.http.response.start"): SessionState.DENYING,
    (SessionState.DENYING, "websocket.http.response.body"): SessionState.DENYING,
    (SessionState.ACCEPTED, "websocket.send"): SessionState.ACCEPTED,
    (SessionState.ACCEPTED, "websocket.close"): SessionState.CLOSED,
}

DENIAL_EXTENSION = "websocket.http.response"


class WebSocketTask(AppTask):
    """An ``AppTask`` for a WebSocket connection, checking each message the app sends."""

    def __init__(self, portal: BlockingPortal, app: ASGIApp, scope: Scope, timeout: float) -> None:
        self.state = SessionState.CONNECTING
        self.denial_allowed = DENIAL_EXTENSION in scope.get("extensions", {})
        self.client_closed = False
        self._disconnect: Message | None = None
        super().__init__(portal, app, scope, timeout)

    async def app_receive(self) -> Message:
        # Once the app has seen the disconnect, it keeps seeing it: the connection is gone.
        if self._disconnect is not None:
            return dict(self._disconnect)
        message = await super().app_receive()
        if message["type"] == "websocket.disconnect":
            self._disconnect = message
        return message

    async def app_send(self, message: Message) -> None:
        self._advance(message)
        await super().app_send(message)

    def _advance(self, message: Message) -> None:
        kind = str(message.get("type"))
        if self.client_closed:
            raise ClientDisconnect(f"cannot send {kind!r}: the client closed the WebSocket")
        if kind == "websocket.http.response.start" and not self.denial_allowed:
            raise self.misuse(
                f"the app sent {kind!r} but the server did not offer the"
                f" {DENIAL_EXTENSION!r} extension; send 'websocket.close' to deny instead"
            )
        state = _WS_TRANSITIONS.get((self.state, kind))
        if state is None:
            expected = [k for (s, k) in _WS_TRANSITIONS if s is self.state] or ["nothing"]
            raise self.misuse(
                f"the app sent {kind!r} in state {self.state.value}; expected {', '.join(expected)}"
            )
        if kind == "websocket.send" and (message.get("text") is None) == (
            message.get("bytes") is None
        ):
            raise self.misuse("'websocket.send' needs exactly one of 'text' and 'bytes'")
        if kind == "websocket.http.response.body" and not message.get("more_body", False):
            state = SessionState.CLOSED
        self.state = state

    def _client_close(self, code: int, reason: str) -> None:
        self.client_closed = True
        self.state = SessionState.CLOSED
        self._to_app.send_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})

    def close_from_client(self, code: int, reason: str) -> None:
        """Close the connection from the client's side: the app receives the disconnect."""
        self.portal.call(self._client_close, code, reason)


class HTTPTask:
    """One HTTP request and its response, run entirely inside one call on the loop."""

    def __init__(self, body: bytes) -> None:
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.exception: Exception | None = None
        self.protocol_error: ASGIProtocolError | None = None
        self._body: bytes | None = body
        self._complete: anyio.Event | None = None

    async def run(self, app: ASGIApp, scope: Scope, timeout: float) -> None:
        self._complete = anyio.Event()
        with anyio.fail_after(timeout):
            try:
                await app(scope, self._receive, self._send)
            except Exception as exc:
                self.exception = exc

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        # Like a server on a kept-alive connection: the client "leaves" once it has its response.
        assert self._complete is not None
        await self._complete.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        assert self._complete is not None
        kind = message.get("type")
        if kind == "http.response.start" and self.status is None:
            self.status = int(message["status"])
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif kind == "http.response.body" and self.status is not None:
            if self._complete.is_set():
                raise self._misuse(f"the app sent {kind!r} after the response was complete")
            self.chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self._complete.set()
        else:
            raise self._misuse(f"the app sent {kind!r} out of order")

    def _misuse(self, text: str) -> ASGIProtocolError:
        self.protocol_error = ASGIProtocolError(text)
        return self.protocol_error
