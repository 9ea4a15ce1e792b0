"""The tinyws app the end-to-end suite runs unchanged under every server.

- ``/foo``: the seed scenario, a WebSocket echo behind a guard that refuses
  with 404 and a JSON body unless the query carries ``token=good``;
- ``/echo``: an accepted echo, no guard;
- ``/hello``: an HTTP route;
- ``/state`` (HTTP) and ``/ws/state`` (WebSocket): what the lifespan left
  behind, the state yielded by ``lifespan=`` and the mark of ``on_startup``;
- ``/closing``: a guard that refuses with 401 on a ``denial="close"`` route,
  so the client sees 101, then a close frame 4401.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tinyws import App, HTTPError, Request, Response, WebSocket

#: Set by the ``on_startup`` hook: proof that startup ran in this process.
STARTUP_RAN: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello from lifespan"}


app = App(lifespan=lifespan)


@app.on_startup
async def mark_startup() -> None:
    STARTUP_RAN.append("on_startup")


def good_token(req: Request) -> Response | None:
    if req.query.get("token") == "good":
        return None
    return Response.json({"error": "no such room", "path": req.path}, status=404)


def refuse_401(req: Request) -> None:
    raise HTTPError(401, title="token required")


@app.websocket("/foo", guard=good_token)
async def foo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send(message)


@app.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for message in ws:
        await ws.send(message)


@app.websocket("/closing", guard=refuse_401, denial="close")
async def closing(ws: WebSocket) -> None:
    await ws.accept()  # never reached: the guard refuses first


@app.get("/hello")
async def hello(req: Request) -> dict[str, str]:
    return {"hello": "world"}


def lifespan_facts(state: Any) -> dict[str, Any]:
    try:
        greeting = state["greeting"]
    except KeyError:
        greeting = None
    return {"greeting": greeting, "startup": list(STARTUP_RAN)}


@app.get("/state")
async def http_state(req: Request) -> dict[str, Any]:
    return lifespan_facts(req.state)


@app.websocket("/ws/state")
async def ws_state(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_json(lifespan_facts(ws.state))
    await ws.close(1000)
