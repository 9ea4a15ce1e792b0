"""An in-process test client: drive any ASGI app from synchronous tests, no sockets.

``TestClient`` plays an ASGI server and a client at once, and aims to show
what a client on the wire would see, not what a debugger would:

- A WebSocket closed before ``accept()`` arrives as ``WebSocketDenied`` with
  status 403, an empty body and no close code: real servers answer the close
  with a plain HTTP 403 and drop the code.
- ``denial_response=False`` stands for a server without the
  ``websocket.http.response`` extension: the scope does not offer it, and an
  app that sends those messages anyway fails with ``ASGIProtocolError``.
- Exceptions raised by the app re-raise in the test by default. With
  ``raise_server_exceptions=False`` the test sees what a server would send
  instead: a 500 response (HTTP), a 500 denial (handshake) or a 1011 close
  (after ``accept()``). An app that returns without responding gets a 500
  too, in both modes, as it would from a real server.
- Lifespan runs only inside ``with TestClient(app) as client:``. Outside it
  the client is like a server that sends no lifespan events and offers no
  ``state``. Inside it, every request gets a shallow copy of the lifespan
  ``state``. A ``lifespan.*.failed`` message raises ``LifespanError`` with the
  app's message. An app that raises instead of answering re-raises; with
  ``raise_server_exceptions=False`` the client carries on without lifespan,
  as the ASGI spec asks of servers.
- Every wait on the app is bounded by ``timeout`` seconds (``TimeoutError``).
- ``root_path="/api"`` mounts the app as ``uvicorn --root-path /api`` does: the
  scope's ``path`` is the root path followed by the path asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from tinyws.app import RAISE_KEY
from tinyws.datastructures import Headers
from tinyws.errors import ASGIProtocolError, LifespanError
from tinyws.testing.app_runner import DENIAL_EXTENSION, AppTask, HTTPTask, WebSocketTask
from tinyws.testing.scopes import HeaderInput, ParamsInput, ScopeBuilder, encode_body, header_pairs
from tinyws.testing.session import (
    TestResponse,
    WebSocketDenied,
    WebSocketTestSession,
    internal_error,
)
from tinyws.types import ASGIApp, Message, Scope

_LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}


class TestClient:
    """A synchronous client that runs an ASGI app in process, on a background event loop.

    ``with TestClient(app) as client:`` also runs the app's lifespan; each
    request and WebSocket then shares one event loop. Without ``with``, each
    request (and each WebSocket session) runs on an event loop of its own.
    ``timeout`` bounds every wait on the app, in seconds.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        raise_server_exceptions: bool = True,
        denial_response: bool = True,
        backend: str = "asyncio",
        backend_options: dict[str, Any] | None = None,
        client: tuple[str, int] | None = ("testclient", 50000),
        headers: HeaderInput | None = None,
        timeout: float = 10.0,
        root_path: str = "",
    ) -> None:
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions
        self.denial_response = denial_response
        self.backend = backend
        self.backend_options = backend_options
        self.timeout = timeout
        self._scopes = ScopeBuilder(base_url, client, headers, root_path)
        self._portal: BlockingPortal | None = None
        self._stack: contextlib.ExitStack | None = None
        self._state: dict[str, Any] | None = None
        self._lifespan: AppTask | None = None
        self._sessions: list[WebSocketTestSession] = []  # held, so none is left running

    # -- lifespan ------------------------------------------------------------

    def __enter__(self) -> TestClient:
        if self._stack is not None:
            raise RuntimeError("this TestClient is already running; enter it only once")
        with contextlib.ExitStack() as stack:
            self._portal = stack.enter_context(self._new_portal())
            stack.callback(setattr, self, "_portal", None)
            state: dict[str, Any] = {}
            scope = {"type": "lifespan", "asgi": dict(_LIFESPAN_ASGI), "state": state}
            task = stack.enter_context(AppTask(self._portal, self.app, scope, self.timeout))
            if self._lifespan_event(task, "startup"):
                self._lifespan = task
            self._state = state
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        task, self._lifespan = self._lifespan, None
        self._state = None
        if stack is None:
            return
        with stack:
            # Like a server shutting down: WebSockets still open are closed with 1001 first.
            sessions, self._sessions = self._sessions, []
            for session in sessions:
                session._disconnect(1001, "")
            if task is not None:
                self._lifespan_event(task, "shutdown")

    def _lifespan_event(self, task: AppTask, phase: str) -> bool:
        """Send ``lifespan.<phase>``; True if the app answered that it completed."""
        task.put({"type": f"lifespan.{phase}"})
        message = task.get()
        if message is None:  # the app ended without answering: it has no lifespan
            error = task.take_error(self.raise_server_exceptions)
            if error is not None:
                raise error
            return False
        kind = message["type"]
        if kind == f"lifespan.{phase}.failed":
            task.finish()
            failure = message.get("message") or f"lifespan {phase} failed"
            raise LifespanError(failure) from task.exception
        if kind != f"lifespan.{phase}.complete":
            raise ASGIProtocolError(f"the app answered 'lifespan.{phase}' with {kind!r}")
        return True

    # -- HTTP ----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: HeaderInput | None = None,
        params: ParamsInput | None = None,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | bytes | str | None = None,
        json: Any = None,
        cookies: Mapping[str, str] | None = None,
    ) -> TestResponse:
        """Send one HTTP request; ``data`` given as a mapping is sent as a form."""
        method = method.upper()
        body, content_type = encode_body(content, data, json)
        pairs = header_pairs(headers)
        if cookies:
            pairs.append(("cookie", "; ".join(f"{k}={v}" for k, v in cookies.items())))
        scope = self._scopes.http(
            method, path, params=params, headers=pairs, body=body, content_type=content_type
        )
        scope = self._with_state(scope)
        exchange = HTTPTask(body)
        with self._portal_for_call() as portal:
            try:
                portal.call(exchange.run, self.app, scope, self.timeout)
            except TimeoutError:
                raise TimeoutError(f"the app did not finish within {self.timeout} s") from None
        return self._response(exchange, method)

    def _response(self, exchange: HTTPTask, method: str) -> TestResponse:
        if exchange.protocol_error is not None:
            raise exchange.protocol_error
        if exchange.exception is not None and self.raise_server_exceptions:
            raise exchange.exception
        if exchange.status is None:  # the app raised or returned before responding
            return TestResponse(*internal_error())
        # A server sends no body in answer to HEAD, whatever the app wrote.
        body = b"" if method == "HEAD" else b"".join(exchange.chunks)
        return TestResponse(exchange.status, Headers(exchange.headers), body)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("OPTIONS", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)

    # -- WebSocket -----------------------------------------------------------

    def websocket_connect(
        self,
        path: str,
        *,
        subprotocols: Sequence[str] | None = None,
        headers: HeaderInput | None = None,
        params: ParamsInput | None = None,
    ) -> WebSocketTestSession:
        """Open a WebSocket and complete its handshake.

        Returns the accepted session, or raises ``WebSocketDenied`` with the
        HTTP response the client received (see the module docstring).
        """
        scope = self._scopes.websocket(path, params, header_pairs(headers), subprotocols or [])
        if self.denial_response:
            scope["extensions"] = {DENIAL_EXTENSION: {}}
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(self._portal_for_call())
            task = WebSocketTask(portal, self.app, self._with_state(scope), self.timeout)
            stack.enter_context(task)
            task.put({"type": "websocket.connect"})
            message = task.get()
            if message is not None and message["type"] == "websocket.accept":
                session = WebSocketTestSession(
                    task, message, self.raise_server_exceptions, stack.pop_all()
                )
                if self._portal is not None:  # the session runs on the client's loop
                    self._sessions = [s for s in self._sessions if not s._task.client_closed]
                    self._sessions.append(session)
                return session
            denied = self._denial(task, message)
            stack.close()  # the app must be done before its errors are judged
            error = task.take_error(self.raise_server_exceptions)
            raise error if error is not None else denied

    def _denial(self, task: WebSocketTask, message: Message | None) -> WebSocketDenied:
        """The response a client receives for a handshake the app did not accept."""
        if message is None:  # returned or raised without a handshake message
            return WebSocketDenied(*internal_error())
        if message["type"] == "websocket.close":
            return WebSocketDenied(403)
        status = int(message["status"])
        headers = Headers((bytes(k), bytes(v)) for k, v in message.get("headers", []))
        chunks = []
        while (body := task.get()) is not None:
            chunks.append(bytes(body.get("body", b"")))
            if not body.get("more_body", False):
                break
        return WebSocketDenied(status, headers, b"".join(chunks))

    # -- plumbing ------------------------------------------------------------

    def _new_portal(self) -> contextlib.AbstractContextManager[BlockingPortal]:
        return start_blocking_portal(self.backend, self.backend_options)

    @contextlib.contextmanager
    def _portal_for_call(self) -> Iterator[BlockingPortal]:
        """The running client's portal, or a fresh one for this call alone."""
        if self._portal is not None:
            yield self._portal
        else:
            with self._new_portal() as portal:
                yield portal

    def _with_state(self, scope: Scope) -> Scope:
        # Like an ASGI 2.4 server: once lifespan ran, each request gets a shallow copy.
        if self._state is not None:
            scope["state"] = dict(self._state)
        if self.raise_server_exceptions:
            # A tinyws App answers its own crashes (500, 1011); this asks it to
            # raise them afterwards too, so the test sees the exception.
            scope[RAISE_KEY] = True
        return scope


__all__ = ["TestClient"]
