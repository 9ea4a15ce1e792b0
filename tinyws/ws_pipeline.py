"""The WebSocket handshake pipeline (SPEC sections 4 and 5).

    process_request_ws -> route -> process_resource_ws -> guards -> handler
        ... the connection ends ... -> process_response_ws (reverse order)

Whatever escapes a step decides how the connection ends, and
``tinyws.denial`` decides how that ending is sent: an ``HTTPError`` refuses
(a denial before ``accept()``, ``4000 + status`` after), any other exception
is a crash (500 denial or close 1011, the traceback only in the log), and a
normal return closes with 1000 or, if the handler never answered the
handshake, denies it with 403. A ``WebSocketDisconnect`` ends the connection
quietly only when it is this connection's own client that left; one raised
by another socket (sending to a peer that has gone) is a crash like any
other, never a silent 1000 for an innocent connection.

Each await layer costs about as much as a pipeline step, so the steps are
inline in one coroutine, and sync hooks and guards are called directly, not
wrapped in coroutines (see ``concurrency.Hook``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tinyws import denial
from tinyws.concurrency import AsyncCallable, Hook
from tinyws.denial import NOT_FOUND, DenialMode
from tinyws.errors import HTTPError, WebSocketDisconnect
from tinyws.guards import refusal
from tinyws.middleware import Chain
from tinyws.routing import Table
from tinyws.websocket import WebSocket
from tinyws.ws_state import GONE

logger = logging.getLogger("tinyws")

WEBSOCKET = "WEBSOCKET"  # the one "method" of the WebSocket routing table


@dataclass(frozen=True)
class WebSocketRoute:
    endpoint: Callable[..., Any]  # as the user wrote it: what process_resource_ws sees
    call: AsyncCallable
    guards: tuple[Hook, ...]
    subprotocols: Sequence[str]
    denial: DenialMode | None


async def run_websocket(  # noqa: C901, PLR0912 - one coroutine on purpose (module docstring)
    ws: WebSocket, chain: Chain, routes: Table[WebSocketRoute], reraise: bool
) -> None:
    req = ws.request
    reached = chain.size  # middleware whose turn came, by list position
    route: WebSocketRoute | None = None
    succeeded = True  # no hook, guard, router or handler raised
    try:  # an answer ends the pipeline early; `finally` still runs the response hooks
        for position, hook, is_async in chain.request_ws:
            reached = position + 1
            answer = hook(req, ws)
            if is_async:
                await answer
            if ws.status is not None:
                return
        reached = chain.size
        route, req.params, _ = routes.find(req.path, WEBSOCKET)
        if route is None:
            succeeded = False  # the router's 404 counts as raised, though it is returned
            await ws._refuse(NOT_FOUND)
            return
        if route.denial is not None or route.subprotocols:
            ws._use_route(route.denial, route.subprotocols)
        for hook, is_async in chain.resource_ws:
            answer = hook(req, ws, route.endpoint, req.params)
            if is_async:
                await answer
            if ws.status is not None:
                return
        for guard, is_async in route.guards:
            verdict = guard(req)
            if is_async:
                verdict = await verdict
            if verdict is not None and verdict is not True:
                await ws._refuse(refusal(guard, verdict))
                return
        await route.call(ws, **req.params)
        if not ws.closed:
            await ws._settle(denial.unanswered)
    except Exception as exc:
        succeeded = False
        await _end_with(ws, exc, reraise)
    finally:
        if chain.response_ws:
            resource = None if route is None else route.endpoint
            await _respond(
                ws, chain, reached, resource=resource, succeeded=succeeded, reraise=reraise
            )


async def _end_with(ws: WebSocket, exc: Exception, reraise: bool) -> None:
    """End the connection for an exception that escaped a step (called while handling it)."""
    if isinstance(exc, HTTPError):
        await ws._refuse(exc)
    elif isinstance(exc, WebSocketDisconnect) and ws._state is GONE:
        pass  # this connection's own client left: there is nobody to answer
    elif reraise:
        raise exc  # a test client wants the exception itself; it plays the 500 or 1011
    else:
        logger.exception("error in WebSocket handler for %s", ws.request.path)
        await ws._settle(denial.crash)


async def _respond(
    ws: WebSocket,
    chain: Chain,
    reached: int,
    *,
    resource: Callable[..., Any] | None,
    succeeded: bool,
    reraise: bool,
) -> None:
    """``process_response_ws`` of every middleware reached, in reverse order.

    The connection is over, so a hook that raises has nobody to answer: its
    error is logged and the other hooks still run.
    """
    for position, hook, is_async in chain.response_ws:
        if position >= reached:
            continue
        try:
            answer = hook(ws.request, ws, resource, succeeded)
            if is_async:
                await answer
        except Exception:
            if reraise:
                raise
            logger.exception("error in process_response_ws for %s", ws.request.path)


__all__ = ["WEBSOCKET", "WebSocketRoute", "run_websocket"]
