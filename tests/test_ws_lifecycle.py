"""How a WebSocket ends, as middleware and handlers see it (SPEC sections 3, 4, 5 and 7).

``process_response_ws`` with ``ws.status`` and ``ws.close_code``; disconnect
scoping (only a connection's own client leaving ends it quietly); the mount
point (``root_path``). In process here; over real servers in
``test_e2e_lifecycle.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tinyws import App, HTTPError, Request, Response, WebSocket, WebSocketDisconnect
from tinyws.testing import TestClient, WebSocketDenied

Seen = list[tuple[Any, ...]]


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


class Recorder:
    """Records every hook it gets, with what ``ws`` says at that moment."""

    def __init__(self, name: str, seen: Seen, stop_at_request: Exception | None = None) -> None:
        self.name = name
        self.seen = seen
        self.stop_at_request = stop_at_request

    def process_request_ws(self, req: Request, ws: WebSocket) -> None:
        self.seen.append((self.name, "request", ws.status))
        if self.stop_at_request is not None:
            raise self.stop_at_request

    async def process_response_ws(
        self, req: Request, ws: WebSocket, resource: object, req_succeeded: bool
    ) -> None:
        name = getattr(resource, "__name__", None)
        self.seen.append((self.name, "response", ws.status, ws.close_code, name, req_succeeded))


def app_with(seen: Seen, *middleware: object, denial: Any = "http") -> App:
    app = App(middleware=[Recorder("a", seen), *middleware, Recorder("c", seen)], denial=denial)

    def deny_bad(req: Request) -> bool:
        return req.query.get("token") != "bad"

    def raise_401(req: Request) -> None:
        if req.query.get("token") == "none":
            raise HTTPError(401)

    @app.websocket("/echo", guard=[deny_bad, raise_401])
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)

    @app.websocket("/crash")
    async def crash(ws: WebSocket) -> None:
        await ws.accept()
        raise RuntimeError("boom")

    @app.websocket("/strict")
    async def strict(ws: WebSocket) -> None:
        await ws.accept()
        while True:  # receive() raises when the client leaves: an exception escapes
            await ws.receive()

    @app.websocket("/teapot")
    async def teapot(ws: WebSocket) -> None:
        await ws.deny(Response("short and stout", status=418))

    return app


def responses(seen: Seen) -> list[tuple[Any, ...]]:
    return [entry for entry in seen if entry[1] == "response"]


def test_response_ws_after_a_normal_close_runs_in_reverse_order(backend: str) -> None:
    seen: Seen = []
    with TestClient(app_with(seen), backend=backend).websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
    assert seen[:2] == [("a", "request", None), ("c", "request", None)]
    assert responses(seen) == [
        ("c", "response", 101, 1000, "echo", True),
        ("a", "response", 101, 1000, "echo", True),
    ]


def test_response_ws_sees_the_clients_close_code(backend: str) -> None:
    seen: Seen = []
    with TestClient(app_with(seen), backend=backend).websocket_connect("/echo") as ws:
        ws.close(4321, "bye")
    assert responses(seen)[0] == ("c", "response", 101, 4321, "echo", True)


def test_receive_raising_on_the_clients_close_is_an_exception_that_escaped(backend: str) -> None:
    seen: Seen = []
    with TestClient(app_with(seen), backend=backend).websocket_connect("/strict") as ws:
        ws.close(1001)
    assert responses(seen)[0] == ("c", "response", 101, 1001, "strict", False)


@pytest.mark.parametrize(
    ("path", "status", "resource", "succeeded"),
    [
        ("/echo?token=bad", 403, "echo", True),  # a guard's False raises nothing
        ("/echo?token=none", 401, "echo", False),  # a guard's HTTPError
        ("/nowhere", 404, None, False),  # the router's 404
        ("/teapot", 418, "teapot", True),  # ws.deny(): the handler raised nothing
    ],
)
def test_response_ws_after_a_denial_has_its_status(
    path: str, status: int, resource: str | None, succeeded: bool, backend: str
) -> None:
    seen: Seen = []
    client = TestClient(app_with(seen), backend=backend)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect(path)
    assert denied.value.status == status
    assert responses(seen) == [
        ("c", "response", status, None, resource, succeeded),
        ("a", "response", status, None, resource, succeeded),
    ]


def test_response_ws_in_close_mode_sees_101_and_the_close_code(backend: str) -> None:
    seen: Seen = []
    client = TestClient(app_with(seen, denial="close"), backend=backend)
    with client.websocket_connect("/echo?token=none") as ws, pytest.raises(WebSocketDisconnect):
        ws.receive_text()
    assert responses(seen)[0] == ("c", "response", 101, 4401, "echo", False)


def test_response_ws_without_the_extension_sees_the_403_the_server_sends(backend: str) -> None:
    seen: Seen = []
    client = TestClient(app_with(seen), backend=backend, denial_response=False)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/nowhere")
    assert denied.value.status == 403
    assert responses(seen)[0] == ("c", "response", 403, None, None, False)


def test_response_ws_after_a_crash_sees_1011(backend: str) -> None:
    seen: Seen = []
    client = TestClient(app_with(seen), backend=backend, raise_server_exceptions=False)
    with client.websocket_connect("/crash") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 1011
    assert responses(seen)[0] == ("c", "response", 101, 1011, "crash", False)


def test_response_ws_runs_only_for_middleware_whose_request_hook_ran(backend: str) -> None:
    seen: Seen = []
    stopper = Recorder("b", seen, stop_at_request=HTTPError(429))
    client = TestClient(app_with(seen, stopper), backend=backend)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/echo")
    assert denied.value.status == 429
    assert [entry[0] for entry in seen] == ["a", "b", "b", "a"]
    assert responses(seen) == [
        ("b", "response", 429, None, None, False),
        ("a", "response", 429, None, None, False),
    ]


def test_a_failing_response_ws_hook_is_logged_and_the_others_still_run(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: Seen = []

    class Broken:
        def process_response_ws(self, req: Request, ws: WebSocket, *args: object) -> None:
            raise ValueError("metrics backend down")

    client = TestClient(app_with(seen, Broken()), backend=backend, raise_server_exceptions=False)
    with client.websocket_connect("/echo") as ws:
        ws.send_text("x")
        assert ws.receive_text() == "x"
    assert [entry[0] for entry in responses(seen)] == ["c", "a"]
    assert "error in process_response_ws for /echo" in caplog.text
    assert "metrics backend down" in caplog.text


def test_a_failing_response_ws_hook_reraises_in_tests(backend: str) -> None:
    class Broken:
        def process_response_ws(self, req: Request, ws: WebSocket, *args: object) -> None:
            raise ValueError("metrics backend down")

    client = TestClient(app_with([], Broken()), backend=backend)
    with (
        pytest.raises(ValueError, match="metrics backend down"),
        client.websocket_connect("/echo") as ws,
    ):
        ws.close()


def test_status_is_none_until_the_handshake_is_answered(backend: str) -> None:
    statuses: list[int | None] = []
    app = App()

    @app.websocket("/")
    async def handler(ws: WebSocket) -> None:
        statuses.append(ws.status)
        await ws.accept()
        statuses.append(ws.status)
        await ws.close(4000)
        statuses.append(ws.status)

    with (
        TestClient(app, backend=backend).websocket_connect("/") as ws,
        pytest.raises(WebSocketDisconnect),
    ):
        ws.receive_text()
    assert statuses == [None, 101, 101]


# -- disconnect scoping ------------------------------------------------------------------


def room_app(members: list[WebSocket]) -> App:
    """A naive room: every message goes to every other member, dead ones included."""
    app = App()

    @app.websocket("/room")
    async def room(ws: WebSocket) -> None:
        await ws.accept()
        members.append(ws)
        async for message in ws:
            for member in list(members):
                if member is not ws:
                    await member.send(message)  # raises if that member has left

    return app


def test_sending_to_a_member_who_left_is_an_error_for_the_sender_not_a_quiet_close(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    members: list[WebSocket] = []
    # Inside ``with``, every session runs on the client's one event loop, as on a server.
    with (
        TestClient(room_app(members), backend=backend, raise_server_exceptions=False) as client,
        client.websocket_connect("/room") as alice,
    ):
        with client.websocket_connect("/room") as bob:
            bob.send_text("hi")
            assert alice.receive_text() == "hi"
        assert "error in WebSocket handler" not in caplog.text  # bob's own leaving is quiet
        alice.send_text("anyone?")
        with pytest.raises(WebSocketDisconnect) as closed:
            alice.receive_text()
    assert closed.value.code == 1011  # never 1000: alice did nothing wrong, the app failed
    assert "error in WebSocket handler for /room" in caplog.text
    assert "WebSocketDisconnect" in caplog.text


def test_another_sockets_disconnect_reraises_in_tests(backend: str) -> None:
    members: list[WebSocket] = []
    with (
        TestClient(room_app(members), backend=backend) as client,
        client.websocket_connect("/room") as alice,
    ):
        with client.websocket_connect("/room"):
            pass
        alice.send_text("anyone?")
        with pytest.raises(WebSocketDisconnect) as raised:
            alice.receive_text()
    # The test sees the app's exception: bob's close code, not an end of alice's.
    assert raised.value.code == 1000


def test_own_disconnect_is_quiet_and_logs_nothing(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tinyws")
    app = App()

    @app.websocket("/")
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            await ws.receive()

    client = TestClient(app, backend=backend, raise_server_exceptions=False)
    with client.websocket_connect("/") as ws:
        ws.close(1001)
    assert caplog.records == []


# -- mount point -------------------------------------------------------------------------


def mounted_app() -> App:
    app = App()

    @app.get("/where")
    async def where(req: Request) -> dict[str, str]:
        return {"path": req.path, "url": req.url}

    @app.websocket("/ws")
    async def ws_where(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"path": ws.request.path, "url": ws.request.url})

    return app


def test_routes_match_below_the_root_path(backend: str) -> None:
    client = TestClient(mounted_app(), backend=backend, root_path="/api")
    assert client.get("/where?x=1").json() == {
        "path": "/where",
        "url": "http://testserver/api/where?x=1",
    }
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {"path": "/ws", "url": "ws://testserver/api/ws"}
    # The prefix is not routed twice: /api/where under root /api is /api/api/where.
    assert client.get("/api/where").status == 404


@pytest.mark.parametrize(
    ("root_path", "path", "routed"),
    [
        ("/api", "/api/where", "/where"),  # uvicorn, tinyws: root path in front of path
        ("/api", "/where", "/where"),  # servers that leave it out
        ("/api", "/apiary/where", "/apiary/where"),  # a prefix of a segment is no mount
        ("/api", "/api", ""),  # the mount point itself: routes nothing, url stays
        ("", "/where", "/where"),
    ],
)
def test_the_routed_path_strips_the_root_path_once(root_path: str, path: str, routed: str) -> None:
    scope = {"type": "http", "path": path, "root_path": root_path, "headers": []}
    req = Request(scope, _no_receive)
    assert req.path == routed
    assert req.url == f"http://localhost{root_path}{routed}"


async def _no_receive() -> dict[str, Any]:
    raise AssertionError("not called")


@pytest.mark.parametrize("bad", ["api", "/api/"])
def test_test_client_refuses_a_malformed_root_path(bad: str) -> None:
    with pytest.raises(ValueError, match="root_path"):
        TestClient(mounted_app(), root_path=bad)
