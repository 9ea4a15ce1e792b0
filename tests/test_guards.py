"""SPEC section 4, step 4: route guards, and the built-in guards of ``tinyws.guards``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tinyws import App, HTTPError, Request, Response, WebSocket, WebSocketDisconnect
from tinyws.denial import DenialMode
from tinyws.guards import Guard, allow_origins, bearer_token
from tinyws.testing import TestClient, WebSocketDenied

INTERNAL_ERROR = b'{"title":"Internal Server Error"}'


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def guarded_app(
    guard: Guard | list[Guard], log: list[str] | None = None, denial: DenialMode = "http"
) -> App:
    """One route, ``/ws``, that greets with ``hello`` and the user the guards found."""
    app = App(denial=denial)

    @app.websocket("/ws", guard=guard)
    async def handler(ws: WebSocket) -> None:
        if log is not None:
            log.append("handler")
        await ws.accept()
        await ws.send_json({"hello": ws.context.get("user")})

    return app


def denial_of(app: App, backend: str, **kwargs: Any) -> WebSocketDenied:
    client = TestClient(app, backend=backend, raise_server_exceptions=False)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/ws", **kwargs)
    return denied.value


def greeting(app: App, backend: str, **kwargs: Any) -> Any:
    with TestClient(app, backend=backend).websocket_connect("/ws", **kwargs) as session:
        return session.receive_json()


# -- what a guard may answer ------------------------------------------------------------


@pytest.mark.parametrize("verdict", [None, True])
def test_none_and_true_let_the_handshake_through(verdict: bool | None, backend: str) -> None:
    def sync_guard(req: Request) -> bool | None:
        return verdict

    async def async_guard(req: Request) -> bool | None:
        return verdict

    assert greeting(guarded_app(sync_guard), backend) == {"hello": None}
    assert greeting(guarded_app(async_guard), backend) == {"hello": None}
    assert greeting(guarded_app([sync_guard, async_guard]), backend) == {"hello": None}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_false_denies_403(is_async: bool, backend: str) -> None:
    log: list[str] = []

    def sync_guard(req: Request) -> bool:
        return False

    async def async_guard(req: Request) -> bool:
        return False

    denied = denial_of(guarded_app(async_guard if is_async else sync_guard, log), backend)
    assert denied.status == 403
    assert denied.headers["content-type"] == "application/json"
    assert denied.json() == {"title": "Forbidden"}
    assert log == []


def test_guards_run_in_order_and_stop_at_the_first_denial(backend: str) -> None:
    log: list[str] = []

    def first(req: Request) -> None:
        log.append("first")

    async def second(req: Request) -> bool:
        log.append("second")
        return True

    def third(req: Request) -> bool:
        log.append("third")
        return False

    async def fourth(req: Request) -> None:
        log.append("fourth")

    denied = denial_of(guarded_app([first, second, third, fourth], log), backend)
    assert denied.status == 403
    assert log == ["first", "second", "third"]


def test_all_guards_pass_in_order_before_the_handler(backend: str) -> None:
    log: list[str] = []

    def make(name: str, is_async: bool) -> Guard:
        def sync_guard(req: Request) -> None:
            log.append(name)

        async def async_guard(req: Request) -> None:
            log.append(name)

        return async_guard if is_async else sync_guard

    guards = [make("a", False), make("b", True), make("c", True), make("d", False)]
    assert greeting(guarded_app(guards, log), backend) == {"hello": None}
    assert log == ["a", "b", "c", "d", "handler"]


@pytest.mark.parametrize(
    ("response", "status", "headers", "body"),
    [
        (
            Response("slow down", 429, {"Retry-After": "30"}),
            429,
            [
                ("retry-after", "30"),
                ("content-type", "text/plain; charset=utf-8"),
                ("content-length", "9"),
            ],
            b"slow down",
        ),
        (
            Response.json({"error": "pay first"}, 402, [("X-Price", "3")]),
            402,
            [
                ("x-price", "3"),
                ("content-type", "application/json"),
                ("content-length", "21"),
            ],
            b'{"error":"pay first"}',
        ),
        (
            Response(b"\x00\x01", 400, content_type="application/x-thing"),
            400,
            [("content-type", "application/x-thing"), ("content-length", "2")],
            b"\x00\x01",
        ),
    ],
    ids=["text", "json", "bytes"],
)
def test_a_response_is_exactly_the_denial(
    response: Response, status: int, headers: list[tuple[str, str]], body: bytes, backend: str
) -> None:
    async def guard(req: Request) -> Response:
        return response

    log: list[str] = []
    denied = denial_of(guarded_app(guard, log), backend)
    assert denied.status == status
    assert sorted(denied.headers.items()) == sorted(headers)
    assert denied.body == body
    assert log == []


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_http_error_denies_with_its_status_headers_and_body(is_async: bool, backend: str) -> None:
    error = HTTPError(401, "Token expired", "log in again", headers={"WWW-Authenticate": "Bearer"})

    def sync_guard(req: Request) -> None:
        raise error

    async def async_guard(req: Request) -> None:
        raise error

    denied = denial_of(guarded_app(async_guard if is_async else sync_guard), backend)
    assert denied.status == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert denied.headers["content-type"] == "application/json"
    assert denied.json() == {"title": "Token expired", "description": "log in again"}


@pytest.mark.parametrize("verdict", [1, 0, "yes", "", {}, [], 403, Ellipsis])
def test_any_other_return_is_a_500_denial(verdict: object, backend: str) -> None:
    log: list[str] = []
    denied = denial_of(guarded_app(lambda req: verdict, log), backend)
    assert denied.status == 500
    assert denied.body == INTERNAL_ERROR
    assert log == []


def test_any_other_return_raises_type_error_in_the_test_by_default(backend: str) -> None:
    client = TestClient(guarded_app(lambda req: "yes"), backend=backend)
    with pytest.raises(TypeError, match="returned 'yes'"):
        client.websocket_connect("/ws")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_an_unexpected_exception_is_a_generic_500_denial(is_async: bool, backend: str) -> None:
    def sync_guard(req: Request) -> None:
        raise KeyError("the secret key table")

    async def async_guard(req: Request) -> None:
        raise KeyError("the secret key table")

    denied = denial_of(guarded_app(async_guard if is_async else sync_guard), backend)
    assert denied.status == 500
    assert denied.headers["content-type"] == "application/json"
    assert denied.body == INTERNAL_ERROR
    assert b"secret" not in denied.body
    assert b"Traceback" not in denied.body


def test_an_unexpected_exception_reraises_in_the_test_by_default(backend: str) -> None:
    def guard(req: Request) -> None:
        raise KeyError("no such key")

    with pytest.raises(KeyError, match="no such key"):
        TestClient(guarded_app(guard), backend=backend).websocket_connect("/ws")


def test_a_callable_object_is_a_guard(backend: str) -> None:
    class Quota:
        def __init__(self) -> None:
            self.left = 1

        async def __call__(self, req: Request) -> bool:
            self.left -= 1
            return self.left >= 0

    app = guarded_app(Quota())
    assert greeting(app, backend) == {"hello": None}
    assert denial_of(app, backend).status == 403


def test_guards_see_the_request_and_share_its_context(backend: str) -> None:
    def who(req: Request) -> None:
        req.context.user = req.query.get("name")

    def sees(req: Request) -> bool:
        return req.path == "/ws" and req.context.user == "ada"

    app = guarded_app([who, sees])
    assert greeting(app, backend, params={"name": "ada"}) == {"hello": "ada"}
    assert denial_of(app, backend, params={"name": "bob"}).status == 403


@pytest.mark.parametrize("guard", [42, [lambda req: None, "not callable"]])
def test_a_guard_that_is_not_callable_is_refused_at_registration(guard: Any) -> None:
    app = App()
    with pytest.raises(TypeError, match="a guard must be callable"):
        app.websocket("/ws", guard=guard)


def test_without_the_denial_extension_every_guard_denial_is_403(backend: str) -> None:
    async def guard(req: Request) -> Response:
        return Response("teapot", 418)

    client = TestClient(guarded_app(guard), backend=backend, denial_response=False)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/ws")
    assert denied.value.status == 403
    assert denied.value.body == b""


# -- denial="close": accepted, then closed with 4000 + status ----------------------------


def close_of(app: App, backend: str, **kwargs: Any) -> tuple[int, str]:
    client = TestClient(app, backend=backend, raise_server_exceptions=False)
    with client.websocket_connect("/ws", **kwargs) as session:
        with pytest.raises(WebSocketDisconnect) as closed:
            session.receive_text()
        return closed.value.code, closed.value.reason


def raise_unauthorized(req: Request) -> None:
    raise HTTPError(401, "Token expired")


def crash(req: Request) -> None:
    raise RuntimeError("guard bug")


@pytest.mark.parametrize(
    ("guard", "code", "reason"),
    [
        (lambda req: False, 4403, "Forbidden"),
        (lambda req: Response("later", 429), 4429, "Too Many Requests"),
        (raise_unauthorized, 4401, "Token expired"),
    ],
    ids=["false", "response", "http-error"],
)
def test_guard_denials_in_close_mode(guard: Guard, code: int, reason: str, backend: str) -> None:
    log: list[str] = []
    assert close_of(guarded_app(guard, log, denial="close"), backend) == (code, reason)
    assert log == []


def test_a_guard_crash_in_close_mode_is_a_500(backend: str) -> None:
    assert close_of(guarded_app(crash, denial="close"), backend) == (4500, "Internal Server Error")


def test_route_level_close_mode_overrides_the_app(backend: str) -> None:
    app = App(denial="http")

    @app.websocket("/ws", guard=lambda req: False, denial="close")
    async def handler(ws: WebSocket) -> None:
        raise AssertionError("the handler must not run")

    assert close_of(app, backend) == (4403, "Forbidden")


# -- allow_origins ------------------------------------------------------------------------

ORIGINS = ["https://app.example", "http://localhost:8000"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example",
        "http://localhost:8000",
        "HTTPS://APP.EXAMPLE",
        "Http://LocalHost:8000",
    ],
)
def test_allow_origins_lets_listed_origins_through(origin: str, backend: str) -> None:
    app = guarded_app(allow_origins(ORIGINS))
    assert greeting(app, backend, headers={"Origin": origin}) == {"hello": None}


def test_allow_origins_lets_clients_without_origin_through(backend: str) -> None:
    assert greeting(guarded_app(allow_origins(ORIGINS)), backend) == {"hello": None}


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://app.example",  # another scheme
        "https://app.example:8443",  # another port
        "http://localhost:8001",
        "https://app.example.evil.example",  # a prefix is not a match
        "https://sub.app.example",
        "https://app.example/",
        "null",
        "",
    ],
)
def test_allow_origins_denies_other_origins_403(origin: str, backend: str) -> None:
    log: list[str] = []
    denied = denial_of(
        guarded_app(allow_origins(ORIGINS), log), backend, headers={"Origin": origin}
    )
    assert denied.status == 403
    assert denied.json()["title"] == "Forbidden"
    assert log == []


def test_allow_origins_wildcard_entries_match_only_themselves(backend: str) -> None:
    app = guarded_app(allow_origins(["https://*.example", "*"]))
    assert denial_of(app, backend, headers={"Origin": "https://a.example"}).status == 403
    assert denial_of(app, backend, headers={"Origin": "http://anything"}).status == 403


def test_allow_origins_takes_any_iterable(backend: str) -> None:
    app = guarded_app(allow_origins(origin for origin in ("https://app.example",)))
    assert greeting(app, backend, headers={"Origin": "https://app.example"}) == {"hello": None}
    app = guarded_app(allow_origins(("https://app.example",)))
    assert denial_of(app, backend, headers={"Origin": "https://b.example"}).status == 403


def test_allow_origins_in_auto_mode_closes_for_browsers(backend: str) -> None:
    """A browser sends Origin, so "auto" refuses it the way browsers can read: a close code."""
    app = guarded_app(allow_origins(ORIGINS), denial="auto")
    assert close_of(app, backend, headers={"Origin": "https://evil.example"}) == (
        4403,
        "Forbidden",
    )


# -- bearer_token -----------------------------------------------------------------------------


def users(token: str) -> dict[str, str] | None:
    return {"good": {"name": "ada"}}.get(token)


async def async_users(token: str) -> dict[str, str] | None:
    return users(token)


@pytest.mark.parametrize("verify", [users, async_users], ids=["sync", "async"])
def test_bearer_token_stores_the_user_in_the_context(
    verify: Callable[[str], Any], backend: str
) -> None:
    app = guarded_app(bearer_token(verify))
    headers = {"Authorization": "Bearer good"}
    assert greeting(app, backend, headers=headers) == {"hello": {"name": "ada"}}


def test_bearer_token_passes_the_token_to_verify(backend: str) -> None:
    seen: list[str] = []

    def verify(token: str) -> bool:
        seen.append(token)
        return True

    app = guarded_app(bearer_token(verify))
    assert greeting(app, backend, headers={"Authorization": "Bearer abc.def-ghi"}) == {
        "hello": True
    }
    assert seen == ["abc.def-ghi"]


def test_bearer_token_scheme_is_case_insensitive(backend: str) -> None:
    app = guarded_app(bearer_token(users))
    headers = {"Authorization": "bearer good"}
    assert greeting(app, backend, headers=headers) == {"hello": {"name": "ada"}}


@pytest.mark.parametrize(
    "authorization",
    [
        None,  # missing
        "Basic Z29vZDpwdw==",  # wrong scheme
        "Token good",
        "good",
        "Bearer",  # empty token
        "Bearer ",
        "Bearer    ",
        "Bearer bad",  # verify says no
        "",
    ],
)
@pytest.mark.parametrize("verify", [users, async_users], ids=["sync", "async"])
def test_bearer_token_denies_401_with_a_challenge(
    authorization: str | None, verify: Callable[[str], Any], backend: str
) -> None:
    log: list[str] = []
    headers = {} if authorization is None else {"Authorization": authorization}
    denied = denial_of(guarded_app(bearer_token(verify), log), backend, headers=headers)
    assert denied.status == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert denied.headers["content-type"] == "application/json"
    assert denied.json()["title"] == "Unauthorized"
    assert log == []


@pytest.mark.parametrize("falsy", [None, False, 0, "", {}])
def test_bearer_token_denies_any_falsy_verdict(falsy: object, backend: str) -> None:
    calls: list[str] = []

    async def verify(token: str) -> object:
        calls.append(token)
        return falsy

    denied = denial_of(
        guarded_app(bearer_token(verify)), backend, headers={"Authorization": "Bearer t"}
    )
    assert denied.status == 401
    assert denied.headers["www-authenticate"] == "Bearer"
    assert calls == ["t"]


def test_bearer_token_is_not_called_without_a_token(backend: str) -> None:
    calls: list[str] = []

    def verify(token: str) -> bool:
        calls.append(token)
        return True

    assert denial_of(guarded_app(bearer_token(verify)), backend).status == 401
    assert calls == []


def test_bearer_token_in_close_mode(backend: str) -> None:
    app = guarded_app(bearer_token(users), denial="close")
    assert close_of(app, backend) == (4401, "Unauthorized")
    headers = {"Authorization": "Bearer good"}
    assert greeting(app, backend, headers=headers) == {"hello": {"name": "ada"}}


def test_a_verify_that_crashes_is_a_500_denial(backend: str) -> None:
    def verify(token: str) -> bool:
        raise ConnectionError("auth service down")

    denied = denial_of(
        guarded_app(bearer_token(verify)), backend, headers={"Authorization": "Bearer t"}
    )
    assert denied.status == 500
    assert denied.body == INTERNAL_ERROR


def test_built_in_guards_combine_in_a_list(backend: str) -> None:
    app = guarded_app([allow_origins(ORIGINS), bearer_token(users)])
    good = {"Origin": "https://app.example", "Authorization": "Bearer good"}
    assert greeting(app, backend, headers=good) == {"hello": {"name": "ada"}}
    foreign = {"Origin": "https://evil.example", "Authorization": "Bearer good"}
    assert denial_of(app, backend, headers=foreign).status == 403
    anonymous = {"Origin": "https://app.example"}
    assert denial_of(app, backend, headers=anonymous).status == 401


def test_the_user_is_the_same_object_in_ws_context(backend: str) -> None:
    app = App()

    @app.websocket("/ws", guard=bearer_token(users))
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"user": ws.context.user, "same": ws.context is ws.request.context})

    with TestClient(app, backend=backend).websocket_connect(
        "/ws", headers={"Authorization": "Bearer good"}
    ) as session:
        assert session.receive_json() == {"user": {"name": "ada"}, "same": True}


def test_bearer_token_awaits_a_verify_that_returns_an_awaitable(backend: str) -> None:
    """A plain function (a lambda, a partial) wrapping an async check must not pass every
    token just because a coroutine object is truthy."""

    def verify(token: str) -> Coroutine[Any, Any, dict[str, str] | None]:
        return async_users(token)

    app = guarded_app(bearer_token(verify))
    bad = {"Authorization": "Bearer bad"}
    assert denial_of(app, backend, headers=bad).status == 401
    good = {"Authorization": "Bearer good"}
    assert greeting(app, backend, headers=good) == {"hello": {"name": "ada"}}


def test_a_plain_guard_returning_a_coroutine_is_a_500_denial(backend: str) -> None:
    async def check(req: Request) -> bool:
        return True

    def guard(req: Request) -> Coroutine[Any, Any, bool]:
        return check(req)

    denied = denial_of(guarded_app(guard), backend)
    assert denied.status == 500
    assert denied.body == INTERNAL_ERROR


# -- bearer_token from a query parameter or a cookie (browsers cannot set headers) -------------


def browser_app() -> App:
    return guarded_app(bearer_token(users, query="token", cookie="session"))


def test_bearer_token_reads_the_query_parameter(backend: str) -> None:
    with TestClient(browser_app(), backend=backend).websocket_connect("/ws?token=good") as ws:
        assert ws.receive_json() == {"hello": {"name": "ada"}}


def test_bearer_token_reads_the_cookie(backend: str) -> None:
    client = TestClient(browser_app(), backend=backend)
    with client.websocket_connect("/ws", headers={"Cookie": "other=1; session=good"}) as ws:
        assert ws.receive_json() == {"hello": {"name": "ada"}}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ws?token=bad", {}),
        ("/ws?token=", {}),
        ("/ws", {"Cookie": "session=bad"}),
        ("/ws", {"Cookie": "session="}),
        # The header wins when present, even when the query parameter is good.
        ("/ws?token=good", {"Authorization": "Bearer bad"}),
        ("/ws?token=good", {"Authorization": "Basic Z29vZDpwdw=="}),
        ("/ws", {"Authorization": "Bearer bad", "Cookie": "session=good"}),
    ],
)
def test_bearer_token_from_query_or_cookie_denies_401(
    path: str, headers: dict[str, str], backend: str
) -> None:
    client = TestClient(browser_app(), backend=backend, raise_server_exceptions=False)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect(path, headers=headers)
    assert denied.value.status == 401
    assert denied.value.headers["www-authenticate"] == "Bearer"


def test_bearer_token_query_and_cookie_are_opt_in(backend: str) -> None:
    """Without ``query=``/``cookie=``, a token in the URL or a cookie is not looked at."""
    app = guarded_app(bearer_token(users))
    assert denial_of(app, backend, headers={"Cookie": "session=good"}).status == 401
    client = TestClient(app, backend=backend, raise_server_exceptions=False)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/ws?token=good")
    assert denied.value.status == 401


def test_bearer_token_header_beats_query_when_both_are_good(backend: str) -> None:
    def verify(token: str) -> str | None:
        return {"header-token": "from-header", "query-token": "from-query"}.get(token)

    app = guarded_app(bearer_token(verify, query="token"))
    client = TestClient(app, backend=backend)
    headers = {"Authorization": "Bearer header-token"}
    with client.websocket_connect("/ws?token=query-token", headers=headers) as ws:
        assert ws.receive_json() == {"hello": "from-header"}
