"""Starlette: two WebSocket routes, the reject one refused before accept."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


async def accept(ws: WebSocket) -> None:
    await ws.accept()
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def reject(ws: WebSocket) -> None:
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse({"title": "Forbidden"}, status_code=403))
    else:
        await ws.close(1008)


app = Starlette(routes=[WebSocketRoute("/accept", accept), WebSocketRoute("/reject", reject)])
