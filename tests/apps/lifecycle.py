"""The app of ``test_e2e_lifecycle.py``: mount points, disconnect scoping, process_response_ws.

- ``/where`` (HTTP) and ``/ws/where`` (WebSocket): the routed path and the URL;
- ``/room``: a naive room that sends every message to every other member,
  dead ones included (what SPEC section 4's disconnect scoping is about);
- ``/guarded``: 401 unless ``?token=good``;
- ``/ends`` (HTTP): what ``process_response_ws`` saw, one entry per connection.
"""

from __future__ import annotations

from typing import Any

from tinyws import App, HTTPError, Request, WebSocket

ENDS: list[dict[str, Any]] = []
MEMBERS: list[WebSocket] = []


class RecordEnds:
    def process_request_ws(self, req: Request, ws: WebSocket) -> None:
        pass

    def process_response_ws(
        self, req: Request, ws: WebSocket, resource: object, req_succeeded: bool
    ) -> None:
        ENDS.append(
            {
                "path": req.path,
                "status": ws.status,
                "close_code": ws.close_code,
                "succeeded": req_succeeded,
            }
        )


app = App(middleware=[RecordEnds()])


def token_good(req: Request) -> None:
    if req.query.get("token") != "good":
        raise HTTPError(401, "token required")


@app.get("/where")
async def where(req: Request) -> dict[str, str]:
    return {"path": req.path, "url": req.url}


@app.websocket("/ws/where")
async def ws_where(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_json({"path": ws.request.path, "url": ws.request.url})


@app.websocket("/room")
async def room(ws: WebSocket) -> None:
    await ws.accept()
    MEMBERS.append(ws)
    async for message in ws:
        for member in list(MEMBERS):
            if member is not ws:
                await member.send(message)  # raises once that member has left


@app.websocket("/guarded", guard=token_good)
async def guarded(ws: WebSocket) -> None:
    await ws.accept()
    await ws.close(4000, "done")


@app.get("/ends")
async def ends(req: Request) -> list[dict[str, Any]]:
    return ENDS
