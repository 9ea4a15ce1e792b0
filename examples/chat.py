"""A guarded chat room: bearer tokens, allowed origins, middleware and lifespan state.

tinyws serve examples.chat:app
# ws://127.0.0.1:8000/rooms/lobby with "Authorization: Bearer alice-token"
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from tinyws import App, HTTPError, Request, Response, WebSocket
from tinyws.guards import allow_origins, bearer_token

USERS = {"alice-token": "alice", "bob-token": "bob"}
ROOMS = ("lobby", "dev")


class Timing:
    """Adds how long each HTTP request took, Falcon-style."""

    def process_request(self, req: Request, resp: Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: Request, resp: Response, resource: object, req_succeeded: bool
    ) -> None:
        elapsed = time.perf_counter() - req.context.started
        resp.headers["server-timing"] = f"app;dur={elapsed * 1000:.2f}"


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    yield {"members": {room: set() for room in ROOMS}}


app = App(middleware=[Timing()], lifespan=lifespan)


def known_room(req: Request) -> None:
    if req.params["room"] not in ROOMS:
        raise HTTPError(404, "Unknown room", f"there is no room {req.params['room']!r}")


@app.get("/health")
async def health(req: Request) -> dict[str, bool]:
    return {"ok": True}


@app.websocket(
    "/rooms/{room}",
    guard=[allow_origins(["http://localhost:8000"]), bearer_token(USERS.get), known_room],
    subprotocols=["chat.v1"],
)
async def room(ws: WebSocket, room: str) -> None:
    members: set[WebSocket] = ws.state.members[room]
    await ws.accept()
    members.add(ws)
    try:
        async for message in ws:
            for member in list(members):
                await member.send(f"{ws.context.user}: {message!s}")
    finally:
        members.discard(ws)
