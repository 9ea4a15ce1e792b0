"""Falcon (ASGI): the reject resource raises HTTPForbidden before accept.

Falcon answers that with an HTTP 403 when the server offers the denial
extension, and with a close before accept otherwise.
"""

from __future__ import annotations

import falcon
import falcon.asgi


class Accept:
    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        await ws.accept()
        while True:
            try:
                await ws.receive_data()
            except falcon.WebSocketDisconnected:
                return


class Reject:
    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        raise falcon.HTTPForbidden()


app = falcon.asgi.App()
app.add_route("/accept", Accept())
app.add_route("/reject", Reject())
