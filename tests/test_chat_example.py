"""examples/chat/ does what its docstring says: in process, and over a real socket."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, Request

from examples.chat import make_app
from examples.chat.access import served_origins
from examples.chat.rooms import Room
from tests.server_helpers import WSClient, connect, exchange, running
from tinyws import App, WebSocketDisconnect
from tinyws.errors import ClientDisconnect, WebSocketStateError
from tinyws.server import Server
from tinyws.testing import TestClient, WebSocketDenied
from tinyws.testing.session import WebSocketTestSession
from tinyws.types import Message

# The address `tinyws serve` prints; the test client's scopes carry it as "server".
BASE = "http://127.0.0.1:8000"
PAGE_ORIGIN = [("origin", BASE)]
BACKLOG = 50


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def client(backend: str) -> Iterator[TestClient]:
    with TestClient(make_app(), base_url=BASE, backend=backend) as client:
        yield client


def login(client: TestClient, name: str) -> str:
    answer = client.post("/login", json={"name": name})
    assert answer.status == 200
    token: str = answer.json()["token"]
    return token


def join(client: TestClient, name: str, room: str = "lobby") -> WebSocketTestSession:
    """A browser-like member: the page's Origin, the cookie the login set."""
    cookie = ("cookie", f"session={login(client, name)}")
    ws = client.websocket_connect(f"/rooms/{room}", headers=[*PAGE_ORIGIN, cookie])
    assert ws.receive_json()["type"] == "welcome"
    return ws


# -- the page and the login ------------------------------------------------------------


def test_page_is_served_at_root_with_everything_inline(client: TestClient) -> None:
    page = client.get("/")
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "new WebSocket(" in page.text
    # No build step, nothing fetched from elsewhere: no script or style file, no URL.
    for outside in ("<script src", "stylesheet", "http://", "https://"):
        assert outside not in page.text
    assert client.get("/health").json() == {"ok": True}


def test_login_sets_an_http_only_session_cookie(client: TestClient) -> None:
    answer = client.post("/login", json={"name": "  ann  "})
    assert answer.status == 200
    body = answer.json()
    assert body["name"] == "ann"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"session={body['token']};")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert login(client, "ann") != body["token"]  # one token per login


@pytest.mark.parametrize(
    "payload", [{"name": ""}, {"name": "x" * 33}, {"name": "a\nb"}, {"name": 7}, {}, [1]]
)
def test_login_refuses_a_bad_name(client: TestClient, payload: object) -> None:
    answer = client.post("/login", json=payload)
    assert answer.status == 400
    assert answer.json()["title"] == "Bad name"


def test_login_refuses_a_body_that_is_not_json(client: TestClient) -> None:
    answer = client.post("/login", content=b"name=ann")
    assert answer.status == 400
    assert answer.json()["title"] == "Malformed JSON"


# -- joining and talking ---------------------------------------------------------------


def test_join_by_cookie_query_or_header_and_fan_out(client: TestClient) -> None:
    with join(client, "ann") as ann:
        token = login(client, "bob")
        with client.websocket_connect(
            f"/rooms/lobby?token={token}", subprotocols=["chat.v1"]
        ) as bob:
            assert bob.subprotocol == "chat.v1"
            welcome = bob.receive_json()
            assert welcome == {
                "type": "welcome",
                "name": "bob",
                "room": "lobby",
                "members": ["ann"],
            }
            assert ann.receive_json() == {"type": "joined", "name": "bob"}
            bearer = [("authorization", f"Bearer {login(client, 'cy')}")]
            with client.websocket_connect("/rooms/lobby", headers=bearer) as cy:
                assert cy.receive_json()["members"] == ["ann", "bob"]
                for member in (ann, bob):
                    assert member.receive_json() == {"type": "joined", "name": "cy"}
                bob.send_text("hi all")
                said = {"type": "message", "name": "bob", "text": "hi all"}
                for member in (ann, bob, cy):
                    assert member.receive_json() == said


def test_rooms_are_apart(client: TestClient) -> None:
    with join(client, "ann", "lobby") as ann, join(client, "dev", "dev") as dev:
        dev.send_text("only in dev")
        assert dev.receive_json()["text"] == "only in dev"
        ann.send_text("only in lobby")
        assert ann.receive_json() == {"type": "message", "name": "ann", "text": "only in lobby"}


def test_members_leaving_do_not_disconnect_the_others(client: TestClient) -> None:
    with join(client, "ann") as ann, join(client, "bob") as bob:
        assert ann.receive_json() == {"type": "joined", "name": "bob"}
        bob.close(1001, "tab closed")
        assert ann.receive_json() == {"type": "left", "name": "bob"}
        with join(client, "cy") as cy:
            assert ann.receive_json() == {"type": "joined", "name": "cy"}
            ann.send_text("still here")
            for member in (ann, cy):
                assert member.receive_json() == {
                    "type": "message",
                    "name": "ann",
                    "text": "still here",
                }


def test_binary_messages_close_1003(client: TestClient) -> None:
    with join(client, "ann") as ann:
        ann.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect) as closed:
            ann.receive()
        assert (closed.value.code, closed.value.reason) == (1003, "text messages only")


# -- refusals: HTTP for scripts, a close code for browsers ------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/rooms/lobby", [], 401),
        ("/rooms/lobby?token=forged", [], 401),
        ("/rooms/lobby", [("cookie", "session=forged")], 401),
        ("/rooms/lobby", [("authorization", "Bearer forged")], 401),
    ],
)
def test_a_wrong_token_is_http_401_without_origin(
    client: TestClient, path: str, headers: list[tuple[str, str]], status: int
) -> None:
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect(path, headers=headers)
    assert denied.value.status == status
    assert denied.value.headers["www-authenticate"] == "Bearer"
    assert denied.value.json()["title"] == "Unauthorized"


def closed_with(client: TestClient, path: str, headers: list[tuple[str, str]]) -> tuple[int, str]:
    """What a browser sees: the upgrade succeeds, then the close code and reason."""
    with (
        client.websocket_connect(path, headers=headers) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive()
    return closed.value.code, closed.value.reason


def test_browser_refusals_are_close_codes(client: TestClient) -> None:
    wrong = [*PAGE_ORIGIN, ("cookie", "session=forged")]
    assert closed_with(client, "/rooms/lobby", wrong) == (4401, "Unauthorized")
    assert closed_with(client, "/rooms/lobby", PAGE_ORIGIN) == (4401, "Unauthorized")
    good = ("cookie", f"session={login(client, 'ann')}")
    assert closed_with(client, "/rooms/attic", [*PAGE_ORIGIN, good]) == (4404, "Unknown room")
    foreign = [("origin", "https://evil.example"), good]
    assert closed_with(client, "/rooms/lobby", foreign) == (4403, "Forbidden")


def test_origins_follow_the_served_address(backend: str) -> None:
    for base, page, allowed in [
        ("http://127.0.0.1:8000", "http://localhost:8000", True),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8001", False),
        ("http://127.0.0.1:9123", "http://127.0.0.1:9123", True),
        ("http://127.0.0.1:9123", "http://localhost:8000", False),
        ("http://10.1.2.3:8000", "http://10.1.2.3:8000", True),
        ("http://10.1.2.3:8000", "http://localhost:8000", False),
    ]:
        with TestClient(make_app(), base_url=base, backend=backend) as client:
            good = ("cookie", f"session={login(client, 'ann')}")
            with client.websocket_connect("/rooms/lobby", headers=[("origin", page), good]) as ws:
                if allowed:
                    assert ws.receive_json()["type"] == "welcome", (base, page)
                else:
                    with pytest.raises(WebSocketDisconnect) as closed:
                        ws.receive()
                    assert closed.value.code == 4403, (base, page)


def test_chat_origins_variable_replaces_the_served_address(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_ORIGINS", "https://chat.example, http://10.0.0.5:8000")
    with TestClient(make_app(), base_url=BASE, backend=backend) as client:
        good = ("cookie", f"session={login(client, 'ann')}")
        assert closed_with(client, "/rooms/lobby", [*PAGE_ORIGIN, good]) == (4403, "Forbidden")
        with client.websocket_connect(
            "/rooms/lobby", headers=[("origin", "https://chat.example"), good]
        ) as ws:
            assert ws.receive_json()["type"] == "welcome"


def test_served_origins() -> None:
    loopback = ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"]
    assert served_origins("ws", ("127.0.0.1", 8000)) == loopback
    assert served_origins("ws", ("0.0.0.0", 8000)) == loopback
    assert served_origins("ws", ["::1", 8000]) == loopback
    assert served_origins("wss", ("10.0.0.5", 443)) == ["https://10.0.0.5"]
    assert served_origins("ws", ("fe80::1", 80)) == ["http://[fe80::1]"]
    assert served_origins("ws", ("/run/chat.sock", None)) == []
    assert served_origins("ws", None) == []


# -- a member whose socket is gone --------------------------------------------------------


class Listener:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def send_json(self, data: Any) -> None:
        self.events.append(data)


class Gone:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.tries = 0

    async def send_json(self, data: Any) -> None:
        self.tries += 1
        raise self.error


@pytest.mark.parametrize("error", [WebSocketDisconnect(1006), WebSocketStateError("closed")])
def test_a_member_whose_send_fails_is_dropped_and_the_others_still_hear(
    error: Exception, anyio_backend: str
) -> None:
    room, first, gone, last = Room("lobby"), Listener(), Gone(error), Listener()
    for member, name in ((first, "ann"), (gone, "bob"), (last, "cy")):
        room.join(member, name)
    anyio.run(room.broadcast, {"text": "one"}, backend=anyio_backend)
    anyio.run(room.broadcast, {"text": "two"}, backend=anyio_backend)
    assert room.names() == ["ann", "cy"]
    assert gone.tries == 1
    assert first.events == last.events == [{"text": "one"}, {"text": "two"}]


def test_other_errors_are_not_taken_for_a_departure() -> None:
    room = Room("lobby")
    room.join(Gone(ValueError("a bug")), "bob")
    with pytest.raises(ValueError, match="a bug"):
        anyio.run(room.broadcast, {"text": "one"})
    assert room.names() == ["bob"]


class Peer:
    """One WebSocket as the app sees it through ASGI, with the server's side held still.

    ``gone`` is the moment a real server knows the client has left (its ``send``
    raises, as ASGI asks) while the app's handler has not yet been told (its
    ``receive`` still waits): the window in which another member's broadcast
    reaches it. Over sockets that window is a race; here it stays open.
    """

    def __init__(self, app: App, token: str) -> None:
        self.app = app
        self.token = token
        self.sent: list[Message] = []
        self.gone = False
        self.inbox, self._outbox = anyio.create_memory_object_stream[Message](10)

    async def run(self) -> None:
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": "/rooms/lobby",
            "raw_path": b"/rooms/lobby",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"authorization", f"Bearer {self.token}".encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "subprotocols": [],
            "extensions": {},
        }
        await self.inbox.send({"type": "websocket.connect"})
        with self.inbox, self._outbox:
            await self.app(scope, self._outbox.receive, self.send)

    async def send(self, message: Message) -> None:
        if self.gone:
            raise ClientDisconnect("the WebSocket is closed")
        self.sent.append(message)

    def events(self) -> list[Any]:
        return [json.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]

    async def wait_for(self, event: dict[str, Any]) -> None:
        with anyio.fail_after(5):
            while event not in self.events():
                assert not [m for m in self.sent if m["type"] == "websocket.close"], self.sent
                await anyio.sleep(0.001)


def test_a_member_gone_before_its_handler_noticed_does_not_end_the_sender(
    anyio_backend: str,
) -> None:
    app = make_app()
    ann, bob = (Peer(app, login(TestClient(app), name)) for name in ("ann", "bob"))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ann.run)
            await ann.wait_for({"type": "welcome", "name": "ann", "room": "lobby", "members": []})
            tg.start_soon(bob.run)
            await ann.wait_for({"type": "joined", "name": "bob"})
            bob.gone = True
            await ann.inbox.send({"type": "websocket.receive", "text": "hi"})
            await ann.wait_for({"type": "message", "name": "ann", "text": "hi"})
            await bob.inbox.send({"type": "websocket.disconnect", "code": 1006})
            await ann.wait_for({"type": "left", "name": "bob"})
            await ann.inbox.send({"type": "websocket.receive", "text": "still here"})
            await ann.wait_for({"type": "message", "name": "ann", "text": "still here"})
            await ann.inbox.send({"type": "websocket.disconnect", "code": 1000})
        # Never closed by the server: ann's handler ended only when ann left.
        assert [m for m in ann.sent if m["type"] == "websocket.close"] == []

    anyio.run(main, backend=anyio_backend)


# -- over a real socket, on the built-in server -------------------------------------------


class ChatClient(WSClient):
    async def open(
        self, app_port: int, path: str, headers: list[tuple[str, str]]
    ) -> AcceptConnection | RejectConnection:
        extra = [(name.encode(), value.encode()) for name, value in headers]
        await self.send(Request(host=f"127.0.0.1:{app_port}", target=path, extra_headers=extra))
        event = await self.next_event()
        assert isinstance(event, AcceptConnection | RejectConnection), event
        return event

    async def receive_json(self) -> Any:
        message = await self.receive_message()
        assert isinstance(message, str)
        return json.loads(message)


async def http_login(server: Server, name: str) -> str:
    """POST /login over the socket; the token from the Set-Cookie header."""
    body = json.dumps({"name": name}).encode()
    head = (
        f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    answer = await exchange(server, head.encode() + body)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    cookie = re.search(rb"\r\nset-cookie: session=([^;]+);", answer, re.IGNORECASE)
    assert cookie is not None, answer
    return cookie.group(1).decode()


@pytest.mark.anyio
async def test_real_socket_fan_out_and_members_dropping_off() -> None:
    async with running(make_app()) as server, contextlib.AsyncExitStack() as streams:
        origin = [("origin", f"http://127.0.0.1:{server.port}")]

        async def member(name: str) -> ChatClient:
            chat = ChatClient(await streams.enter_async_context(await connect(server)))
            cookie = ("cookie", f"session={await http_login(server, name)}")
            opened = await chat.open(server.port, "/rooms/lobby", [*origin, cookie])
            assert isinstance(opened, AcceptConnection)
            assert (await chat.receive_json())["type"] == "welcome"
            return chat

        ann = await member("ann")
        for round_ in range(6):
            # A member leaves (a close frame, or its TCP connection dropped without one)
            # and ann talks at once: her broadcast may reach the member that has gone
            # before its own handler has noticed.
            # Bob says a lot just before: his handler is still busy with that (his socket
            # already closed) while ann's broadcast reaches him.
            bob = await member(f"bob{round_}")
            assert await ann.receive_json() == {"type": "joined", "name": f"bob{round_}"}
            for n in range(BACKLOG):
                await bob.send_text(f"bob {n}")
            if round_ % 2:
                await bob.send(CloseConnection(code=1001))
            else:
                await bob.stream.aclose()
            await ann.send_text(f"round {round_}")
            mine = {"type": "message", "name": "ann", "text": f"round {round_}"}
            left = {"type": "left", "name": f"bob{round_}"}
            seen = [await ann.receive_json() for _ in range(2)]
            while (mine not in seen or left not in seen) and len(seen) < BACKLOG + 2:
                seen.append(await ann.receive_json())
            assert mine in seen
            assert left in seen
        cy = await member("cy")
        assert await ann.receive_json() == {"type": "joined", "name": "cy"}
        await ann.send_text("still here")
        for chat in (ann, cy):
            said = await chat.receive_json()
            assert said == {"type": "message", "name": "ann", "text": "still here"}
        await ann.send(CloseConnection(code=1000))
        assert (await ann.expect_close()).code == 1000
        assert await cy.receive_json() == {"type": "left", "name": "ann"}


@pytest.mark.anyio
async def test_real_socket_wrong_token_is_401_without_origin_and_4401_with() -> None:
    async with running(make_app()) as server:
        async with await connect(server) as stream:
            chat = ChatClient(stream)
            refused = await chat.open(server.port, "/rooms/lobby?token=forged", [])
            assert isinstance(refused, RejectConnection)
            assert refused.status_code == 401
            assert (b"www-authenticate", b"Bearer") in refused.headers

        page = [("origin", f"http://127.0.0.1:{server.port}"), ("cookie", "session=forged")]
        async with await connect(server) as stream:
            chat = ChatClient(stream)
            assert isinstance(await chat.open(server.port, "/rooms/lobby", page), AcceptConnection)
            closed = await chat.expect_close()
            assert (closed.code, closed.reason) == (4401, "Unauthorized")
