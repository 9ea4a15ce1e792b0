"""An ASGI app that tells the client who the server thinks it is.

HTTP: a JSON body `{"client": [host, port], "scheme": ...}`. WebSocket: the
same JSON as the first text message, then a close (1000). For the proxy
header and TLS tests, under `tinyws serve` and behind nginx.
"""

from __future__ import annotations

import json

from tinyws.types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            reply = message["type"] + ".complete"
            await send({"type": reply})
            if message["type"] == "lifespan.shutdown":
                return
    origin = json.dumps({"client": scope["client"], "scheme": scope["scheme"]})
    if scope["type"] == "http":
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": origin.encode()})
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": origin})
    await send({"type": "websocket.close", "code": 1000})
