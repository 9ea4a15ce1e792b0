"""An app that says which process serves it, for the `--workers` tests.

- ``/pid`` (HTTP): the worker's PID as text;
- ``/ws`` (WebSocket): sends the worker's PID, then echoes until closed.
"""

from __future__ import annotations

import os

from tinyws import App, Request, Response, WebSocket

app = App()


@app.get("/pid")
async def pid(request: Request) -> Response:
    return Response.text(str(os.getpid()))


@app.websocket("/ws")
async def ws(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(str(os.getpid()))
    async for message in ws:
        await ws.send(message)
