"""SPEC §4: the connection stays alive whatever the handler does.

Over real sockets against the in-process server, on both backends: a
push-only handler (never in `receive()`) still answers pings and close
frames and learns that the client left; a client that never reads holds up
neither its own server's other connections nor memory; the server's own
keepalive pings reach push-only handlers' clients.
"""

from __future__ import annotations

import socket
import time

import anyio
import pytest
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from tests.server_helpers import running, ws_client
from tinyws.errors import ClientDisconnect
from tinyws.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio


class Feed:
    """A push-only app: accept, then send `count` messages `every` seconds apart,
    never calling receive(); records how each handler ended."""

    def __init__(self, count: int, every: float, size: int = 10) -> None:
        self.count, self.every, self.size = count, every, size
        self.ended: list[str] = []
        self.sent = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        try:
            for i in range(self.count):
                await send({"type": "websocket.send", "text": f"{i:0{self.size}d}"})
                self.sent += 1
                await anyio.sleep(self.every)
        except ClientDisconnect as exc:
            self.ended.append(f"send raised: {exc}")
            message = await receive()
            self.ended.append(f"receive: {message['type']} {message.get('code')}")
            return
        self.ended.append("done")


async def test_push_only_handler_answers_every_ping_and_delivers_every_message() -> None:
    feed = Feed(count=8, every=0.15)
    async with running(feed) as server, ws_client(server) as client:
        await client.handshake("/feed")
        texts: list[str] = []
        pongs = pings = 0
        with anyio.fail_after(10):
            while len(texts) < 8:
                with anyio.move_on_after(0.05):  # a ping every 0.05 s (the 0.3 s, faster)
                    event = await client.next_event()
                    if isinstance(event, TextMessage):
                        texts.append(event.data)
                    elif isinstance(event, Pong):
                        assert event.payload == b"%d" % pongs
                        pongs += 1
                    continue
                await client.send(Ping(payload=b"%d" % pings))
                pings += 1
            await client.send(CloseConnection(code=1000))
            while pongs < pings:
                event = await client.next_event()
                if isinstance(event, Pong):
                    pongs += 1
        assert texts == [f"{i:010d}" for i in range(8)]
        assert pings >= 10 and pongs == pings


async def test_a_close_during_a_push_only_handler_is_answered_within_a_second() -> None:
    feed = Feed(count=400, every=0.1)
    async with running(feed) as server, ws_client(server) as client:
        await client.handshake("/feed")
        assert isinstance(await client.next_event(), TextMessage)
        await client.send(CloseConnection(code=4001, reason="bye"))
        start = time.monotonic()
        with anyio.fail_after(1.0):
            while True:
                event = await client.next_event()
                if isinstance(event, CloseConnection):
                    break
            assert event.code == 4001
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                while True:  # nothing more, then the server ends TCP
                    await client.stream.receive()
        assert time.monotonic() - start < 1.0
        with anyio.fail_after(2):
            while not feed.ended:
                await anyio.sleep(0.02)
        assert feed.ended == [
            "send raised: the WebSocket is closed (4001)",
            "receive: websocket.disconnect 4001",
        ]


async def test_a_vanished_client_makes_the_next_send_raise() -> None:
    feed = Feed(count=400, every=0.05)
    async with running(feed) as server:
        async with ws_client(server) as client:
            await client.handshake("/feed")
            assert isinstance(await client.next_event(), TextMessage)
        # The socket closed without a close frame.
        with anyio.fail_after(2):
            while not feed.ended:
                await anyio.sleep(0.02)
        assert feed.ended[0].startswith("send raised")
        assert feed.ended[1] == "receive: websocket.disconnect 1006"
        assert feed.sent < 40


async def test_a_client_that_never_reads_cannot_hold_up_another_connection() -> None:
    # Each connection has its own handler pushing 8 KiB messages; one client
    # never reads (small receive buffer). The other must get all of its messages
    # promptly, and the stuck one's handler must be held at the high-water mark.
    feed = Feed(count=3000, every=0, size=8192)
    async with running(feed, ws_write_high_water=64 * 1024) as server:
        stuck = socket.create_connection(("127.0.0.1", server.port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            stuck.sendall(
                b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await anyio.sleep(0.3)
            held = feed.sent
            assert held < 1000  # the stuck one's sends wait: under 8 MiB is with the kernel
            start = time.monotonic()
            async with ws_client(server) as client:
                await client.handshake("/reader")
                with anyio.fail_after(10):
                    for _ in range(3000):
                        assert isinstance(await client.next_event(), TextMessage)
            assert feed.sent - held >= 3000  # the reader's handler was never held
            assert time.monotonic() - start < 5
        finally:
            stuck.close()


async def test_the_server_pings_a_push_only_handlers_silent_client_and_drops_it() -> None:
    feed = Feed(count=1000, every=0.05)
    options = {"ws_ping_interval": 0.2, "ws_ping_timeout": 0.3}
    async with running(feed, **options) as server, ws_client(server) as client:
        await client.handshake("/feed")
        with anyio.fail_after(3):
            while True:  # read, never answer: pings are seen, then the connection ends
                event = await client.next_event()
                if isinstance(event, Ping):
                    break
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError, TimeoutError)):
                while True:
                    await client.stream.receive()
        with anyio.fail_after(2):
            while not feed.ended:
                await anyio.sleep(0.02)
        assert feed.ended[0].startswith("send raised")


async def test_an_answering_client_stays_connected_through_the_servers_pings() -> None:
    feed = Feed(count=20, every=0.05)
    options = {"ws_ping_interval": 0.1, "ws_ping_timeout": 0.2}
    async with running(feed, **options) as server, ws_client(server) as client:
        await client.handshake("/feed")
        texts = pings = 0
        with anyio.fail_after(5):
            while texts < 20:
                event = await client.next_event()
                if isinstance(event, Ping):
                    pings += 1
                    await client.send(event.response())
                elif isinstance(event, TextMessage):
                    texts += 1
        assert feed.ended == ["done"] or feed.sent == 20
