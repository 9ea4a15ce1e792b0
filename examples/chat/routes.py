"""The chat's routes: the page, the login that issues its token, and the rooms' socket."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio

from examples.chat.access import Sessions, checked_name, origin_guard
from examples.chat.rooms import Roster, channel_of, encode
from tinyws import App, HTTPError, Request, Response, WebSocket
from tinyws.broadcast import Broadcast, BroadcastError
from tinyws.guards import bearer_token

ROOMS = ("lobby", "dev")
# The hub's URL: memory:// (this process) unless set, e.g. to redis://127.0.0.1:6379/0
# so that the rooms span every worker and server on that Redis.
BROADCAST_VARIABLE = "TINYWS_BROADCAST"
PAGE = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")
HTML = "text/html; charset=utf-8"
# The cookie the page's socket carries. HttpOnly: the page's script never reads it;
# SameSite=Strict: another site's page does not get it sent along (allow_origins
# refuses such pages too).
COOKIE = "session={token}; Path=/; HttpOnly; SameSite=Strict"


def make_app(origins: Sequence[str] | None = None, broadcast: str | None = None) -> App:
    """A chat with its own hub and sessions (see ``origin_guard`` for ``origins``).

    ``broadcast`` is the hub's URL; by default ``TINYWS_BROADCAST``, else memory://.
    """
    sessions = Sessions()
    hub = Broadcast(broadcast or os.environ.get(BROADCAST_VARIABLE) or "memory://")
    roster = Roster(ROOMS)

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        async with hub, anyio.create_task_group() as tg:
            for room in ROOMS:
                await tg.start(roster.follow, hub, room)
            yield
            tg.cancel_scope.cancel()

    # "auto": a browser (it sends Origin) is refused by accept-then-close 4401/4403/4404,
    # which its page can read; any other client gets the real HTTP 401/403/404.
    app = App(denial="auto", lifespan=lifespan)

    def known_room(req: Request) -> None:
        if req.params["room"] not in ROOMS:
            raise HTTPError(404, "Unknown room", f"there is no room {req.params['room']!r}")

    @app.get("/")
    async def page(req: Request) -> Response:
        return Response(PAGE, content_type=HTML, headers={"cache-control": "no-store"})

    @app.get("/health")
    async def health(req: Request) -> dict[str, object]:
        # The PID says which worker answered, under tinyws serve --workers N.
        return {"ok": True, "pid": os.getpid()}

    @app.post("/login")
    async def login(req: Request) -> Response:
        body = await req.json()  # a body that is not JSON is a 400 already
        name = checked_name(body.get("name") if isinstance(body, dict) else None)
        token = sessions.issue(name)
        cookie = COOKIE.format(token=token)
        return Response.json({"name": name, "token": token}, headers={"set-cookie": cookie})

    @app.websocket(
        "/rooms/{room}",
        guard=[
            origin_guard(origins),
            bearer_token(sessions.verify, query="token", cookie="session"),
            known_room,
        ],
        subprotocols=["chat.v1"],
    )
    async def chat(ws: WebSocket, room: str) -> None:
        name, channel = ws.context.user, channel_of(room)
        await ws.accept()
        # Sent before joining, so that it comes first; the member's own "joined" follows.
        await ws.send_json(
            {"type": "welcome", "name": name, "room": room, "members": roster.names(room)}
        )
        async with hub.join(channel, ws):
            await hub.publish(channel, encode({"type": "joined", "name": name}))
            async for message in ws:
                if not isinstance(message, str):
                    await ws.close(1003, "text messages only")
                    break
                await hub.publish(
                    channel, encode({"type": "message", "name": name, "text": message})
                )
        with contextlib.suppress(BroadcastError):  # Redis is down: the others miss it
            await hub.publish(channel, encode({"type": "left", "name": name}))

    return app
