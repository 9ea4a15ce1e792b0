"""Helpers for the built-in server's tests: an in-process server on a free
loopback port, raw-socket exchanges and a small wsproto client."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from tinyws.server import Server
from tinyws.types import ASGIApp, Message, Receive, Scope, Send

TIMEOUT = 5.0


@asynccontextmanager
async def running(app: ASGIApp, **options: Any) -> AsyncIterator[Server]:
    """Serve `app` on 127.0.0.1 and a free port for the body of the block."""
    options.setdefault("lifespan", "off")
    server = Server(app, host="127.0.0.1", port=0, **options)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        try:
            yield server
        finally:
            server.shutdown()


async def connect(server: Server) -> anyio.abc.SocketStream:
    return await anyio.connect_tcp("127.0.0.1", server.port)


async def read_until_close(stream: anyio.abc.ByteStream, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes (bounded in time and size)."""
    data = b""
    with anyio.fail_after(TIMEOUT):
        while len(data) < limit:
            try:
                data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                break
    return data


async def read_response(stream: anyio.abc.ByteStream) -> bytes:
    """One response whose body has a Content-Length (enough for these tests)."""
    data = b""
    with anyio.fail_after(TIMEOUT):
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += await stream.receive()
    return head + b"\r\n\r\n" + body


async def exchange(server: Server, request: bytes) -> bytes:
    """Send raw bytes, return everything until the server closes."""
    async with await connect(server) as stream:
        await stream.send(request)
        return await read_until_close(stream)


def upgrade_head(
    path: str = "/", extra: str = "", key: str | None = None, version: str = "13"
) -> bytes:
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: test",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Version: {version}",
    ]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


class WSClient:
    """A wsproto client over a real socket."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events: list[Event] = []

    async def handshake(
        self,
        path: str = "/",
        subprotocols: list[str] | None = None,
        extensions: list[Any] | None = None,
    ) -> Event:
        """Returns AcceptConnection or RejectConnection (body in `self.reject_body`)."""
        await self.stream.send(
            self.ws.send(
                Request(
                    host="test",
                    target=path,
                    subprotocols=subprotocols or [],
                    extensions=extensions or [],
                )
            )
        )
        event = await self.next_event()
        self.reject_body = b""
        if isinstance(event, RejectConnection) and event.has_body:
            while True:
                data = await self.next_event()
                assert isinstance(data, RejectData)
                self.reject_body += data.data
                if data.body_finished:
                    break
        assert isinstance(event, AcceptConnection | RejectConnection), event
        return event

    async def next_event(self) -> Event:
        with anyio.fail_after(TIMEOUT):
            while not self.events:
                try:
                    data: bytes | None = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    data = None
                self.ws.receive_data(data)
                self.events.extend(self.ws.events())
        return self.events.pop(0)

    async def send(self, event: Event) -> None:
        await self.stream.send(self.ws.send(event))

    async def send_text(self, text: str) -> None:
        await self.send(TextMessage(data=text))

    async def receive_message(self) -> str | bytes:
        event = await self.next_event()
        assert isinstance(event, TextMessage | BytesMessage), event
        data = event.data
        return bytes(data) if isinstance(data, bytearray) else data

    async def expect_close(self) -> CloseConnection:
        """Wait for the server's close frame and answer it."""
        while True:
            event = await self.next_event()
            if isinstance(event, CloseConnection):
                if self.ws.state.name == "REMOTE_CLOSING":
                    await self.send(event.response())
                return event


@asynccontextmanager
async def ws_client(server: Server) -> AsyncIterator[WSClient]:
    async with await connect(server) as stream:
        yield WSClient(stream)


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo for WebSocket, 'ok' for HTTP."""
    if scope["type"] == "http":
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        reply: Message = {"type": "websocket.send"}
        reply.update({k: v for k, v in message.items() if k in ("text", "bytes")})
        await send(reply)


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body
