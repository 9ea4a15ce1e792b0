"""A raw ASGI app with one path per behaviour a server must cope with.

It measures servers (``/facts``, ``/ws/facts``: did lifespan run, is there
lifespan state, which extensions does the handshake scope advertise) and it
misbehaves on purpose for the probes of the built-in server (raise, return
without a response, crash after accept). Any other HTTP path answers
``200`` with ``METHOD path?query`` as its body, so a probe can see how the
server parsed the request target.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from tinyws.types import Receive, Scope, Send

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

#: What the lifespan protocol left in this process.
LIFESPAN: dict[str, bool] = {"startup": False, "state": False}


class ProbeError(Exception):
    """Raised on purpose by the misbehaving paths."""


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    routes = WEBSOCKET if scope["type"] == "websocket" else HTTP
    await routes.get(scope["path"], routes["*"])(scope, receive, send)


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            LIFESPAN["startup"] = True
            if isinstance(scope.get("state"), dict):
                LIFESPAN["state"] = True
                scope["state"]["from_lifespan"] = "yes"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def facts(scope: Scope) -> dict[str, Any]:
    state = scope.get("state")
    return {
        "lifespan_startup": LIFESPAN["startup"],
        "lifespan_state": LIFESPAN["state"],
        "request_state": state.get("from_lifespan") if isinstance(state, dict) else None,
        "extensions": sorted(scope.get("extensions") or {}),
        "asgi": scope.get("asgi", {}),
    }


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


async def http_target(scope: Scope, receive: Receive, send: Send) -> None:
    await _read_body(receive)
    target = f"{scope['method']} {scope['path']}?{scope['query_string'].decode()}"
    await _respond(send, 200, target.encode())


async def http_body(scope: Scope, receive: Receive, send: Send) -> None:
    await _respond(send, 200, await _read_body(receive))


async def http_facts(scope: Scope, receive: Receive, send: Send) -> None:
    await _respond(send, 200, json.dumps(facts(scope)).encode())


async def http_raise(scope: Scope, receive: Receive, send: Send) -> None:
    raise ProbeError("raised on purpose before the response")


async def http_return(scope: Scope, receive: Receive, send: Send) -> None:
    return


async def ws_echo(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def ws_facts(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(facts(scope))})
    await send({"type": "websocket.close", "code": 1000})


async def ws_quirks(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": ""})
    await send({"type": "websocket.send", "text": "after empty"})
    await send({"type": "websocket.close", "code": 4000, "reason": "bye"})


async def ws_raise(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    raise ProbeError("raised on purpose before accept")


async def ws_return(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()


async def ws_crash(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    raise ProbeError("raised on purpose after accept")


async def ws_close_early(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.close", "code": 1000})


async def ws_deny(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    body = b'{"error":"denied"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"18")]
    await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


HTTP: dict[str, Handler] = {
    "*": http_target,
    "/body": http_body,
    "/facts": http_facts,
    "/raise": http_raise,
    "/return": http_return,
}
WEBSOCKET: dict[str, Handler] = {
    "*": ws_echo,
    "/ws/facts": ws_facts,
    "/ws/quirks": ws_quirks,
    "/ws/raise": ws_raise,
    "/ws/return": ws_return,
    "/ws/crash": ws_crash,
    "/ws/close-early": ws_close_early,
    "/ws/deny": ws_deny,
}
