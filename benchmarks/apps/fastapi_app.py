"""FastAPI: two WebSocket routes, the reject one refused before accept."""

from __future__ import annotations

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse

app = FastAPI()


@app.websocket("/accept")
async def accept(ws: WebSocket) -> None:
    await ws.accept()
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


@app.websocket("/reject")
async def reject(ws: WebSocket) -> None:
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse({"title": "Forbidden"}, status_code=403))
    else:
        await ws.close(1008)
