"""``App``: the ASGI callable, its routes and its decorators."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tinyws import denial
from tinyws.concurrency import inline, threaded
from tinyws.denial import DenialMode, check_mode, internal_error
from tinyws.guards import Guard, resolve_guards
from tinyws.http_pipeline import HTTPPipeline, HTTPRoute
from tinyws.lifespan import Lifespan, LifespanContext
from tinyws.middleware import Chain
from tinyws.request import Request
from tinyws.routing import Table
from tinyws.types import Receive, Scope, Send
from tinyws.websocket import WebSocket
from tinyws.ws_pipeline import WEBSOCKET, WebSocketRoute, run_websocket

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("tinyws")

# Set in the scope by tinyws.testing: re-raise app errors so a test sees the
# exception itself. HTTP errors are answered first (the client sees the 500);
# WebSocket errors re-raise unanswered, and the test client plays the server's
# part (a 500 denial before accept, 1011 after).
RAISE_KEY = "tinyws.raise_server_exceptions"


class App:
    """A tinyws application: an ASGI 3 callable.

    ``middleware`` is a list of objects with Falcon-style ``process_*``
    hooks; ``lifespan`` an async context manager factory called with the
    app; ``denial`` how handshakes are refused: ``"http"``, ``"close"`` or
    ``"auto"`` (see ``tinyws.denial``).
    """

    def __init__(
        self,
        middleware: Sequence[object] = (),
        lifespan: LifespanContext | None = None,
        denial: DenialMode = "http",
    ) -> None:
        self.denial = check_mode(denial)
        self.middleware = tuple(middleware)
        self._chain = Chain(self.middleware)
        self._lifespan = Lifespan(self, self._chain, lifespan)
        self._http = Table[HTTPRoute]()
        self._websockets = Table[WebSocketRoute]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan.handle(scope, receive, send)
            return
        req = Request(scope, receive, self._lifespan.state)
        reraise = RAISE_KEY in scope
        if not self._lifespan.started and not await self._lazy_startup(req, send, reraise):
            return
        if kind == "websocket":
            ws = WebSocket(req, receive, send, self.denial)
            await run_websocket(ws, self._chain, self._websockets, reraise)
        elif kind == "http":
            exchange = HTTPPipeline(req, self._chain, self._http)
            await exchange.run(send)
            if reraise and exchange.crash is not None:
                raise exchange.crash
        else:
            raise ValueError(f"tinyws does not handle ASGI scopes of type {kind!r}")

    async def _lazy_startup(self, req: Request, send: Send, reraise: bool) -> bool:
        """Start up on a server without lifespan events; a failure answers 500."""
        try:
            await self._lifespan.ensure_started()
        except Exception:
            logger.exception("startup before the first request failed")
            if req.scope["type"] == "websocket":
                await WebSocket(req, req.receive, send, self.denial)._settle(denial.crash)
            else:
                await internal_error().send_http(send)
            if reraise:
                raise
            return False
        return True

    # -- routes --------------------------------------------------------------

    def websocket(
        self,
        path: str,
        guard: Guard | Sequence[Guard] | None = None,
        subprotocols: Sequence[str] | None = None,
        denial: DenialMode | None = None,
    ) -> Callable[[F], F]:
        """Register a WebSocket handler ``handler(ws, **params)`` on ``path``."""
        guards = resolve_guards(guard)
        offered = tuple(subprotocols or ())
        mode = None if denial is None else check_mode(denial)

        def register(handler: F) -> F:
            route = WebSocketRoute(handler, inline(handler), guards, offered, mode)
            self._websockets.add(path, [WEBSOCKET], route, "WebSocket route")
            return handler

        return register

    def route(self, path: str, methods: Sequence[str]) -> Callable[[F], F]:
        """Register an HTTP handler ``handler(req, **params)`` for ``methods``."""
        if isinstance(methods, str) or not methods:
            raise ValueError(f"methods must be a non-empty list of names, got {methods!r}")
        names = list(dict.fromkeys(method.upper() for method in methods))

        def register(handler: F) -> F:
            route = HTTPRoute(handler, threaded(handler))
            self._http.add(path, names, route, "{method} route")
            return handler

        return register

    def get(self, path: str) -> Callable[[F], F]:
        return self.route(path, ["GET"])

    def post(self, path: str) -> Callable[[F], F]:
        return self.route(path, ["POST"])

    def put(self, path: str) -> Callable[[F], F]:
        return self.route(path, ["PUT"])

    def patch(self, path: str) -> Callable[[F], F]:
        return self.route(path, ["PATCH"])

    def delete(self, path: str) -> Callable[[F], F]:
        return self.route(path, ["DELETE"])

    # -- lifespan ------------------------------------------------------------

    def on_startup(self, handler: F) -> F:
        self._lifespan.on_startup.append(inline(handler))
        return handler

    def on_shutdown(self, handler: F) -> F:
        self._lifespan.on_shutdown.append(inline(handler))
        return handler


__all__ = ["App"]
