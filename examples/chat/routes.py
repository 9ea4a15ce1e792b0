"""The chat's routes: the page, the login that issues its token, and the rooms' socket."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from examples.chat.access import Sessions, checked_name, origin_guard
from examples.chat.rooms import make_rooms
from tinyws import App, HTTPError, Request, Response, WebSocket
from tinyws.guards import bearer_token

ROOMS = ("lobby", "dev")
PAGE = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")
HTML = "text/html; charset=utf-8"
# The cookie the page's socket carries. HttpOnly: the page's script never reads it;
# SameSite=Strict: another site's page does not get it sent along (allow_origins
# refuses such pages too).
COOKIE = "session={token}; Path=/; HttpOnly; SameSite=Strict"


def make_app(origins: Sequence[str] | None = None) -> App:
    """A chat with its own sessions and empty rooms (see ``origin_guard`` for ``origins``)."""
    sessions = Sessions()
    rooms = make_rooms(ROOMS)
    # "auto": a browser (it sends Origin) is refused by accept-then-close 4401/4403/4404,
    # which its page can read; any other client gets the real HTTP 401/403/404.
    app = App(denial="auto")

    def known_room(req: Request) -> None:
        if req.params["room"] not in rooms:
            raise HTTPError(404, "Unknown room", f"there is no room {req.params['room']!r}")

    @app.get("/")
    async def page(req: Request) -> Response:
        return Response(PAGE, content_type=HTML, headers={"cache-control": "no-store"})

    @app.get("/health")
    async def health(req: Request) -> dict[str, bool]:
        return {"ok": True}

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
        here, name = rooms[room], ws.context.user
        await ws.accept()
        others = here.names()
        here.join(ws, name)  # with no await since names(): two joining at once see each other
        try:
            await ws.send_json({"type": "welcome", "name": name, "room": room, "members": others})
            await here.broadcast({"type": "joined", "name": name}, skip=ws)
            async for message in ws:
                if not isinstance(message, str):
                    await ws.close(1003, "text messages only")
                    break
                await here.broadcast({"type": "message", "name": name, "text": message})
        finally:
            here.leave(ws)
        await here.broadcast({"type": "left", "name": name})

    return app
