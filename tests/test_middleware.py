"""SPEC section 5: the middleware chain, hook by hook, through the test client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tinyws import App, HTTPError, Request, Response, WebSocket, WebSocketDisconnect
from tinyws.denial import DenialMode
from tinyws.testing import TestClient, WebSocketDenied
from tinyws.types import Message, Scope

Resource = Callable[..., Any] | None
INTERNAL_ERROR = b'{"title":"Internal Server Error"}'


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


class SyncRecorder:
    """A middleware with all seven hooks, as plain functions, logging each call."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def process_startup(self, scope: Scope, event: Message) -> None:
        self.log.append(f"{self.name}.startup {scope['type']} {event['type']}")

    def process_shutdown(self, scope: Scope, event: Message) -> None:
        self.log.append(f"{self.name}.shutdown {scope['type']} {event['type']}")

    def process_request(self, req: Request, resp: Response) -> None:
        self.log.append(f"{self.name}.request")

    def process_resource(
        self, req: Request, resp: Response, resource: Resource, params: dict[str, Any]
    ) -> None:
        self.log.append(f"{self.name}.resource")

    def process_response(
        self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
    ) -> None:
        self.log.append(f"{self.name}.response {req_succeeded}")

    def process_request_ws(self, req: Request, ws: WebSocket) -> None:
        self.log.append(f"{self.name}.request_ws")

    def process_resource_ws(
        self, req: Request, ws: WebSocket, resource: Resource, params: dict[str, Any]
    ) -> None:
        self.log.append(f"{self.name}.resource_ws")


class AsyncRecorder:
    """The same seven hooks as coroutines."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def process_startup(self, scope: Scope, event: Message) -> None:
        self.log.append(f"{self.name}.startup {scope['type']} {event['type']}")

    async def process_shutdown(self, scope: Scope, event: Message) -> None:
        self.log.append(f"{self.name}.shutdown {scope['type']} {event['type']}")

    async def process_request(self, req: Request, resp: Response) -> None:
        self.log.append(f"{self.name}.request")

    async def process_resource(
        self, req: Request, resp: Response, resource: Resource, params: dict[str, Any]
    ) -> None:
        self.log.append(f"{self.name}.resource")

    async def process_response(
        self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
    ) -> None:
        self.log.append(f"{self.name}.response {req_succeeded}")

    async def process_request_ws(self, req: Request, ws: WebSocket) -> None:
        self.log.append(f"{self.name}.request_ws")

    async def process_resource_ws(
        self, req: Request, ws: WebSocket, resource: Resource, params: dict[str, Any]
    ) -> None:
        self.log.append(f"{self.name}.resource_ws")


Recorder = type[SyncRecorder] | type[AsyncRecorder]
KINDS = [
    pytest.param((SyncRecorder, SyncRecorder, SyncRecorder), id="sync"),
    pytest.param((AsyncRecorder, AsyncRecorder, AsyncRecorder), id="async"),
    pytest.param((SyncRecorder, AsyncRecorder, SyncRecorder), id="mixed"),
]


def without_startup(log: list[str]) -> list[str]:
    """The log without the startup hooks that the first request runs (no lifespan events)."""
    return [entry for entry in log if ".startup " not in entry]


def recorded_app(kinds: tuple[Recorder, ...], log: list[str]) -> App:
    app = App(middleware=[kind(name, log) for kind, name in zip(kinds, "abc", strict=False)])

    @app.get("/items/{n:int}")
    async def item(req: Request, n: int) -> dict[str, int]:
        log.append(f"handler {n}")
        return {"n": n}

    @app.websocket("/ws/{room}", guard=lambda req: log.append("guard"))
    async def room(ws: WebSocket, room: str) -> None:
        log.append(f"handler {room}")
        await ws.accept()
        await ws.send_text(room)

    return app


# -- call orders ---------------------------------------------------------------


@pytest.mark.parametrize("kinds", KINDS)
def test_http_hooks_run_in_falcon_order(kinds: tuple[Recorder, ...], backend: str) -> None:
    log: list[str] = []
    client = TestClient(recorded_app(kinds, log), backend=backend)
    response = client.get("/items/7")
    assert response.status == 200
    assert response.json() == {"n": 7}
    assert without_startup(log) == [
        "a.request",
        "b.request",
        "c.request",
        "a.resource",
        "b.resource",
        "c.resource",
        "handler 7",
        "c.response True",
        "b.response True",
        "a.response True",
    ]


@pytest.mark.parametrize("kinds", KINDS)
def test_websocket_hooks_run_in_order_before_guards_and_handler(
    kinds: tuple[Recorder, ...], backend: str
) -> None:
    log: list[str] = []
    client = TestClient(recorded_app(kinds, log), backend=backend)
    with client.websocket_connect("/ws/lobby") as session:
        assert session.receive_text() == "lobby"
    assert without_startup(log) == [
        "a.request_ws",
        "b.request_ws",
        "c.request_ws",
        "a.resource_ws",
        "b.resource_ws",
        "c.resource_ws",
        "guard",
        "handler lobby",
    ]


@pytest.mark.parametrize("kinds", KINDS)
def test_startup_in_list_order_and_shutdown_in_reverse(
    kinds: tuple[Recorder, ...], backend: str
) -> None:
    log: list[str] = []
    with TestClient(recorded_app(kinds, log), backend=backend):
        assert log == [
            "a.startup lifespan lifespan.startup",
            "b.startup lifespan lifespan.startup",
            "c.startup lifespan lifespan.startup",
        ]
    assert log[3:] == [
        "c.shutdown lifespan lifespan.shutdown",
        "b.shutdown lifespan lifespan.shutdown",
        "a.shutdown lifespan lifespan.shutdown",
    ]


def test_http_request_runs_no_websocket_hooks_and_back(backend: str) -> None:
    log: list[str] = []
    client = TestClient(recorded_app((SyncRecorder,), log), backend=backend)
    client.get("/items/1")
    assert log == [
        "a.startup lifespan lifespan.startup",
        "a.request",
        "a.resource",
        "handler 1",
        "a.response True",
    ]
    log.clear()
    with client.websocket_connect("/ws/x") as session:
        assert session.receive_text() == "x"
    assert log == ["a.request_ws", "a.resource_ws", "guard", "handler x"]


def test_missing_hooks_are_skipped_in_the_stack(backend: str) -> None:
    log: list[str] = []

    class OnlyRequest:
        def process_request(self, req: Request, resp: Response) -> None:
            log.append("b.request")

    class OnlyResponse:
        async def process_response(
            self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
        ) -> None:
            log.append("c.response")

    app = App(middleware=[SyncRecorder("a", log), OnlyRequest(), OnlyResponse()])

    @app.get("/")
    def index(req: Request) -> str:
        log.append("handler")
        return "hi"

    assert TestClient(app, backend=backend).get("/").text == "hi"
    assert without_startup(log) == [
        "a.request",
        "b.request",
        "a.resource",
        "handler",
        "c.response",
        "a.response True",
    ]


# -- resource and params ---------------------------------------------------------


def test_process_resource_gets_the_handler_and_converted_params(backend: str) -> None:
    seen: list[tuple[object, dict[str, Any]]] = []
    responded: list[object] = []

    class Spy:
        def process_resource(
            self, req: Request, resp: Response, resource: Resource, params: dict[str, Any]
        ) -> None:
            seen.append((resource, dict(params)))

        def process_response(
            self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
        ) -> None:
            responded.append(resource)

    app = App(middleware=[Spy()])

    @app.get("/rooms/{room}/{n:int}")
    async def room(req: Request, room: str, n: int) -> dict[str, Any]:
        return {"room": room, "n": n}

    response = TestClient(app, backend=backend).get("/rooms/blue/12")
    assert response.json() == {"room": "blue", "n": 12}
    assert seen == [(room, {"room": "blue", "n": 12})]
    assert responded == [room]


@pytest.mark.parametrize(
    ("method", "status", "allow"), [("GET", 404, None), ("DELETE", 405, "GET, POST")]
)
def test_process_resource_gets_none_when_no_route_matched(
    method: str, status: int, allow: str | None, backend: str
) -> None:
    seen: list[tuple[object, dict[str, Any], bool]] = []

    class Spy:
        def process_resource(
            self, req: Request, resp: Response, resource: Resource, params: dict[str, Any]
        ) -> None:
            seen.append((resource, dict(params), True))

        def process_response(
            self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
        ) -> None:
            seen.append((resource, {}, req_succeeded))

    app = App(middleware=[Spy()])

    @app.route("/known", methods=["GET", "POST"])
    async def known(req: Request) -> str:
        return "known"

    path = "/unknown" if status == 404 else "/known"
    response = TestClient(app, backend=backend).request(method, path)
    assert response.status == status
    assert response.headers.get("allow") == allow
    assert seen == [(None, {}, True), (None, {}, False)]


def test_process_resource_may_change_the_params_the_handler_gets(backend: str) -> None:
    class Rewrite:
        def process_resource(
            self, req: Request, resp: Response, resource: Resource, params: dict[str, Any]
        ) -> None:
            params["n"] = params["n"] * 10
            params["extra"] = "added"

    app = App(middleware=[Rewrite()])

    @app.get("/n/{n:int}")
    async def show(req: Request, n: int, extra: str) -> dict[str, Any]:
        return {"n": n, "extra": extra}

    assert TestClient(app, backend=backend).get("/n/4").json() == {"n": 40, "extra": "added"}


def test_process_resource_ws_gets_the_handler_and_may_change_params(backend: str) -> None:
    seen: list[tuple[object, dict[str, Any]]] = []

    class Rewrite:
        async def process_resource_ws(
            self, req: Request, ws: WebSocket, resource: Resource, params: dict[str, Any]
        ) -> None:
            seen.append((resource, dict(params)))
            params["room"] = params["room"].upper()
            params["n"] += 1

    app = App(middleware=[Rewrite()])

    @app.websocket("/rooms/{room}/{n:int}")
    async def room(ws: WebSocket, room: str, n: int) -> None:
        await ws.accept()
        await ws.send_json({"room": room, "n": n, "params": ws.params})

    with TestClient(app, backend=backend).websocket_connect("/rooms/red/1") as session:
        assert session.receive_json() == {
            "room": "RED",
            "n": 2,
            "params": {"room": "RED", "n": 2},
        }
    assert seen == [(room, {"room": "red", "n": 1})]


def test_unknown_websocket_path_is_denied_404_before_process_resource_ws(backend: str) -> None:
    log: list[str] = []
    client = TestClient(recorded_app((AsyncRecorder,), log), backend=backend)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/nowhere")
    assert denied.value.status == 404
    assert denied.value.json() == {"title": "Not Found"}
    assert log[-1:] == ["a.request_ws"]


# -- resp.complete -----------------------------------------------------------------


class Cache:
    """Answers every request itself in ``process_request``."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def process_request(self, req: Request, resp: Response) -> None:
        self.log.append("cache.request")
        resp.status = 203
        resp.body = "from cache"
        resp.headers["x-cache"] = "hit"
        resp.complete = True

    def process_response(
        self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
    ) -> None:
        self.log.append(f"cache.response {req_succeeded} {resource}")


@pytest.mark.parametrize("path", ["/items/3", "/no/such/route"])
def test_complete_in_process_request_skips_routing_and_handler(path: str, backend: str) -> None:
    log: list[str] = []
    app = App(middleware=[SyncRecorder("a", log), Cache(log), AsyncRecorder("c", log)])

    @app.get("/items/{n:int}")
    async def item(req: Request, n: int) -> str:
        log.append("handler")
        return "fresh"

    response = TestClient(app, backend=backend).get(path)
    assert response.status == 203
    assert response.body == b"from cache"
    assert response.headers["x-cache"] == "hit"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "10"
    # The rest of the request side is skipped (as in Falcon); process_response runs for
    # every middleware the request reached, in reverse order.
    assert without_startup(log) == [
        "a.request",
        "cache.request",
        "cache.response True None",
        "a.response True",
    ]


@pytest.mark.parametrize("path", ["/items/3", "/no/such/route"])
def test_complete_in_process_resource_skips_the_handler(path: str, backend: str) -> None:
    log: list[str] = []

    class Short:
        async def process_resource(
            self, req: Request, resp: Response, resource: Resource, params: dict[str, Any]
        ) -> None:
            log.append("short.resource")
            resp.body = b"short"
            resp.complete = True

    app = App(middleware=[SyncRecorder("a", log), Short(), SyncRecorder("c", log)])

    @app.get("/items/{n:int}")
    async def item(req: Request, n: int) -> str:
        log.append("handler")
        return "fresh"

    response = TestClient(app, backend=backend).get(path)
    assert response.status == 200
    assert response.body == b"short"
    assert response.headers["content-type"] == "application/octet-stream"
    assert without_startup(log) == [
        "a.request",
        "c.request",
        "a.resource",
        "short.resource",
        "c.response True",
        "a.response True",
    ]
    assert "handler" not in log
    assert "c.resource" not in log


# -- errors in hooks -----------------------------------------------------------------


class Failing:
    """Records its hooks and raises ``error`` from the one named ``hook``."""

    def __init__(self, name: str, log: list[str], hook: str, error: Exception) -> None:
        self.name = name
        self.log = log
        self.hook = hook
        self.error = error

    def _hit(self, hook: str, note: str = "") -> None:
        self.log.append(f"{self.name}.{hook}{note}")
        if hook == self.hook:
            raise self.error

    def process_request(self, req: Request, resp: Response) -> None:
        self._hit("request")

    async def process_resource(
        self, req: Request, resp: Response, resource: Resource, params: dict[str, Any]
    ) -> None:
        self._hit("resource")

    def process_response(
        self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
    ) -> None:
        self._hit("response", f" {req_succeeded} {resp.status}")

    async def process_request_ws(self, req: Request, ws: WebSocket) -> None:
        self._hit("request_ws")

    def process_resource_ws(
        self, req: Request, ws: WebSocket, resource: Resource, params: dict[str, Any]
    ) -> None:
        self._hit("resource_ws")


def failing_app(
    log: list[str], hook: str, error: Exception, position: int = 1, denial: DenialMode = "http"
) -> App:
    """Three middleware ``a``, ``b``, ``c``; the one at ``position`` raises in ``hook``."""
    middleware = [
        Failing(name, log, hook if i == position else "", error) for i, name in enumerate("abc")
    ]
    app = App(middleware=middleware, denial=denial)

    @app.get("/")
    async def index(req: Request) -> str:
        log.append("handler")
        return "ok"

    @app.websocket("/ws")
    async def ws_handler(ws: WebSocket) -> None:
        log.append("ws handler")
        await ws.accept()
        await ws.send_text("ok")

    return app


@pytest.mark.parametrize("k", [1, 2, 3])
def test_process_request_raising_at_k_responds_for_1_to_k(k: int, backend: str) -> None:
    log: list[str] = []
    app = failing_app(log, "request", HTTPError(401, "Who are you"), position=k - 1)
    response = TestClient(app, backend=backend).get("/")
    assert response.status == 401
    assert response.json() == {"title": "Who are you"}
    expected = [f"{name}.request" for name in "abc"[:k]]
    expected += [f"{name}.response False 401" for name in reversed("abc"[:k])]
    assert log == expected


@pytest.mark.parametrize("k", [1, 2, 3])
def test_process_request_crashing_at_k_responds_for_1_to_k(k: int, backend: str) -> None:
    log: list[str] = []
    app = failing_app(log, "request", RuntimeError("secret detail"), position=k - 1)
    client = TestClient(app, backend=backend, raise_server_exceptions=False)
    response = client.get("/")
    assert response.status == 500
    assert response.body == INTERNAL_ERROR
    expected = [f"{name}.request" for name in "abc"[:k]]
    expected += [f"{name}.response False 500" for name in reversed("abc"[:k])]
    assert log == expected


def test_process_response_is_reached_by_position_not_by_hook(backend: str) -> None:
    """Middleware without ``process_request`` before the k-th still count as reached."""
    log: list[str] = []

    class ResponseOnly:
        def __init__(self, name: str) -> None:
            self.name = name

        def process_response(
            self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
        ) -> None:
            log.append(f"{self.name}.response {req_succeeded}")

    failing = Failing("b", log, "request", HTTPError(409))
    app = App(middleware=[ResponseOnly("a"), failing, ResponseOnly("c")])

    @app.get("/")
    async def index(req: Request) -> str:
        return "ok"

    response = TestClient(app, backend=backend).get("/")
    assert response.status == 409
    assert log == ["b.request", "b.response False 409", "a.response False"]


HTTP_HOOKS = ["request", "resource", "response"]


@pytest.mark.parametrize("hook", HTTP_HOOKS)
def test_http_error_in_any_http_hook_is_the_response(hook: str, backend: str) -> None:
    log: list[str] = []
    error = HTTPError(418, "Teapot", "short and stout", headers={"X-Why": "because"})
    response = TestClient(failing_app(log, hook, error), backend=backend).get("/")
    assert response.status == 418
    assert response.headers["x-why"] == "because"
    assert response.headers["content-type"] == "application/json"
    assert response.body == b'{"title":"Teapot","description":"short and stout"}'
    assert response.headers["content-length"] == str(len(response.body))
    assert ("handler" in log) is (hook == "response")


@pytest.mark.parametrize("hook", HTTP_HOOKS)
def test_crash_in_any_http_hook_is_a_generic_500(hook: str, backend: str) -> None:
    log: list[str] = []
    app = failing_app(log, hook, RuntimeError("db password is hunter2"))
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.status == 500
    assert response.headers["content-type"] == "application/json"
    assert response.body == INTERNAL_ERROR
    assert b"hunter2" not in response.body
    assert b"Traceback" not in response.body


@pytest.mark.parametrize("hook", HTTP_HOOKS)
def test_crash_in_any_http_hook_reraises_in_the_test_by_default(hook: str, backend: str) -> None:
    app = failing_app([], hook, RuntimeError("boom in " + hook))
    with pytest.raises(RuntimeError, match=rf"^boom in {hook}$"):
        TestClient(app, backend=backend).get("/")


@pytest.mark.parametrize("hook", ["request_ws", "resource_ws"])
def test_http_error_in_websocket_hooks_is_the_denial(hook: str, backend: str) -> None:
    log: list[str] = []
    error = HTTPError(451, "Blocked", "not here", headers={"X-Reason": "law"})
    client = TestClient(failing_app(log, hook, error), backend=backend)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/ws")
    assert denied.value.status == 451
    assert denied.value.headers["x-reason"] == "law"
    assert denied.value.headers["content-type"] == "application/json"
    assert denied.value.json() == {"title": "Blocked", "description": "not here"}
    assert "ws handler" not in log


@pytest.mark.parametrize("hook", ["request_ws", "resource_ws"])
def test_crash_in_websocket_hooks_is_a_generic_500_denial(hook: str, backend: str) -> None:
    app = failing_app([], hook, ValueError("token table corrupted"))
    client = TestClient(app, backend=backend, raise_server_exceptions=False)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/ws")
    assert denied.value.status == 500
    assert denied.value.body == INTERNAL_ERROR
    assert b"corrupted" not in denied.value.body


@pytest.mark.parametrize("hook", ["request_ws", "resource_ws"])
def test_crash_in_websocket_hooks_reraises_in_the_test_by_default(hook: str, backend: str) -> None:
    app = failing_app([], hook, ValueError("ws boom"))
    with pytest.raises(ValueError, match=r"^ws boom$"):
        TestClient(app, backend=backend).websocket_connect("/ws")


@pytest.mark.parametrize("hook", ["request_ws", "resource_ws"])
def test_http_error_in_websocket_hooks_in_close_mode(hook: str, backend: str) -> None:
    app = failing_app([], hook, HTTPError(401, "Log in first"), denial="close")
    client = TestClient(app, backend=backend)
    with client.websocket_connect("/ws") as session, pytest.raises(WebSocketDisconnect) as closed:
        session.receive_text()
    assert closed.value.code == 4401
    assert closed.value.reason == "Log in first"


@pytest.mark.parametrize("position", [0, 1, 2])
def test_crash_in_process_response_still_runs_the_others(position: int, backend: str) -> None:
    log: list[str] = []
    app = failing_app(log, "response", RuntimeError("late"), position=position)
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.status == 500
    assert response.body == INTERNAL_ERROR
    failed_at = "abc"[position]
    expected = []
    ok = True
    for name in "cba":
        expected.append(f"{name}.response {ok} {200 if ok else 500}")
        if name == failed_at:
            ok = False
    assert log[-3:] == expected


def test_http_error_in_process_response_is_seen_by_outer_middleware(backend: str) -> None:
    log: list[str] = []
    app = failing_app(log, "response", HTTPError(503, headers={"Retry-After": "9"}), position=2)
    response = TestClient(app, backend=backend).get("/")
    assert response.status == 503
    assert response.headers["retry-after"] == "9"
    assert response.json() == {"title": "Service Unavailable"}
    assert log[-3:] == ["c.response True 200", "b.response False 503", "a.response False 503"]


def test_handler_error_reaches_every_process_response(backend: str) -> None:
    log: list[str] = []
    app = App(middleware=[SyncRecorder("a", log), AsyncRecorder("b", log)])

    @app.get("/")
    async def index(req: Request) -> str:
        raise HTTPError(404, "No such thing")

    response = TestClient(app, backend=backend).get("/")
    assert response.status == 404
    assert response.json() == {"title": "No such thing"}
    assert log[-2:] == ["b.response False", "a.response False"]


# -- the response and the context ------------------------------------------------------


def test_process_response_may_change_the_response(backend: str) -> None:
    class Stamp:
        def process_response(
            self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
        ) -> None:
            resp.headers["x-stamp"] = f"{resp.status}"
            resp.body = resp.body + b"!"

    app = App(middleware=[Stamp()])

    @app.get("/")
    async def index(req: Request) -> bytes:
        return b"hello"

    response = TestClient(app, backend=backend).get("/")
    assert response.body == b"hello!"
    assert response.headers["x-stamp"] == "200"
    assert response.headers["content-length"] == "6"
    missing = TestClient(app, backend=backend).get("/missing")
    assert missing.status == 404
    assert missing.headers["x-stamp"] == "404"
    assert missing.body == b'{"title":"Not Found"}!'


def test_headers_set_in_process_request_survive_the_handler_response(backend: str) -> None:
    class RequestId:
        def process_request(self, req: Request, resp: Response) -> None:
            resp.headers["x-request-id"] = "r-1"
            resp.headers["x-clash"] = "middleware"

    app = App(middleware=[RequestId()])

    @app.get("/")
    async def index(req: Request) -> Response:
        return Response.text("hi", headers={"x-clash": "handler"})

    client = TestClient(app, backend=backend)
    response = client.get("/")
    assert response.text == "hi"
    assert response.headers["x-request-id"] == "r-1"
    assert response.headers.getall("x-clash") == ["handler"]
    assert client.get("/missing").headers["x-request-id"] == "r-1"


def test_context_is_shared_by_middleware_and_handler(backend: str) -> None:
    class Trace:
        def process_request(self, req: Request, resp: Response) -> None:
            req.context.trace = "t-1"

        async def process_resource(
            self, req: Request, resp: Response, resource: Resource, params: dict[str, Any]
        ) -> None:
            req.context["seen_by_resource"] = req.context.trace

        def process_response(
            self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
        ) -> None:
            resp.headers["x-handler-said"] = req.context.handler_said

    app = App(middleware=[Trace()])

    @app.get("/")
    def index(req: Request) -> dict[str, Any]:  # plain def: runs in a worker thread
        req.context.handler_said = "hello"
        return {"trace": req.context.trace, "resource": req.context.seen_by_resource}

    response = TestClient(app, backend=backend).get("/")
    assert response.json() == {"trace": "t-1", "resource": "t-1"}
    assert response.headers["x-handler-said"] == "hello"


def test_context_is_shared_by_ws_middleware_guards_and_handler(backend: str) -> None:
    class Trace:
        def process_request_ws(self, req: Request, ws: WebSocket) -> None:
            assert ws.request is req
            req.context.trace = "t-ws"

        async def process_resource_ws(
            self, req: Request, ws: WebSocket, resource: Resource, params: dict[str, Any]
        ) -> None:
            ws.context.resource = "seen"

    def guard(req: Request) -> None:
        req.context.guard = req.context.trace + "+guard"

    app = App(middleware=[Trace()])

    @app.websocket("/ws", guard=guard)
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json(
            {
                "same": ws.context is ws.request.context,
                "trace": ws.context.trace,
                "resource": ws.context["resource"],
                "guard": ws.context.guard,
            }
        )

    with TestClient(app, backend=backend).websocket_connect("/ws") as session:
        assert session.receive_json() == {
            "same": True,
            "trace": "t-ws",
            "resource": "seen",
            "guard": "t-ws+guard",
        }


def test_context_is_fresh_for_every_request(backend: str) -> None:
    class Count:
        def process_request(self, req: Request, resp: Response) -> None:
            req.context.hits = req.context.get("hits", 0) + 1

    app = App(middleware=[Count()])

    @app.get("/")
    async def index(req: Request) -> dict[str, int]:
        return {"hits": req.context.hits}

    client = TestClient(app, backend=backend)
    assert [client.get("/").json() for _ in range(2)] == [{"hits": 1}, {"hits": 1}]


# -- validation ----------------------------------------------------------------------


def test_a_middleware_class_instead_of_an_instance_is_refused() -> None:
    with pytest.raises(TypeError, match="SyncRecorder is a class: pass an instance"):
        App(middleware=[SyncRecorder])


@pytest.mark.parametrize("item", [object(), "process_request", len])
def test_a_middleware_with_no_hook_is_refused(item: object) -> None:
    with pytest.raises(TypeError, match="defines none of the hooks"):
        App(middleware=[item])


def test_a_misspelt_hook_counts_as_no_hook() -> None:
    class Typo:
        def process_requests(self, req: Request, resp: Response) -> None:
            pass

    with pytest.raises(TypeError, match="defines none of the hooks"):
        App(middleware=[Typo()])


def test_a_hook_that_is_not_callable_is_refused() -> None:
    class Broken:
        process_request = "not a function"

        def process_response(
            self, req: Request, resp: Response, resource: Resource, req_succeeded: bool
        ) -> None:
            pass

    with pytest.raises(TypeError, match="process_request"):
        App(middleware=[Broken()])


@pytest.mark.parametrize("hook", ["process_request_ws", "process_resource_ws"])
def test_a_ws_hook_that_denies_ends_the_handshake_there(hook: str, backend: str) -> None:
    log: list[str] = []

    async def deny(ws: WebSocket) -> None:
        log.append(hook)
        await ws.deny(Response.json({"error": "maintenance"}, 503, {"Retry-After": "60"}))

    class Deny:
        async def process_request_ws(self, req: Request, ws: WebSocket) -> None:
            if hook == "process_request_ws":
                await deny(ws)

        async def process_resource_ws(
            self, req: Request, ws: WebSocket, resource: Resource, params: dict[str, Any]
        ) -> None:
            if hook == "process_resource_ws":
                await deny(ws)

    app = App(middleware=[Deny(), SyncRecorder("later", log)])

    @app.websocket("/ws", guard=lambda req: log.append("guard"))
    async def handler(ws: WebSocket) -> None:
        log.append("handler")
        await ws.accept()

    with pytest.raises(WebSocketDenied) as denied:
        TestClient(app, backend=backend).websocket_connect("/ws")
    assert denied.value.status == 503
    assert denied.value.headers["retry-after"] == "60"
    assert denied.value.json() == {"error": "maintenance"}
    # Nothing after the denial runs: not the guard, and above all not the handler.
    assert "guard" not in log
    assert "handler" not in log
    assert without_startup(log)[-1] == hook
