"""The WebSocket handshake pipeline (SPEC section 4).

    process_request_ws -> route -> process_resource_ws -> guards -> handler

Whatever escapes a step decides how the connection ends: an ``HTTPError``
refuses it (a denial before ``accept()``, a ``4000 + status`` close after),
any other exception is a crash (500 denial or close 1011, traceback only in
the log), and a normal return closes with 1000 or, if the handler never
answered the handshake, denies it with 403.

Each await layer costs about as much as a pipeline step, so the steps are
inline in one coroutine, and sync hooks and guards are called directly, not
wrapped in coroutines (see ``concurrency.Hook``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tinyws.concurrency import AsyncCallable, Hook
from tinyws.denial import DenialMode
from tinyws.errors import HTTPError, WebSocketDisconnect
from tinyws.guards import refusal
from tinyws.middleware import Chain
from tinyws.routing import Table
from tinyws.websocket import WebSocket

logger = logging.getLogger("tinyws")

WEBSOCKET = "WEBSOCKET"  # the one "method" of the WebSocket routing table
# An unknown path is refused like a guard's False: returned, never raised.
NOT_FOUND = HTTPError(404)


@dataclass(frozen=True)
class WebSocketRoute:
    endpoint: Callable[..., Any]  # as the user wrote it: what process_resource_ws sees
    call: AsyncCallable
    guards: tuple[Hook, ...]
    subprotocols: Sequence[str]
    denial: DenialMode | None


async def handshake(ws: WebSocket, chain: Chain, routes: Table[WebSocketRoute]) -> None:
    req = ws.request
    for hook, is_async in chain.request_ws:
        answer = hook(req, ws)
        if is_async:
            await answer
        if ws.answered:
            return

    route, req.params = routes.lookup(req.path, WEBSOCKET)
    if route is None:
        await ws.refuse(NOT_FOUND)
        return
    if route.denial is not None or route.subprotocols:
        ws.use_route(route.denial or ws.default_mode, route.subprotocols)

    for hook, is_async in chain.resource_ws:
        answer = hook(req, ws, route.endpoint, req.params)
        if is_async:
            await answer
        if ws.answered:
            return

    for guard, is_async in route.guards:
        verdict = guard(req)
        if is_async:
            verdict = await verdict
        if verdict is not None and verdict is not True:
            await ws.refuse(refusal(guard, verdict))
            return

    await route.call(ws, **req.params)


async def run_websocket(
    ws: WebSocket, chain: Chain, routes: Table[WebSocketRoute], reraise: bool
) -> None:
    try:
        await handshake(ws, chain, routes)
    except HTTPError as exc:
        await ws.refuse(exc)
    except WebSocketDisconnect:
        pass  # the client left; there is nobody to answer
    except Exception:
        if reraise:
            raise  # a test client wants the exception itself, not its 500 or 1011
        logger.exception("error in WebSocket handler for %s", ws.request.path)
        await ws.crash()
    else:
        if not ws.closed:
            await ws.finish()


__all__ = ["NOT_FOUND", "WEBSOCKET", "WebSocketRoute", "handshake", "run_websocket"]
