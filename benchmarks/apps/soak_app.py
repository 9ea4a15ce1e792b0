"""Raw ASGI for the soak and load benchmarks (`benchmarks/soak.py`).

* ``/accept``: accept, then wait for the client to close (handshakes, idle).
* ``/feed``: push-only: accept, then send a small text message every
  ``FEED_EVERY`` seconds and never call receive() until a send fails.
* ``/flood``: accept, then send 8 KiB binary messages as fast as ``send()``
  returns, until a send fails.
* HTTP ``GET /stats``: JSON of how the /feed and /flood handlers ended.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FEED_EVERY = 0.1
CHUNK = b"x" * 8192
STATS: dict[str, list[float]] = {"feed_ended": [], "flood_ended": []}


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        body = json.dumps(STATS).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        path = scope["path"]
        if path == "/feed":
            await _push(send, {"type": "websocket.send", "text": "tick"}, FEED_EVERY, "feed")
        elif path == "/flood":
            await _push(send, {"type": "websocket.send", "bytes": CHUNK}, 0.0, "flood")
        else:
            while (await receive())["type"] != "websocket.disconnect":
                pass


async def _push(send: Send, message: Message, every: float, name: str) -> None:
    try:
        while True:
            await send(message)
            await anyio.sleep(every)
    except OSError:  # the client is gone (ASGI: an OSError on send)
        STATS[name + "_ended"].append(time.time())
