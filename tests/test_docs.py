"""The docs say what the code does: their programs run, their claims hold.

The ```python blocks of each page below form programs. A block that creates
its own ``App`` (a line ``name = App(...)``) starts a new program; every
other block continues the program before it, in the same namespace, as a
reader following the page would. Every program must run as written, and the
``test_*`` functions it defines (docs/testing.md) must pass. The tests after
that check what the prose says about those programs: through the test client,
and over real sockets on real servers where the claim is about the wire.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import wire
from tests.apps import docs_wire
from tests.servers import ROOT, RunningServer, run_server
from tinyws import App, HTTPError, Request, WebSocket, WebSocketDisconnect, WebSocketStateError
from tinyws.guards import bearer_token
from tinyws.testing import TestClient, WebSocketDenied

DOCS = ROOT / "docs"
# The pages these tests keep honest (others have their own checks).
PAGES = (
    ROOT / "README.md",
    DOCS / "architecture.md",
    DOCS / "guards-and-denials.md",
    DOCS / "lifespan.md",
    DOCS / "middleware.md",
    DOCS / "routing.md",
    DOCS / "servers.md",
    DOCS / "testing.md",
)
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
NEW_APP = re.compile(r"^\w+ = App\(", re.MULTILINE)
BACKENDS = ("asyncio", "trio")

Namespace = dict[str, Any]


def programs(page: Path) -> list[str]:
    """The page's programs, each the source of its blocks in order."""
    found: list[str] = []
    for block in BLOCK.findall(page.read_text(encoding="utf-8")):
        if NEW_APP.search(block) or not found:
            found.append(block)
        else:
            found[-1] += "\n\n" + block
    return found


def run_program(source: str, name: str) -> Namespace:
    namespace: Namespace = {"__name__": name}
    exec(compile(source, name, "exec"), namespace)  # the docs' own code
    return namespace


def program(page: str, containing: str) -> Namespace:
    """A fresh run of the one program of ``page`` whose source contains ``containing``."""
    matches = [p for p in programs(DOCS / page) if containing in p]
    assert len(matches) == 1, f"{page}: {len(matches)} programs contain {containing!r}"
    return run_program(matches[0], f"docs/{page}")


ALL_PROGRAMS = [
    pytest.param(page, index, id=f"{page.name}#{index}")
    for page in PAGES
    for index in range(len(programs(page)))
]


def test_the_pages_have_programs() -> None:
    counts = {page.name: len(programs(page)) for page in PAGES}
    assert counts["middleware.md"] == 3, counts
    assert counts["guards-and-denials.md"] >= 1, counts
    assert counts["testing.md"] == 1, counts


@pytest.mark.parametrize(("page", "index"), ALL_PROGRAMS)
def test_program_runs_as_written(page: Path, index: int) -> None:
    namespace = run_program(programs(page)[index], f"{page.name}#{index}")
    for name, function in list(namespace.items()):
        if not name.startswith("test_") or not callable(function):
            continue
        parameters = list(inspect.signature(function).parameters)
        if parameters == ["client"]:  # the page's fixture: one TestClient per backend
            for backend in BACKENDS:
                function(TestClient(namespace["app"], backend=backend))
        else:
            assert parameters == [], f"{name} takes {parameters}"
            function()


# -- files the pages name ------------------------------------------------------------


def test_every_file_the_pages_name_exists() -> None:
    named = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        named |= set(re.findall(r"`((?:tinyws|tests|benchmarks|examples)/[\w/.]*)`", text))
    assert "tinyws/denial.py" in named
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, missing


# -- docs/middleware.md -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_middleware_first_example(backend: str) -> None:
    app = program("middleware.md", "class ApiKey")["app"]
    client = TestClient(app, backend=backend)
    assert client.get("/health").headers["server-timing"].startswith("app;dur=")
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/events")
    assert denied.value.status == 401
    with client.websocket_connect("/events", headers={"X-Api-Key": "k1"}) as ws:
        assert ws.receive_text() == "welcome"


@pytest.mark.parametrize("backend", BACKENDS)
def test_request_id_works_as_written(backend: str) -> None:
    client = TestClient(program("middleware.md", "class RequestId")["app"], backend=backend)
    given = client.get("/whoami", headers={"X-Request-Id": "abc"})
    assert (given.status, given.json(), given.headers["x-request-id"]) == (
        200,
        {"request_id": "abc"},
        "abc",
    )
    made = client.get("/whoami")
    assert (made.json(), made.headers["x-request-id"]) == ({"request_id": "generated"}, "generated")


def test_request_id_unregistered_is_a_500() -> None:
    namespace = program("middleware.md", "class RequestId")
    bare = App()
    bare.get("/whoami")(namespace["whoami"])
    assert TestClient(bare, raise_server_exceptions=False).get("/whoami").status == 500


def _log_app() -> App:
    """The page's WebSocketLog app, with the routes its table's other rows need."""
    namespace = program("middleware.md", "class WebSocketLog")
    app: App = namespace["app"]

    @app.websocket("/false", guard=lambda req: False)
    async def refused(ws: WebSocket) -> None:
        await ws.accept()

    @app.websocket("/closing", guard=namespace["members_only"], denial="close")
    async def closing(ws: WebSocket) -> None:
        await ws.accept()

    @app.websocket("/crash")
    async def crash(ws: WebSocket) -> None:
        await ws.accept()
        raise RuntimeError("bug")

    @app.websocket("/receive")
    async def receive(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            await ws.receive()  # the client's close escapes as WebSocketDisconnect

    return app


def _connect(client: TestClient, path: str) -> None:
    try:
        with client.websocket_connect(path) as ws:
            ws.close(1000)
    except WebSocketDenied:
        pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_process_response_ws_table(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(_log_app(), backend=backend, raise_server_exceptions=False)
    rows = {
        "/chat": "/chat 401 close=None ok=False",
        "/chat?token=t": "/chat 101 close=1000 ok=True",
        "/nowhere": "/nowhere 404 close=None ok=False",
        "/false": "/false 403 close=None ok=True",
        "/closing": "/closing 101 close=4401 ok=False",
        "/crash": "/crash 101 close=1011 ok=False",
        "/receive": "/receive 101 close=1000 ok=False",
    }
    for path, line in rows.items():
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="app.websockets"):
            _connect(client, path)
        seen = [r.getMessage() for r in caplog.records if r.name == "app.websockets"]
        assert seen == [line], path
        if path == "/receive":  # the client leaving ends it quietly: nothing logged
            assert not [r for r in caplog.records if r.name == "tinyws"]


def test_process_response_ws_after_a_raising_process_request_ws() -> None:
    calls: list[str] = []

    class Mark:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def process_request_ws(self, req: Request, ws: WebSocket) -> None:
            calls.append(f"{self.name}.request")
            if self.fail:
                raise HTTPError(418)

        def process_response_ws(self, req: Request, ws: WebSocket, resource: Any, ok: bool) -> None:
            calls.append(f"{self.name}.response {ws.status} {ok}")

    app = App(middleware=[Mark("a"), Mark("b", fail=True), Mark("c")])
    with pytest.raises(WebSocketDenied):
        TestClient(app).websocket_connect("/x")
    assert calls == ["a.request", "b.request", "b.response 418 False", "a.response 418 False"]


# -- facts on the wire: docs/testing.md, docs/servers.md ------------------------------

# What each server sends for a close before accept: status line and body.
CLOSE_BEFORE_ACCEPT = {
    "tinyws": (b"HTTP/1.1 403 Forbidden", b"Forbidden\n"),
    "uvicorn-wsproto": (b"HTTP/1.1 403 ", b""),
    "uvicorn": (b"HTTP/1.1 403 Forbidden", b""),
    "hypercorn": (b"HTTP/1.1 403 ", b""),
    "granian": (b"HTTP/1.1 403 Forbidden", b""),
    "daphne": (b"HTTP/1.1 403 Access denied", b""),
}
UVICORN_ERROR = "ASGI callable returned without completing handshake."
SERVER_RUNS = [
    pytest.param(name, [], id=name) for name in CLOSE_BEFORE_ACCEPT if name != "tinyws"
] + [pytest.param("tinyws", ["--backend", backend], id=f"tinyws-{backend}") for backend in BACKENDS]


def _handshake(server: RunningServer, target: bytes) -> wire.Response:
    conn, response = wire.connect_ws(server.address, target)
    conn.close()
    return response


@pytest.mark.parametrize(("name", "args"), SERVER_RUNS)
def test_what_servers_send_for_a_refusal(name: str, args: list[str]) -> None:
    with run_server(name, "tests.apps.docs_wire:app", args) as server:
        early = _handshake(server, b"/early")
        assert (early.status_line, early.body) == CLOSE_BEFORE_ACCEPT[name], server.describe()
        denials = 3
        for _ in range(denials):
            denied = _handshake(server, b"/denied")
            expected = 403 if name == "daphne" else 401  # daphne: no denial extension
            assert denied.status == expected, server.describe()
        if name in ENDS_TCP_AFTER_CLOSE:
            ends = ENDS_TCP_AFTER_CLOSE[name]
            # Generous when the end is expected (a busy machine), short when it is not.
            wait = 2.0 if ends else 0.3
            assert _ends_tcp_after_close_frame(server, wait) == ends, server.describe()
        # uvicorn's websockets-sansio stack (plain `uvicorn app:app`) logs an error
        # for every denial sent through the extension; its wsproto stack does not.
        expected_errors = denials if name == "uvicorn" else 0
        log = _log_when(server, lambda text: text.count(UVICORN_ERROR) >= expected_errors)
    assert log.count(UVICORN_ERROR) == expected_errors, log


# docs/servers.md: after its close frame, does the server end TCP without waiting for
# the client's close frame? (daphne resets the connection about 0.5 s later: not pinned.)
ENDS_TCP_AFTER_CLOSE = {
    "tinyws": False,
    "uvicorn-wsproto": False,
    "uvicorn": False,
    "hypercorn": True,
    "granian": True,
}


def _ends_tcp_after_close_frame(server: RunningServer, wait: float) -> bool:
    """A close-mode refusal: True if TCP ends within ``wait`` s of the close frame, unanswered."""
    conn, response = wire.connect_ws(server.address, b"/closing")
    with conn:
        assert response.status == 101, response
        frame = wire.read_frame(conn)
        assert frame.close_code == 4401, frame
        assert not conn.buffer, bytes(conn.buffer)
        conn.sock.settimeout(wait)  # a server waiting for the client's close sends nothing
        try:
            return conn.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def _log_when(server: RunningServer, ready: Callable[[str], bool]) -> str:
    """The server's log once a last request was answered and ``ready(log)`` holds (5 s at most)."""
    # The requests before it are over on the server's side once it answers this one.
    with socket.create_connection(server.address, timeout=wire.TIMEOUT) as sock:
        sock.sendall(wire.request(b"GET", b"/", [(b"Connection", b"close")]))
        while sock.recv(65536):
            pass
    deadline = time.monotonic() + 5.0
    while not ready(server.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.log()


def test_plain_uvicorn_picks_websockets_sansio() -> None:
    """docs/servers.md: `uvicorn app:app` with its standard extras is the sansio stack."""
    code = (
        "from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol as P;"
        "print(P.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "WebSocketsSansIOProtocol"


# The rows of docs/testing.md's table, by the names tests/servers.py gives the servers.
TESTING_LABELS = {
    "tinyws (built-in)": "tinyws",
    "uvicorn, h11 + wsproto": "uvicorn-wsproto",
    "uvicorn, httptools + websockets-sansio": "uvicorn",
    "hypercorn": "hypercorn",
    "granian": "granian",
    "daphne": "daphne",
}


def test_testing_page_table_matches_the_measured_bytes() -> None:
    text = (DOCS / "testing.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (.+?) \| `(HTTP/1\.1 403 [^`]*)` \| (.+?) \|$", text, re.MULTILINE)
    table = {}
    for label, status_line, body in rows:
        quoted = re.match(r"`([^`]*)`", body)
        raw = quoted.group(1).replace("\\n", "\n").encode() if quoted else b""
        table[TESTING_LABELS[label]] = (status_line.encode(), raw)
    assert table == CLOSE_BEFORE_ACCEPT


# -- mount point: docs/routing.md, docs/testing.md ----------------------------------

# docs/routing.md: what `--root-path /api` does to `GET /where` and `GET /api/where`.
MOUNTED = {
    "tinyws": ("/where", None),
    "uvicorn": ("/where", None),
    "hypercorn": ("/where", "/where"),
    "daphne": ("/where", "/where"),
}


@pytest.mark.parametrize("name", MOUNTED)
def test_root_path_on_servers(name: str) -> None:
    with run_server(name, "tests.apps.docs_wire:app", ["--root-path", "/api"]) as server:
        seen: list[str | None] = []
        for target in (b"/where", b"/api/where"):
            response = wire.http_get(server.address, target)
            if response.status == 404:
                seen.append(None)
            else:
                assert response.status == 200, server.describe()
                facts = json.loads(response.body)
                assert facts["url"] == "http://127.0.0.1/api/where", facts
                seen.append(facts["path"])
    assert tuple(seen) == MOUNTED[name]


@pytest.mark.parametrize("backend", BACKENDS)
def test_test_client_root_path(backend: str) -> None:
    response = TestClient(docs_wire.app, root_path="/api", backend=backend).get("/where")
    assert response.json() == {"path": "/where", "url": "http://testserver/api/where"}


# -- docs/guards-and-denials.md ------------------------------------------------------


def _token_app() -> App:
    app = App()
    guard = bearer_token({"good": "alice", "other": "bob"}.get, query="token", cookie="session")

    @app.websocket("/feed", guard=guard)
    async def feed(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.context.user)

    return app


@pytest.mark.parametrize("backend", BACKENDS)
def test_bearer_token_sources(backend: str) -> None:
    client = TestClient(_token_app(), backend=backend)

    def user(path: str, **headers: str) -> str | int:
        try:
            with client.websocket_connect(path, headers=headers) as ws:
                return ws.receive_text()
        except WebSocketDenied as denied:
            return denied.status

    assert user("/feed?token=good") == "alice"
    assert user("/feed", Cookie="session=good") == "alice"
    assert user("/feed?token=other", Cookie="session=good") == "bob"  # query before cookie
    assert user("/feed?token=", Cookie="session=good") == "alice"  # an empty one is none
    assert user("/feed?token=good", Authorization="Bearer other") == "bob"  # the header wins
    assert user("/feed?token=good", Authorization="Basic good") == 401  # even a malformed one
    assert user("/feed") == 401


class _Gone:
    """A room member whose client has left: sending to it fails."""

    async def send_text(self, text: str) -> None:
        raise WebSocketDisconnect(1001)


class _Closed:
    """A room member whose own handler has closed its socket."""

    async def send_text(self, text: str) -> None:
        raise WebSocketStateError("send() needs the WebSocket to be ACCEPTED, but it is CLOSED")


def _room_app(namespace: Namespace, careful: bool) -> App:
    members = namespace["members"]
    app = App()

    @app.websocket("/room")
    async def room(ws: WebSocket) -> None:
        await ws.accept()
        members[ws] = "me"
        async for message in ws:
            if careful:
                await namespace["broadcast"](message)
            else:
                for member in list(members):
                    await member.send_text(message)
            await ws.send_text("still here")

    return app


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_member_sends_keep_the_sender(backend: str) -> None:
    namespace = program("guards-and-denials.md", "async def broadcast")
    members = namespace["members"]
    members.update({_Gone(): "gone", _Closed(): "closed"})
    client = TestClient(_room_app(namespace, careful=True), backend=backend)
    with client.websocket_connect("/room") as ws:
        ws.send_text("hi")
        assert [ws.receive_text(), ws.receive_text()] == ["hi", "still here"]
    assert list(members.values()) == ["me"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_another_sockets_disconnect_is_a_crash(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    namespace = program("guards-and-denials.md", "async def broadcast")
    namespace["members"][_Gone()] = "gone"
    app = _room_app(namespace, careful=False)
    client = TestClient(app, backend=backend, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="tinyws"), client.websocket_connect("/room") as ws:
        ws.send_text("hi")
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(3):  # its own "hi" may come first
                ws.receive_text()
    assert closed.value.code == 1011
    assert any(r.name == "tinyws" and r.exc_info for r in caplog.records)
