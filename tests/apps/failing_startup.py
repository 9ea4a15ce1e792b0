"""A raw ASGI app whose lifespan startup fails: a server must not serve it."""

from __future__ import annotations

from tinyws.types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "lifespan", "never started, never served"
    message = await receive()
    assert message["type"] == "lifespan.startup"
    await send({"type": "lifespan.startup.failed", "message": "no database today"})
