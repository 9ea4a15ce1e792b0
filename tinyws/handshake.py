"""The WebSocket handshake pipeline (SPEC section 4).

    process_request_ws -> route -> process_resource_ws -> guards -> handler

Whatever escapes a step decides how the connection ends: an ``HTTPError``
refuses it (a denial before ``accept()``, a ``4000 + status`` close after),
any other exception is a crash (500 denial or close 1011, traceback only in
the log), and a normal return closes with 1000 or, if the handler never
answered the handshake, denies it with 403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tinyws.concurrency import AsyncCallable
from tinyws.denial import DenialMode
from tinyws.errors import HTTPError, WebSocketDisconnect
from tinyws.guards import run_guards
from tinyws.middleware import Chain
from tinyws.request import Request
from tinyws.routing import Table
from tinyws.websocket import WebSocket

logger = logging.getLogger("tinyws")

WEBSOCKET = "WEBSOCKET"  # the one "method" of the WebSocket routing table


@dataclass(frozen=True)
class WebSocketRoute:
    endpoint: Callable[..., Any]  # as the user wrote it: what process_resource_ws sees
    call: AsyncCallable
    guards: tuple[AsyncCallable, ...]
    subprotocols: Sequence[str]
    denial: DenialMode | None


async def handshake(ws: WebSocket, chain: Chain, routes: Table[WebSocketRoute]) -> None:
    req = ws.request
    for hook in chain.request_ws:
        await hook(req, ws)
        if ws.answered:
            return
    route = _route(req, ws, routes)
    for hook in chain.resource_ws:
        await hook(req, ws, route.endpoint, req.params)
        if ws.answered:
            return
    denial = await run_guards(route.guards, req)
    if denial is not None:
        await ws.deny(denial)
        return
    await route.call(ws, **req.params)


def _route(req: Request, ws: WebSocket, routes: Table[WebSocketRoute]) -> WebSocketRoute:
    route, params, _ = routes.find(req.path, WEBSOCKET)
    if route is None:
        raise HTTPError(404)
    req.params = params
    if route.denial is not None or route.subprotocols:
        ws.use_route(route.denial or ws.default_mode, route.subprotocols)
    return route


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
        await ws.finish()


__all__ = ["WEBSOCKET", "WebSocketRoute", "handshake", "run_websocket"]
