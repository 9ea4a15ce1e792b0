"""examples/chat/ does what its docstring says: in process, and over a real socket."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, Request

from examples.chat import make_app
from examples.chat.access import Sessions, served_origins
from examples.chat.rooms import Roster
from tests.redis_server import redis_server
from tests.server_helpers import WSClient, connect, exchange, running
from tests.servers import RunningServer, run_server
from tests.wire import TEXT, Conn, close_frame, encode_frame, handshake, read_frame, read_head
from tests.wire import read_response as read_http_response
from tests.wire import request as wire_request
from tinyws import WebSocketDisconnect
from tinyws.server import Server
from tinyws.testing import TestClient, WebSocketDenied
from tinyws.testing.session import WebSocketTestSession

# The address `tinyws serve` prints; the test client's scopes carry it as "server".
BASE = "http://127.0.0.1:8000"
PAGE_ORIGIN = [("origin", BASE)]
BACKLOG = 50
WORKER_WAIT = 60.0  # seconds for a step against worker processes on a loaded machine


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
    assert ws.receive_json() == {"type": "joined", "name": name}  # its own, from the room
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
    assert client.get("/health").json() == {"ok": True, "pid": os.getpid()}


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
            for member in (ann, bob):
                assert member.receive_json() == {"type": "joined", "name": "bob"}
            bearer = [("authorization", f"Bearer {login(client, 'cy')}")]
            with client.websocket_connect("/rooms/lobby", headers=bearer) as cy:
                assert cy.receive_json()["members"] == ["ann", "bob"]
                for member in (ann, bob, cy):
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


# -- sessions and the roster ---------------------------------------------------------------


def test_tokens_are_signed_and_any_process_with_the_key_verifies_them() -> None:
    here, there, stranger = Sessions("k1"), Sessions("k1"), Sessions("k2")
    token = here.issue("ann")
    assert there.verify(token) == "ann"
    assert stranger.verify(token) is None
    body, _, signature = token.partition(".")
    forged = Sessions("k1").issue("bob").partition(".")[0]
    assert here.verify(f"{forged}.{signature}") is None  # bob's claims, ann's signature
    for junk in ("", ".", "x", f"{body}.", f"{body}.é", "é.é"):
        assert here.verify(junk) is None, junk


def test_tokens_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = Sessions("k")
    token = sessions.issue("ann")
    later = time.time() + 12 * 3600 + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert sessions.verify(token) is None


def test_chat_secret_is_the_default_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_SECRET", "shared")
    assert Sessions().verify(Sessions("shared").issue("ann")) == "ann"
    monkeypatch.delenv("CHAT_SECRET")
    assert Sessions().verify(Sessions().issue("ann")) is None  # a random key each


def test_roster_counts_joins_and_leaves_per_member() -> None:
    roster = Roster(("lobby", "dev"))
    for event in ("joined ann", "joined bob", "joined ann", "left ann", "message ann"):
        kind, name = event.split()
        roster.note("lobby", json.dumps({"type": kind, "name": name, "text": "hi"}))
    assert roster.names("lobby") == ["ann", "bob"]
    assert roster.names("dev") == []
    roster.note("lobby", json.dumps({"type": "left", "name": "ann"}))
    roster.note("lobby", json.dumps({"type": "left", "name": "ann"}))  # a stray: no -1
    assert roster.names("lobby") == ["bob"]


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
    async with running(make_app(), lifespan="on") as server, contextlib.AsyncExitStack() as streams:
        origin = [("origin", f"http://127.0.0.1:{server.port}")]

        async def member(name: str) -> ChatClient:
            chat = ChatClient(await streams.enter_async_context(await connect(server)))
            cookie = ("cookie", f"session={await http_login(server, name)}")
            opened = await chat.open(server.port, "/rooms/lobby", [*origin, cookie])
            assert isinstance(opened, AcceptConnection)
            assert (await chat.receive_json())["type"] == "welcome"
            assert await chat.receive_json() == {"type": "joined", "name": name}
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
    async with running(make_app(), lifespan="on") as server:
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


# -- two workers on one Redis: `tinyws serve examples.chat:app --workers 2` ----------------


class WorkerMember(NamedTuple):
    name: str
    conn: Conn
    pid: int
    welcome: dict[str, Any]


def worker_member(server: RunningServer, name: str) -> WorkerMember:
    """A member over a raw socket, once its own ``joined`` came back through Redis.

    ``GET /health`` tells the PID of the worker; the upgrade then goes over
    the same keep-alive connection, so it is that worker's member.
    """
    token = worker_login(server, name)
    conn = Conn(server.address, timeout=WORKER_WAIT)
    conn.send(wire_request(b"GET", b"/health"))
    pid = json.loads(read_http_response(conn).body)["pid"]
    conn.send(handshake(b"/rooms/lobby", [(b"Authorization", f"Bearer {token}".encode())]))
    assert read_head(conn).status == 101
    welcome = json.loads(read_frame(conn).payload)
    assert welcome["type"] == "welcome", welcome
    next_event(conn, {"type": "joined", "name": name})
    return WorkerMember(name, conn, pid, welcome)


def next_event(conn: Conn, wanted: dict[str, Any]) -> None:
    """Read the member's events until ``wanted`` (others, such as joins, pass by)."""
    seen: list[Any] = []
    for _ in range(20):
        frame = read_frame(conn)
        assert frame.opcode == TEXT, (frame, seen)
        seen.append(json.loads(frame.payload))
        if seen[-1] == wanted:
            return
    raise AssertionError(f"never got {wanted}: {seen}")


def worker_login(server: RunningServer, name: str) -> str:
    body = json.dumps({"name": name}).encode()
    headers = [(b"Content-Type", b"application/json"), (b"Connection", b"close")]
    with Conn(server.address, timeout=WORKER_WAIT) as conn:
        conn.send(wire_request(b"POST", b"/login", headers, body))
        token: str = json.loads(read_http_response(conn).body)["token"]
    return token


@pytest.mark.parametrize("server_backend", ["asyncio", "trio"])
def test_two_workers_on_redis_carry_a_room_across_processes(server_backend: str) -> None:
    env = {"TINYWS_BROADCAST": "", "CHAT_SECRET": "the same key in every worker"}
    with redis_server() as redis:
        env["TINYWS_BROADCAST"] = redis.url
        args = ["--workers", "2", "--backend", server_backend]
        with run_server("tinyws", "examples.chat:app", args, env) as server:
            deadline = time.monotonic() + WORKER_WAIT
            while server.log().count(" serving (slot ") < 2:
                assert time.monotonic() < deadline, server.describe()
                time.sleep(0.05)
            members: dict[int, WorkerMember] = {}
            spare: list[Conn] = []
            for attempt in range(40):  # the kernel picks the worker: try until both have one
                member = worker_member(server, f"user{attempt}")
                if member.pid in members:
                    spare.append(member.conn)
                else:
                    members[member.pid] = member
                if len(members) == 2:
                    break
            assert len(members) == 2, server.describe()
            ann, bob = members.values()
            try:
                # bob's worker heard ann join on the other worker, through Redis.
                assert ann.name in bob.welcome["members"], bob.welcome
                ann.conn.send(encode_frame(TEXT, b"hello from one worker"))
                said = {"type": "message", "name": ann.name, "text": "hello from one worker"}
                next_event(bob.conn, said)
                next_event(ann.conn, said)
                bob.conn.send(encode_frame(TEXT, b"and back from the other"))
                back = {"type": "message", "name": bob.name, "text": "and back from the other"}
                next_event(ann.conn, back)
                bob.conn.send(close_frame(1000))
                next_event(ann.conn, {"type": "left", "name": bob.name})
            finally:
                for conn in (ann.conn, bob.conn, *spare):
                    conn.close()
            assert redis.subscribers("chat:lobby") == 2  # one subscription per worker
