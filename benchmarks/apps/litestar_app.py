"""Litestar: two WebSocket handlers, the reject one closes before accept."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect


@websocket("/accept")
async def accept(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    try:
        while True:
            await socket.receive_data("binary")
    except WebSocketDisconnect:
        return


@websocket("/reject")
async def reject(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.close(code=1008)


app = Litestar(route_handlers=[accept, reject])
