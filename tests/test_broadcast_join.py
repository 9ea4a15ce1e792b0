"""hub.join(channel, ws): rooms of WebSockets, through the test client and over real sockets."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.abc
import pytest
from wsproto.events import AcceptConnection, CloseConnection, TextMessage

from tests.redis_server import RedisServer
from tests.server_helpers import WSClient, running
from tinyws import App, WebSocket
from tinyws.broadcast import Broadcast
from tinyws.server import Server
from tinyws.testing import TestClient

TIMEOUT = 20.0


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    redis: RedisServer = request.getfixturevalue("redis")
    return redis.url


def room_app(hub: Broadcast, ended: dict[str, anyio.Event] | None = None) -> App:
    """SPEC §11's room; ``ended[name]`` is set when a member's join block is over."""

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        async with hub:
            yield

    app = App(lifespan=lifespan)

    @app.websocket("/rooms/{room}")
    async def room(ws: WebSocket, room: str) -> None:
        await ws.accept()
        async with hub.join(f"room:{room}", ws):
            async for message in ws:
                await hub.publish(f"room:{room}", message)
        name = ws.request.query.get("name")
        if ended is not None and name is not None:
            ended.setdefault(name, anyio.Event()).set()

    return app


# -- through the in-process test client -----------------------------------------


@pytest.fixture
def client(url: str, anyio_backend: str) -> Iterator[TestClient]:
    with TestClient(room_app(Broadcast(url)), backend=anyio_backend) as client:
        yield client


def test_members_of_a_room_get_its_messages_in_order_text_and_binary(client: TestClient) -> None:
    with (
        client.websocket_connect("/rooms/a") as alice,
        client.websocket_connect("/rooms/a") as bob,
        client.websocket_connect("/rooms/b") as carol,
    ):
        alice.send_text("hello")
        alice.send_bytes(b"\x00\x01")
        for member in (alice, bob):
            assert member.receive_text() == "hello"
            assert member.receive_bytes() == b"\x00\x01"
        bob.send_text("hi alice")
        for member in (alice, bob):
            assert member.receive_text() == "hi alice"
        carol.send_text("only b")
        assert carol.receive_text() == "only b"  # nothing of room a came first


def test_a_member_that_left_is_dropped_silently(client: TestClient) -> None:
    with client.websocket_connect("/rooms/a") as alice, client.websocket_connect("/rooms/a") as bob:
        with client.websocket_connect("/rooms/a") as leaving:
            leaving.send_text("bye")
            assert leaving.receive_text() == "bye"
        for i in range(50):
            alice.send_text(str(i))
        for member in (alice, bob):
            assert member.receive_text() == "bye"
            assert [member.receive_text() for _ in range(50)] == [str(i) for i in range(50)]
    # The test client re-raises any exception of the app: there was none.


# -- over real sockets against the built-in server ---------------------------------

MESSAGES = 5000
PAYLOAD = "x" * 2000


async def slow_client(server: Server, path: str) -> WSClient:
    """A client with a tiny receive buffer, so that not reading soon stalls the server."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        sock.connect(("127.0.0.1", server.port))
    await anyio.wait_writable(sock)
    client = WSClient(await anyio.abc.SocketStream.from_socket(sock))
    assert isinstance(await client.handshake(path), AcceptConnection)
    return client


async def reader(server: Server, path: str) -> WSClient:
    client = WSClient(await anyio.connect_tcp("127.0.0.1", server.port))
    assert isinstance(await client.handshake(path), AcceptConnection)
    return client


async def wait_members(hub: Broadcast, channel: str, count: int) -> None:
    """Joined means subscribed: a probe message reaches ``count`` members' queues."""
    with anyio.fail_after(TIMEOUT):
        while len(hub._fanout._inboxes.get(channel, ())) < count:
            await anyio.sleep(0.01)


@contextlib.asynccontextmanager
async def publisher_for(hub: Broadcast, url: str) -> AsyncIterator[Broadcast]:
    """The same hub on memory://; on Redis a second one, as another process would be."""
    if url == "memory://":
        yield hub
    else:
        async with Broadcast(url) as other:
            yield other


async def receive_whole(client: WSClient) -> str:
    """One text message, joined from the pieces wsproto hands out as bytes arrive."""
    text = ""
    while True:
        event = await client.next_event()
        assert isinstance(event, TextMessage), event
        text += event.data
        if event.message_finished:
            return text


async def read_all(client: WSClient, count: int) -> list[str]:
    return [await receive_whole(client) for _ in range(count)]


@pytest.mark.anyio
async def test_a_slow_member_is_closed_with_1013_while_readers_get_every_message(
    url: str,
) -> None:
    hub = Broadcast(url)
    ended: dict[str, anyio.Event] = {"slow": anyio.Event()}
    sent = [f"{i} {PAYLOAD}" for i in range(MESSAGES)]
    got: list[list[str]] = [[], [], []]
    # The slow client catches up only after its eviction; on a busy machine that can
    # take longer than the default close timeout, which would end it with 1006.
    async with (
        running(room_app(hub, ended), lifespan="on", ws_close_timeout=60.0) as server,
        contextlib.AsyncExitStack() as clients,
    ):
        readers = [await reader(server, "/rooms/a") for _ in range(3)]
        slow = await slow_client(server, "/rooms/a?name=slow")
        for client in [*readers, slow]:
            await clients.enter_async_context(client.stream)
        await wait_members(hub, "room:a", 4)

        async def read(index: int) -> None:
            got[index] = await read_all(readers[index], MESSAGES)

        received: list[str] = []
        close: list[CloseConnection] = []

        async def read_slowly() -> None:
            # It reads nothing until its handler is done (evicted), then catches up
            # within the server's close timeout, as a client back from a stall would.
            await ended["slow"].wait()
            partial = ""
            while not isinstance(event := await slow.next_event(), CloseConnection):
                assert isinstance(event, TextMessage)
                partial += event.data
                if event.message_finished:
                    received.append(partial)
                    partial = ""
            close.append(event)

        with anyio.fail_after(TIMEOUT * 3):
            async with publisher_for(hub, url) as publisher, anyio.create_task_group() as tg:
                for index in range(3):
                    tg.start_soon(read, index)
                tg.start_soon(read_slowly)
                for message in sent:
                    await publisher.publish("room:a", message)
    assert all(messages == sent for messages in got)
    assert close[0].code == 1013
    # What it got before the close is the start of the channel, in order, no gaps.
    assert 0 < len(received) < MESSAGES
    assert received == sent[: len(received)]


@pytest.mark.anyio
async def test_a_vanished_member_disturbs_nobody(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub = Broadcast(url)
    ended: dict[str, anyio.Event] = {"gone": anyio.Event()}
    sent = [f"message {i}" for i in range(300)]
    async with (
        running(room_app(hub, ended), lifespan="on") as server,
        contextlib.AsyncExitStack() as clients,
    ):
        readers = [await reader(server, "/rooms/a") for _ in range(2)]
        for client in readers:
            await clients.enter_async_context(client.stream)
        gone = await reader(server, "/rooms/a?name=gone")
        await wait_members(hub, "room:a", 3)
        # Gone without a close frame: reset, as a phone losing its network would.
        gone.stream.extra(anyio.abc.SocketAttribute.raw_socket).setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        await gone.stream.aclose()
        async with publisher_for(hub, url) as publisher:
            for message in sent:
                await publisher.publish("room:a", message)
        with anyio.fail_after(TIMEOUT):
            got = [await read_all(client, len(sent)) for client in readers]
            await ended["gone"].wait()
        await wait_members(hub, "room:a", 2)
    assert got == [sent, sent]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
