"""SPEC §11's room app, for `tinyws serve` in the broadcast tests.

The hub's URL comes from ``TINYWS_TEST_BROADCAST`` (memory:// without it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from tinyws import App, WebSocket
from tinyws.broadcast import Broadcast

hub = Broadcast(os.environ.get("TINYWS_TEST_BROADCAST", "memory://"))


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    async with hub:
        yield


app = App(lifespan=lifespan)


@app.websocket("/rooms/{room}")
async def room(ws: WebSocket, room: str) -> None:
    await ws.accept()
    async with hub.join(f"room:{room}", ws):
        async for message in ws:
            await hub.publish(f"room:{room}", message)
