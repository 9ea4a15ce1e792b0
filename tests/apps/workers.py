"""An app that says which process serves it, for the `--workers` tests.

- ``/pid`` (HTTP): the worker's PID as text;
- ``/ws`` (WebSocket): sends the worker's PID, then echoes until closed.

Its lifespan startup fails while the file named by ``WORKERS_APP_BROKEN``
exists: a deployment gone wrong, for the SIGHUP tests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from tinyws import App, Request, Response, WebSocket


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    broken = os.environ.get("WORKERS_APP_BROKEN", "")
    if broken and os.path.exists(broken):
        raise RuntimeError("this release is broken")
    yield


app = App(lifespan=lifespan)


@app.get("/pid")
async def pid(request: Request) -> Response:
    return Response.text(str(os.getpid()))


@app.websocket("/ws")
async def ws(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(str(os.getpid()))
    async for message in ws:
        await ws.send(message)
