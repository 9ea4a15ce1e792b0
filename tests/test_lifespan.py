"""SPEC section 6: startup, shutdown, lifespan state and lazy startup.

The raw tests play the server's side of ASGI lifespan themselves, to see the
literal messages; the others go through the test client.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from tinyws import App, Request, WebSocket
from tinyws.errors import LifespanError
from tinyws.testing import TestClient, WebSocketDenied
from tinyws.types import Message, Scope

INTERNAL_ERROR = b'{"title":"Internal Server Error"}'
ASGI = {"version": "3.0", "spec_version": "2.4"}


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


# -- a minimal server side, for raw ASGI calls --------------------------------------


class LifespanServer:
    """Runs the app's lifespan task and exchanges lifespan messages with it."""

    def __init__(self, app: App, state: dict[str, Any] | None) -> None:
        self.app = app
        self.scope: Scope = {"type": "lifespan", "asgi": ASGI}
        if state is not None:
            self.scope["state"] = state
        self.to_app, self.app_inbox = anyio.create_memory_object_stream[Message](10)
        self.app_outbox, self.from_app = anyio.create_memory_object_stream[Message](10)

    async def run(self) -> None:
        async with self.app_outbox:
            await self.app(self.scope, self.app_inbox.receive, self.app_outbox.send)

    async def event(self, phase: str) -> Message:
        await self.to_app.send({"type": f"lifespan.{phase}"})
        with anyio.fail_after(5):
            return await self.from_app.receive()


@contextlib.asynccontextmanager
async def lifespan_server(
    app: App, state: dict[str, Any] | None = None
) -> AsyncIterator[LifespanServer]:
    server = LifespanServer(app, state)
    async with server.to_app, server.app_inbox, server.from_app, anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        try:
            yield server
        except BaseException:
            tg.cancel_scope.cancel()  # the app may wait for an event that never comes
            raise
        with anyio.fail_after(5):
            # After its last answer the app returns: the outbox closes.
            assert [message async for message in server.from_app] == []


def request_scope(kind: str, path: str, state: dict[str, Any] | None) -> Scope:
    scope: Scope = {
        "type": kind,
        "asgi": ASGI,
        "http_version": "1.1",
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    if kind == "http":
        scope["method"] = "GET"
    else:
        scope["subprotocols"] = []
        scope["extensions"] = {"websocket.http.response": {}}
    if state is not None:
        scope["state"] = dict(state)  # servers hand each request a shallow copy
    return scope


async def http_get(app: App, path: str, state: dict[str, Any] | None = None) -> Message:
    """One GET; the app's messages folded into {"status", "body"}."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(request_scope("http", path, state), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return {"status": sent[0]["status"], "body": sent[1]["body"]}


async def run_lifespan(app: App, state: dict[str, Any] | None = None) -> list[Message]:
    """Startup then (if it completed) shutdown; every message the app sent."""
    answers = []
    async with lifespan_server(app, state) as server:
        answers.append(await server.event("startup"))
        if answers[0]["type"] == "lifespan.startup.complete":
            answers.append(await server.event("shutdown"))
    return answers


# -- order -----------------------------------------------------------------------------


def ordered_app(log: list[str]) -> App:
    class Hooks:
        def __init__(self, name: str) -> None:
            self.name = name

        async def process_startup(self, scope: Scope, event: Message) -> None:
            log.append(f"{self.name}.process_startup {scope['type']} {event['type']}")

        def process_shutdown(self, scope: Scope, event: Message) -> None:
            log.append(f"{self.name}.process_shutdown {scope['type']} {event['type']}")

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        log.append("lifespan enter")
        yield {"pool": "the pool"}
        log.append("lifespan exit")

    app = App(middleware=[Hooks("a"), Hooks("b")], lifespan=lifespan)

    @app.on_startup
    async def first_startup() -> None:
        log.append("on_startup 1")

    @app.on_startup
    def second_startup() -> None:
        log.append("on_startup 2")

    @app.on_shutdown
    def first_shutdown() -> None:
        log.append("on_shutdown 1")

    @app.on_shutdown
    async def second_shutdown() -> None:
        log.append("on_shutdown 2")

    @app.get("/")
    async def index(req: Request) -> dict[str, Any]:
        log.append("request")
        return {"pool": req.state.pool}

    return app


STARTUP = [
    "a.process_startup lifespan lifespan.startup",
    "b.process_startup lifespan lifespan.startup",
    "on_startup 1",
    "on_startup 2",
    "lifespan enter",
]
SHUTDOWN = [
    "lifespan exit",
    "on_shutdown 1",
    "on_shutdown 2",
    "b.process_shutdown lifespan lifespan.shutdown",
    "a.process_shutdown lifespan lifespan.shutdown",
]


@pytest.mark.anyio
async def test_startup_and_shutdown_order_over_raw_lifespan() -> None:
    log: list[str] = []
    app = ordered_app(log)
    async with lifespan_server(app, state={}) as server:
        assert await server.event("startup") == {"type": "lifespan.startup.complete"}
        assert log == STARTUP
        assert await server.event("shutdown") == {"type": "lifespan.shutdown.complete"}
    assert log == STARTUP + SHUTDOWN


def test_startup_and_shutdown_order_through_the_test_client(backend: str) -> None:
    log: list[str] = []
    with TestClient(ordered_app(log), backend=backend) as client:
        assert log == STARTUP
        assert client.get("/").json() == {"pool": "the pool"}
    assert log == [*STARTUP, "request", *SHUTDOWN]


@pytest.mark.anyio
async def test_an_app_without_hooks_completes_both_phases() -> None:
    assert await run_lifespan(App(), state={}) == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]


# -- state -----------------------------------------------------------------------------


def state_app() -> App:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": "p-1", "limit": 3}

    app = App(lifespan=lifespan)

    @app.get("/")
    async def index(req: Request) -> dict[str, Any]:
        return {"attr": req.state.pool, "item": req.state["limit"], "has": "pool" in req.state}

    @app.websocket("/ws")
    async def ws_state(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"attr": ws.state.pool, "item": ws.state["limit"]})

    return app


def test_the_yielded_dict_is_the_request_state(backend: str) -> None:
    with TestClient(state_app(), backend=backend) as client:
        assert client.get("/").json() == {"attr": "p-1", "item": 3, "has": True}
        with client.websocket_connect("/ws") as session:
            assert session.receive_json() == {"attr": "p-1", "item": 3}


@pytest.mark.anyio
async def test_the_yielded_dict_goes_into_the_server_lifespan_state() -> None:
    app = state_app()
    state: dict[str, Any] = {"server": "own"}
    async with lifespan_server(app, state) as server:
        assert await server.event("startup") == {"type": "lifespan.startup.complete"}
        assert state == {"server": "own", "pool": "p-1", "limit": 3}
        response = await http_get(app, "/", state)
        assert response == {"status": 200, "body": b'{"attr":"p-1","item":3,"has":true}'}
        assert await server.event("shutdown") == {"type": "lifespan.shutdown.complete"}


@pytest.mark.anyio
async def test_without_a_server_state_the_app_keeps_the_dict() -> None:
    app = state_app()
    async with lifespan_server(app, state=None) as server:
        assert await server.event("startup") == {"type": "lifespan.startup.complete"}
        for _ in range(2):
            response = await http_get(app, "/", state=None)
            assert response == {"status": 200, "body": b'{"attr":"p-1","item":3,"has":true}'}
        assert await server.event("shutdown") == {"type": "lifespan.shutdown.complete"}


@pytest.mark.anyio
async def test_a_lifespan_that_yields_nothing_leaves_the_state_empty() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield

    app = App(lifespan=lifespan)

    @app.get("/")
    async def index(req: Request) -> dict[str, int]:
        return {"size": len(req.state)}

    state: dict[str, Any] = {}
    async with lifespan_server(app, state) as server:
        assert await server.event("startup") == {"type": "lifespan.startup.complete"}
        assert await http_get(app, "/", state) == {"status": 200, "body": b'{"size":0}'}
        assert await server.event("shutdown") == {"type": "lifespan.shutdown.complete"}


# -- failures --------------------------------------------------------------------------


def failing_app(log: list[str], fail_at: str) -> App:
    """Every lifespan step logs itself; the one named ``fail_at`` raises."""

    def step(name: str) -> None:
        log.append(name)
        if name == fail_at:
            raise RuntimeError(f"{name} broke")

    class Hooks:
        def process_startup(self, scope: Scope, event: Message) -> None:
            step("process_startup")

        async def process_shutdown(self, scope: Scope, event: Message) -> None:
            step("process_shutdown")

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        step("lifespan enter")
        yield {}
        step("lifespan exit")

    app = App(middleware=[Hooks()], lifespan=lifespan)
    app.on_startup(lambda: step("on_startup"))
    app.on_shutdown(lambda: step("on_shutdown"))
    return app


STARTUP_STEPS = ["process_startup", "on_startup", "lifespan enter"]
SHUTDOWN_STEPS = ["lifespan exit", "on_shutdown", "process_shutdown"]


@pytest.mark.anyio
@pytest.mark.parametrize("fail_at", STARTUP_STEPS)
async def test_a_failed_startup_sends_startup_failed_with_the_text(fail_at: str) -> None:
    log: list[str] = []
    answers = await run_lifespan(failing_app(log, fail_at), state={})
    assert answers == [{"type": "lifespan.startup.failed", "message": f"{fail_at} broke"}]
    assert log == STARTUP_STEPS[: STARTUP_STEPS.index(fail_at) + 1]


@pytest.mark.anyio
@pytest.mark.parametrize("fail_at", SHUTDOWN_STEPS)
async def test_a_failed_shutdown_sends_shutdown_failed_and_runs_every_step(fail_at: str) -> None:
    log: list[str] = []
    answers = await run_lifespan(failing_app(log, fail_at), state={})
    assert answers == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.failed", "message": f"{fail_at} broke"},
    ]
    assert log == STARTUP_STEPS + SHUTDOWN_STEPS


@pytest.mark.parametrize("fail_at", STARTUP_STEPS)
def test_a_failed_startup_raises_in_the_test_client(fail_at: str, backend: str) -> None:
    client = TestClient(failing_app([], fail_at), backend=backend)
    with pytest.raises(LifespanError, match=rf"^{fail_at} broke$"), client:
        pytest.fail("the client must not start")


@pytest.mark.parametrize("fail_at", SHUTDOWN_STEPS)
def test_a_failed_shutdown_raises_in_the_test_client(fail_at: str, backend: str) -> None:
    client = TestClient(failing_app([], fail_at), backend=backend)
    with pytest.raises(LifespanError, match=rf"^{fail_at} broke$"), client:
        pass


@pytest.mark.anyio
async def test_a_lifespan_yielding_a_non_dict_fails_startup() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[list[int]]:
        yield [1]

    answers = await run_lifespan(App(lifespan=lifespan), state={})
    assert answers == [
        {
            "type": "lifespan.startup.failed",
            "message": "lifespan must yield a dict or None, got list",
        }
    ]


# -- no lifespan events: lazy startup ------------------------------------------------------


def counting_app(counts: dict[str, int], fail_first: int = 0) -> App:
    """Startup hooks that count their runs; ``on_startup`` fails the first ``fail_first`` times."""

    class Hooks:
        def process_startup(self, scope: Scope, event: Message) -> None:
            counts["process_startup"] += 1

    app = App(middleware=[Hooks()])

    @app.on_startup
    async def startup() -> None:
        counts["on_startup"] += 1
        if counts["on_startup"] <= fail_first:
            raise ConnectionError("database not ready")

    @app.get("/")
    async def index(req: Request) -> dict[str, int]:
        return dict(counts)

    @app.websocket("/ws")
    async def ws_counts(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json(counts)

    return app


def test_without_lifespan_events_startup_runs_once_before_the_first_request(
    backend: str,
) -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    client = TestClient(counting_app(counts), backend=backend)  # no `with`: no lifespan events
    assert counts == {"process_startup": 0, "on_startup": 0}
    assert client.get("/").json() == {"process_startup": 1, "on_startup": 1}
    assert client.get("/").json() == {"process_startup": 1, "on_startup": 1}
    with client.websocket_connect("/ws") as session:
        assert session.receive_json() == {"process_startup": 1, "on_startup": 1}


def test_without_lifespan_events_a_first_handshake_runs_startup(backend: str) -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    client = TestClient(counting_app(counts), backend=backend)
    with client.websocket_connect("/ws") as session:
        assert session.receive_json() == {"process_startup": 1, "on_startup": 1}
    assert client.get("/").json() == {"process_startup": 1, "on_startup": 1}


def test_with_lifespan_events_requests_do_not_run_startup_again(backend: str) -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    with TestClient(counting_app(counts), backend=backend) as client:
        assert counts == {"process_startup": 1, "on_startup": 1}
        assert client.get("/").json() == {"process_startup": 1, "on_startup": 1}


@pytest.mark.anyio
async def test_concurrent_first_requests_wait_for_one_startup() -> None:
    runs: list[str] = []
    release = anyio.Event()
    app = App()

    @app.on_startup
    async def slow_startup() -> None:
        runs.append("startup")
        await release.wait()

    @app.get("/")
    async def index(req: Request) -> str:
        runs.append("handler")
        return "ok"

    responses: list[Message] = []

    async def one_request() -> None:
        responses.append(await http_get(app, "/"))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one_request)
            await anyio.wait_all_tasks_blocked()
            assert runs == ["startup"]
            assert responses == []
            release.set()
    assert runs == ["startup", "handler", "handler", "handler"]
    assert responses == [{"status": 200, "body": b"ok"}] * 3


def test_a_failed_lazy_startup_answers_500_and_the_next_request_retries(backend: str) -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    client = TestClient(
        counting_app(counts, fail_first=1), backend=backend, raise_server_exceptions=False
    )
    failed = client.get("/")
    assert failed.status == 500
    assert failed.body == INTERNAL_ERROR
    assert b"database" not in failed.body
    assert client.get("/").json() == {"process_startup": 2, "on_startup": 2}
    assert client.get("/").json() == {"process_startup": 2, "on_startup": 2}


def test_a_failed_lazy_startup_denies_the_handshake_500_and_the_next_retries(
    backend: str,
) -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    client = TestClient(
        counting_app(counts, fail_first=1), backend=backend, raise_server_exceptions=False
    )
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/ws")
    assert denied.value.status == 500
    assert denied.value.body == INTERNAL_ERROR
    with client.websocket_connect("/ws") as session:
        assert session.receive_json() == {"process_startup": 2, "on_startup": 2}


def test_a_failed_lazy_startup_reraises_in_the_test_by_default(backend: str) -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    client = TestClient(counting_app(counts, fail_first=1), backend=backend)
    with pytest.raises(ConnectionError, match=r"^database not ready$"):
        client.get("/")
    assert client.get("/").json() == {"process_startup": 2, "on_startup": 2}


@pytest.mark.anyio
async def test_a_failed_lazy_startup_over_raw_asgi() -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    app = counting_app(counts, fail_first=2)
    assert await http_get(app, "/") == {"status": 500, "body": INTERNAL_ERROR}
    assert await http_get(app, "/") == {"status": 500, "body": INTERNAL_ERROR}
    assert await http_get(app, "/") == {
        "status": 200,
        "body": b'{"process_startup":3,"on_startup":3}',
    }


def test_without_lifespan_events_the_lifespan_cm_is_not_entered_and_a_warning_logged_once(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    entered: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        entered.append("entered")
        yield {"pool": "p"}

    app = App(lifespan=lifespan)
    started: list[str] = []
    app.on_startup(lambda: started.append("on_startup"))

    @app.get("/")
    async def index(req: Request) -> dict[str, Any]:
        return {"pool": req.state.get("pool")}

    client = TestClient(app, backend=backend)
    with caplog.at_level(logging.WARNING, logger="tinyws"):
        assert client.get("/").json() == {"pool": None}
        assert client.get("/").json() == {"pool": None}
    assert entered == []
    assert started == ["on_startup"]
    warnings = [r for r in caplog.records if r.name == "tinyws" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "lifespan" in warnings[0].getMessage()


def test_no_warning_without_a_lifespan_cm(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    with caplog.at_level(logging.WARNING, logger="tinyws"):
        TestClient(counting_app(counts), backend=backend).get("/")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.anyio
async def test_lazy_startup_passes_a_lifespan_scope_and_startup_event() -> None:
    seen: list[tuple[str, str]] = []

    class Hooks:
        def process_startup(self, scope: Scope, event: Message) -> None:
            seen.append((scope["type"], event["type"]))

    app = App(middleware=[Hooks()])

    @app.get("/")
    async def index(req: Request) -> str:
        return "ok"

    assert await http_get(app, "/") == {"status": 200, "body": b"ok"}
    assert seen == [("lifespan", "lifespan.startup")]


@pytest.mark.parametrize(("first", "then"), [("asyncio", "trio"), ("trio", "asyncio")])
def test_a_retry_after_a_failed_lazy_startup_may_run_on_another_event_loop(
    first: str, then: str
) -> None:
    counts = {"process_startup": 0, "on_startup": 0}
    app = counting_app(counts, fail_first=1)
    assert TestClient(app, backend=first, raise_server_exceptions=False).get("/").status == 500
    response = TestClient(app, backend=then, raise_server_exceptions=False).get("/")
    assert response.json() == {"process_startup": 2, "on_startup": 2}
