"""Raw ASGI: the baseline every framework is compared with.

``/accept`` accepts and waits for the client to close; any other path is
refused before accept with a 403 through the "websocket.http.response"
denial extension, or by a close before accept where the server lacks it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = b'{"title":"Forbidden"}'
DENIAL_START: Message = {
    "type": "websocket.http.response.start",
    "status": 403,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"21")],
}
DENIAL_BODY: Message = {"type": "websocket.http.response.body", "body": BODY}


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    if scope["path"] == "/accept":
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send(DENIAL_START)
        await send(DENIAL_BODY)
    else:
        await send({"type": "websocket.close", "code": 1008})
