"""tinyws with one guard and one middleware, as a real service would have.

The guard checks a path parameter; the middleware stamps the request
context. ``/accept`` passes the guard, ``/reject`` is refused with 403.
"""

from __future__ import annotations

from tinyws import App, Request, WebSocket


class Stamp:
    def process_request_ws(self, req: Request, ws: WebSocket) -> None:
        req.context.stamped = True


def allowed(req: Request) -> bool:
    return bool(req.params["name"] == "accept")


app = App(middleware=[Stamp()])


@app.websocket("/{name}", guard=allowed)
async def endpoint(ws: WebSocket, name: str) -> None:
    await ws.accept()
    async for _ in ws:
        pass
