"""Drive an app with literal ASGI messages and record what it sends back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio

from tinyws.types import ASGIApp, Message, Scope

DENIAL: dict[str, Any] = {"websocket.http.response": {}}


def ws_scope(
    path: str = "/",
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    extensions: dict[str, Any] | None = None,
    subprotocols: Sequence[str] = (),
) -> Scope:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": list(subprotocols),
        "extensions": DENIAL if extensions is None else extensions,
    }


def http_scope(method: str = "GET", path: str = "/", query: bytes = b"") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def drive(app: ASGIApp, scope: Scope, incoming: Sequence[Message] = ()) -> list[Message]:
    """Run one app call; ``incoming`` is what ``receive()`` returns, then it blocks."""
    queue = list(incoming)
    sent: list[Message] = []

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


def connect_then(*messages: Message) -> list[Message]:
    return [{"type": "websocket.connect"}, *messages]


DISCONNECT: Message = {"type": "websocket.disconnect", "code": 1000}
