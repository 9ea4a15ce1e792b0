"""An app made by a factory, for ``tinyws serve tests.apps.factory:create_app --factory``.

``create_app`` is not itself an ASGI app (it takes no arguments), so without
``--factory`` the command refuses it; with it, the app it returns greets each
WebSocket with the name it was built with, so a test can tell the factory ran.
"""

from __future__ import annotations

from tinyws import App, WebSocket


def create_app(greeting: str = "made by the factory") -> App:
    app = App()

    @app.websocket("/")
    async def hello(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send(greeting)
        await ws.close(1000)

    return app
