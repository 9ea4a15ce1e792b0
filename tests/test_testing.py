"""The test client against raw ASGI apps defined inline, on both anyio backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from tinyws.errors import LifespanError, WebSocketDisconnect, WebSocketStateError
from tinyws.testing import (
    ASGIProtocolError,
    TestClient,
    TestResponse,
    WebSocketDenied,
    WebSocketTestSession,
)
from tinyws.types import ASGIApp, Message, Receive, Scope, Send

ClientFactory = Callable[..., TestClient]


@pytest.fixture(params=["asyncio", "trio"])
def make_client(request: pytest.FixtureRequest) -> ClientFactory:
    """``TestClient`` on each anyio backend; these tests are sync, so no anyio marker."""

    def factory(app: ASGIApp, **kwargs: Any) -> TestClient:
        return TestClient(app, backend=request.param, **kwargs)

    return factory


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def scope_echo(seen: list[Scope]) -> ASGIApp:
    """An app that records each scope and answers HTTP with its request body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        if scope["type"] == "http":
            message = await receive()
            await respond(send, 200, message["body"], [(b"content-type", b"text/plain")])
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})

    return app


async def crash(scope: Scope, receive: Receive, send: Send) -> None:
    raise ValueError("kaboom")


# -- HTTP -------------------------------------------------------------------


def test_http_scope_is_what_a_server_builds(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    response = make_client(scope_echo(seen)).get("/caf%C3%A9/a b?x=1", params={"y": "2"})
    assert response.status == 200
    scope = seen[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/a b"
    assert scope["raw_path"] == b"/caf%C3%A9/a%20b"
    assert scope["query_string"] == b"x=1&y=2"
    assert scope["root_path"] == ""
    assert scope["headers"][0] == (b"host", b"testserver")
    assert scope["client"] == ("testclient", 50000)
    assert scope["server"] == ("testserver", 80)
    assert scope["extensions"] == {}
    assert "state" not in scope  # no lifespan ran: like a server that offers none


def test_full_url_and_https_base(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    client = make_client(scope_echo(seen), base_url="https://example.org:8443/api")
    client.get("/items")
    client.get("http://other.test/x")
    assert (seen[0]["scheme"], seen[0]["server"], seen[0]["path"]) == (
        "https",
        ("example.org", 8443),
        "/api/items",
    )
    assert dict(seen[0]["headers"])[b"host"] == b"example.org:8443"
    assert (seen[1]["scheme"], seen[1]["server"], seen[1]["path"]) == (
        "http",
        ("other.test", 80),
        "/x",
    )


def test_post_bodies_and_their_content_types(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    client = make_client(scope_echo(seen))
    assert client.post("/", json={"a": [1, 2]}).body == b'{"a":[1,2]}'
    assert client.post("/", content=b"\x00\x01").body == b"\x00\x01"
    assert client.put("/", data="héllo").body == "héllo".encode()
    assert client.patch("/", data={"k": "v w", "n": ["1", "2"]}).text == "k=v+w&n=1&n=2"
    headers = [dict(scope["headers"]) for scope in seen]
    assert headers[0][b"content-type"] == b"application/json"
    assert headers[0][b"content-length"] == b"11"
    assert b"content-type" not in headers[1]
    assert headers[3][b"content-type"] == b"application/x-www-form-urlencoded"
    assert [scope["method"] for scope in seen] == ["POST", "POST", "PUT", "PATCH"]


def test_request_headers_params_and_cookies(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    client = make_client(scope_echo(seen), headers={"X-Team": "core", "User-Agent": "suite"})
    client.delete(
        "/",
        headers=[("X-Team", "edge"), ("X-Multi", "1"), ("X-Multi", "2")],
        params=[("q", "a"), ("q", "b c")],
        cookies={"sid": "abc", "theme": "dark"},
    )
    raw = seen[0]["headers"]
    assert (b"x-team", b"edge") in raw
    assert (b"x-team", b"core") not in raw
    assert [v for k, v in raw if k == b"x-multi"] == [b"1", b"2"]
    assert (b"user-agent", b"suite") in raw
    assert (b"cookie", b"sid=abc; theme=dark") in raw
    assert seen[0]["query_string"] == b"q=a&q=b+c"
    assert seen[0]["method"] == "DELETE"


def test_response_headers_are_case_insensitive_and_multi_valued(
    make_client: ClientFactory,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"Content-Type", b"application/json; charset=utf-8"),
            (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
        ]
        await respond(send, 201, b'{"ok": true}', headers)

    response = make_client(app).options("/")
    assert isinstance(response, TestResponse)
    assert (response.status, response.status_code) == (201, 201)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["CONTENT-TYPE"] == "application/json; charset=utf-8"
    assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert response.json() == {"ok": True}
    assert response.text == '{"ok": true}'


def test_404_and_chunked_body_pass_through(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not ", "more_body": True})
        await send({"type": "http.response.body", "body": b"found", "more_body": False})

    response = make_client(app).get("/missing")
    assert (response.status, response.body) == (404, b"not found")


def test_text_uses_the_declared_charset(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(
            send, 200, "é".encode("latin-1"), [(b"content-type", b"text/plain; charset=latin-1")]
        )

    assert make_client(app).get("/").text == "é"


def test_head_response_has_no_body(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, b"payload", [(b"content-length", b"7")])

    response = make_client(app).head("/")
    assert (response.status, response.body, response.headers["content-length"]) == (200, b"", "7")


def test_app_sees_disconnect_only_after_its_response(make_client: ClientFactory) -> None:
    received: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append((await receive())["type"])
        await respond(send, 200, b"done", [])
        received.append((await receive())["type"])

    assert make_client(app).get("/").body == b"done"
    assert received == ["http.request", "http.disconnect"]


def test_http_app_exception_reraises(make_client: ClientFactory) -> None:
    with pytest.raises(ValueError, match="kaboom"):
        make_client(crash).get("/")


def test_http_app_exception_is_a_500_when_not_raising(make_client: ClientFactory) -> None:
    response = make_client(crash, raise_server_exceptions=False).get("/")
    assert response.status == 500
    assert response.text == "Internal Server Error"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_exception_after_the_response_keeps_the_response(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, b"sent", [])
        raise RuntimeError("late")

    assert make_client(app, raise_server_exceptions=False).get("/").body == b"sent"
    with pytest.raises(RuntimeError, match="late"):
        make_client(app).get("/")


@pytest.mark.parametrize("raise_server_exceptions", [True, False])
def test_http_app_returning_without_response_is_a_500(
    make_client: ClientFactory, raise_server_exceptions: bool
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    client = make_client(app, raise_server_exceptions=raise_server_exceptions)
    assert client.get("/").status == 500


def test_http_misuse_raises_even_when_not_raising(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.body", "body": b"no start"})

    with pytest.raises(ASGIProtocolError, match=r"http\.response\.body"):
        make_client(app, raise_server_exceptions=False).get("/")


def test_http_timeout(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep_forever()

    with pytest.raises(TimeoutError, match=r"did not finish within 0\.2 s"):
        make_client(app, timeout=0.2).get("/")


# -- lifespan -----------------------------------------------------------------


def lifespan_app(events: list[str], *, fail: str = "") -> ASGIApp:
    """Startup puts a value and a shared list into the state; HTTP reports the state."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope["state"]
            state["shared"].append(scope["path"])
            body = json.dumps({"db": state["db"], "seen": state.pop("seen", None)})
            state["seen"] = True  # visible to this request only: its state is a copy
            await respond(send, 200, body.encode(), [])
            return
        for phase in ("startup", "shutdown"):
            message = await receive()
            events.append(message["type"])
            if phase == "startup":
                scope["state"].update(db="ready", shared=[])
            if fail == phase:
                await send({"type": f"lifespan.{phase}.failed", "message": f"{phase} broke"})
                return
            await send({"type": f"lifespan.{phase}.complete"})

    return app


def test_lifespan_runs_around_the_with_block(make_client: ClientFactory) -> None:
    events: list[str] = []
    client = make_client(lifespan_app(events))
    with client:
        assert events == ["lifespan.startup"]
        assert client.get("/a").json() == {"db": "ready", "seen": None}
        assert client.get("/b").json() == {"db": "ready", "seen": None}
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_lifespan_state_is_a_shallow_copy(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    events: list[str] = []
    inner = lifespan_app(events)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await inner(scope, receive, send)

    with make_client(app) as client:
        client.get("/a")
        client.get("/b")
    lifespan_state, first, second = (scope["state"] for scope in seen)
    assert "seen" not in lifespan_state
    assert first is not second
    assert first["shared"] is lifespan_state["shared"]  # shallow: the values are shared
    assert lifespan_state["shared"] == ["/a", "/b"]


def test_lifespan_startup_failed(make_client: ClientFactory) -> None:
    events: list[str] = []
    client = make_client(lifespan_app(events, fail="startup"))
    with pytest.raises(LifespanError, match="startup broke"), client:
        pass
    assert events == ["lifespan.startup"]


def test_lifespan_shutdown_failed(make_client: ClientFactory) -> None:
    events: list[str] = []
    client = make_client(lifespan_app(events, fail="shutdown"))
    with pytest.raises(LifespanError, match="shutdown broke"), client:
        pass
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_app_without_lifespan(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"unsupported scope {scope['type']}")
        await respond(send, 200, b"ok", [])

    with pytest.raises(ValueError, match="unsupported scope lifespan"), make_client(app):
        pass
    # Not raising: carry on without lifespan, as the ASGI spec asks of servers.
    with make_client(app, raise_server_exceptions=False) as client:
        assert client.get("/").body == b"ok"


def test_no_lifespan_events_outside_with(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    client = make_client(scope_echo(seen))
    client.get("/")
    assert [scope["type"] for scope in seen] == ["http"]


# -- WebSocket ----------------------------------------------------------------


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept (picking the last offered subprotocol), then echo until the client leaves."""
    await receive()
    offered = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": offered[-1] if offered else None,
            "headers": [(b"x-room", b"lobby")],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        message["type"] = "websocket.send"
        await send(message)


def test_websocket_echo(make_client: ClientFactory) -> None:
    with make_client(echo).websocket_connect("/ws") as ws:
        assert isinstance(ws, WebSocketTestSession)
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
        ws.send_bytes(b"\x00\xff")
        assert ws.receive_bytes() == b"\x00\xff"
        ws.send_json({"n": 1})
        assert ws.receive() == '{"n":1}'
        ws.send_bytes(b'{"n": 2}')
        assert ws.receive_json() == {"n": 2}  # JSON from a bytes frame too


def test_websocket_scope(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    with (
        pytest.raises(WebSocketDisconnect),
        make_client(scope_echo(seen)).websocket_connect(
            "/rooms/a?token=t", subprotocols=["chat.v1", "chat.v2"], headers={"Origin": "http://x"}
        ) as ws,
    ):
        ws.receive()
    scope = seen[0]
    headers = dict(scope["headers"])
    assert (scope["type"], scope["scheme"], scope["path"]) == ("websocket", "ws", "/rooms/a")
    assert (scope["raw_path"], scope["query_string"]) == (b"/rooms/a", b"token=t")
    assert scope["subprotocols"] == ["chat.v1", "chat.v2"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert headers[b"host"] == b"testserver"
    assert headers[b"sec-websocket-version"] == b"13"
    assert len(headers[b"sec-websocket-key"]) == 24
    assert headers[b"sec-websocket-protocol"] == b"chat.v1, chat.v2"
    assert headers[b"origin"] == b"http://x"
    assert headers[b"upgrade"] == b"websocket"


def test_websocket_subprotocol_and_accept_headers(make_client: ClientFactory) -> None:
    with make_client(echo).websocket_connect("/", subprotocols=["a", "b"]) as ws:
        assert ws.subprotocol == "b"
        assert ws.headers["X-Room"] == "lobby"
    with make_client(echo).websocket_connect("/") as ws:
        assert ws.subprotocol is None


def test_websocket_state_is_copied_from_lifespan(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    events: list[str] = []
    lifespan = lifespan_app(events)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await (lifespan if scope["type"] == "lifespan" else echo)(scope, receive, send)

    with make_client(app) as client, client.websocket_connect("/") as ws:
        ws.send_text("x")
        assert ws.receive_text() == "x"
    assert seen[1]["state"] == {"db": "ready", "shared": []}
    assert seen[1]["state"] is not seen[0]["state"]


def denial_app(chunks: list[bytes]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"application/json"), (b"WWW-Authenticate", b"Bearer")]
        start = {"type": "websocket.http.response.start", "status": 401, "headers": headers}
        await send(start)
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "websocket.http.response.body", "body": chunk, "more_body": more})

    return app


def test_websocket_denial_response(make_client: ClientFactory) -> None:
    with pytest.raises(WebSocketDenied) as denied:
        make_client(denial_app([b'{"title": "Unauthorized"}'])).websocket_connect("/")
    assert denied.value.status == 401
    assert denied.value.headers["www-authenticate"] == "Bearer"
    assert denied.value.body == b'{"title": "Unauthorized"}'
    assert denied.value.json() == {"title": "Unauthorized"}
    assert denied.value.text == '{"title": "Unauthorized"}'


def test_websocket_denial_in_several_body_messages(make_client: ClientFactory) -> None:
    with pytest.raises(WebSocketDenied) as denied:
        make_client(denial_app([b'{"a"', b"", b": 1}"])).websocket_connect("/")
    assert (denied.value.status, denied.value.json()) == (401, {"a": 1})


async def close_first(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.close", "code": 4401, "reason": "nope"})


@pytest.mark.parametrize("denial_response", [True, False])
def test_close_before_accept_is_a_plain_403(
    make_client: ClientFactory, denial_response: bool
) -> None:
    client = make_client(close_first, denial_response=denial_response)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/")
    assert (denied.value.status, denied.value.body) == (403, b"")
    assert not hasattr(denied.value, "code")  # real servers drop the close code
    assert "4401" not in str(denied.value)


def test_without_denial_response_the_extension_is_absent(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    client = make_client(scope_echo(seen), denial_response=False)
    with client.websocket_connect("/") as ws, pytest.raises(WebSocketDisconnect):
        ws.receive()
    assert seen[0]["extensions"] == {}


def test_denial_messages_without_the_extension_are_misuse(make_client: ClientFactory) -> None:
    client = make_client(denial_app([b"x"]), denial_response=False, raise_server_exceptions=False)
    with pytest.raises(ASGIProtocolError, match=r"did not offer the 'websocket\.http\.response'"):
        client.websocket_connect("/")


def test_app_close_after_accept(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "bye soon"})
        await send({"type": "websocket.close", "code": 4404, "reason": "gone"})

    with make_client(app).websocket_connect("/") as ws:
        assert ws.receive_text() == "bye soon"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (4404, "gone")
        with pytest.raises(WebSocketDisconnect) as again:
            ws.receive_bytes()
        assert again.value.code == 4404


def test_app_close_without_code_means_1000(make_client: ClientFactory) -> None:
    seen: list[Scope] = []
    with make_client(scope_echo(seen)).websocket_connect("/") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive()
        assert (closed.value.code, closed.value.reason) == (1000, "")


def test_app_returning_after_accept_closes_1000(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    with make_client(app).websocket_connect("/") as ws, pytest.raises(WebSocketDisconnect) as c:
        ws.receive()
    assert c.value.code == 1000


def recording_app(received: list[Message]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # no lifespan support: the client carries on without
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] != "websocket.disconnect":
            received.append(message)
        received.append(message)

    return app


def test_client_close_reaches_the_app(make_client: ClientFactory) -> None:
    received: list[Message] = []
    with make_client(recording_app(received)).websocket_connect("/") as ws:
        ws.send_text("last")
        ws.close(4001, "done here")
        with pytest.raises(WebSocketStateError):
            ws.send_text("too late")
    assert received == [
        {"type": "websocket.receive", "text": "last"},
        {"type": "websocket.disconnect", "code": 4001, "reason": "done here"},
    ]


def test_leaving_the_block_closes_with_1000(make_client: ClientFactory) -> None:
    received: list[Message] = []
    with make_client(recording_app(received)).websocket_connect("/"):
        pass
    assert received == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]


def test_leaving_the_client_closes_open_sessions_with_1001(make_client: ClientFactory) -> None:
    received: list[Message] = []
    with make_client(recording_app(received)) as client:
        client.websocket_connect("/")  # never closed by the test
    assert received == [{"type": "websocket.disconnect", "code": 1001, "reason": ""}]


def test_app_send_after_client_close_gets_oserror(make_client: ClientFactory) -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
        except OSError as exc:
            errors.append(exc)
            raise  # dying of a vanished client is not reported to the test

    with make_client(app).websocket_connect("/"):
        pass
    assert len(errors) == 1


@pytest.mark.parametrize("accept_first", [False, True])
def test_exception_in_websocket_app_reraises(
    make_client: ClientFactory, accept_first: bool
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if accept_first:
            await send({"type": "websocket.accept"})
        raise ValueError("ws kaboom")

    with (
        pytest.raises(ValueError, match="ws kaboom"),
        make_client(app).websocket_connect("/") as ws,
    ):
        ws.receive()


def test_exception_after_accept_reraises_on_exit(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("on the way out")

    with pytest.raises(ValueError, match="on the way out"), make_client(app).websocket_connect("/"):
        pass


def test_explicit_close_reraises_and_frees_the_session(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        raise ValueError(f"closed with {message['code']}")

    ws = make_client(app).websocket_connect("/")
    with pytest.raises(ValueError, match="closed with 4000"):
        ws.close(4000)
    ws.close()  # closing again is a no-op, and the error was reported once
    with pytest.raises(WebSocketStateError):
        ws.receive()


def test_exception_before_accept_is_a_500_when_not_raising(make_client: ClientFactory) -> None:
    client = make_client(crash, raise_server_exceptions=False)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/")
    assert (denied.value.status, denied.value.text) == (500, "Internal Server Error")


@pytest.mark.parametrize("raise_server_exceptions", [True, False])
def test_returning_without_handshake_is_a_500(
    make_client: ClientFactory, raise_server_exceptions: bool
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    client = make_client(app, raise_server_exceptions=raise_server_exceptions)
    with pytest.raises(WebSocketDenied) as denied:
        client.websocket_connect("/")
    assert denied.value.status == 500


def test_exception_after_accept_is_1011_when_not_raising(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"first"})
        raise ValueError("hidden")

    client = make_client(app, raise_server_exceptions=False)
    with client.websocket_connect("/") as ws:
        assert ws.receive_bytes() == b"first"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive()
        assert closed.value.code == 1011


def test_wrong_message_type_is_a_clear_error(make_client: ClientFactory) -> None:
    with make_client(echo).websocket_connect("/") as ws:
        ws.send_bytes(b"raw")
        with pytest.raises(TypeError, match="expected a text message, the app sent bytes"):
            ws.receive_text()
        ws.send_text("txt")
        with pytest.raises(TypeError, match="expected a bytes message, the app sent text"):
            ws.receive_bytes()


def test_websocket_misuse_after_accept(make_client: ClientFactory) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.accept"})

    client = make_client(app, raise_server_exceptions=False)
    misuse = r"'websocket\.accept' in state ACCEPTED"
    with pytest.raises(ASGIProtocolError, match=misuse), client.websocket_connect("/") as ws:
        ws.receive()


def test_receive_timeout(make_client: ClientFactory) -> None:
    received: list[Message] = []
    client = make_client(recording_app(received), timeout=0.2)
    with client.websocket_connect("/") as ws, pytest.raises(TimeoutError, match=r"within 0\.2 s"):
        ws.receive_text()
    assert received[-1]["type"] == "websocket.disconnect"


def test_app_ignoring_disconnect_is_cancelled(make_client: ClientFactory) -> None:
    cancelled: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    client = make_client(app, timeout=0.2)
    with pytest.raises(TimeoutError, match="it was cancelled"), client.websocket_connect("/"):
        pass
    assert cancelled == [True]
