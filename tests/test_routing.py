"""Path templates, converters, precedence, and registration errors (SPEC section 3)."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import pytest

from tinyws import App, Request, Response, WebSocket
from tinyws.routing import compile_template
from tinyws.testing import TestClient, WebSocketDenied


def test_converters_pass_typed_values() -> None:
    app = App()
    seen: list[Any] = []

    @app.get("/s/{name}")
    @app.get("/i/{n:int}")
    @app.get("/f/{x:float}")
    @app.get("/u/{id:uuid}")
    @app.get("/p/{rest:path}")
    def capture(req: Request, **params: Any) -> dict[str, str]:
        seen.append(params)
        return {"ok": "yes"}

    client = TestClient(app)
    for path in (
        "/s/bob",
        "/i/-42",
        "/f/2.5",
        "/u/6f1c2a3b-1111-2222-3333-444455556666",
        "/p/a/b/c.txt",
    ):
        assert client.get(path).status == 200, path
    assert seen == [
        {"name": "bob"},
        {"n": -42},
        {"x": 2.5},
        {"id": uuid.UUID("6f1c2a3b-1111-2222-3333-444455556666")},
        {"rest": "a/b/c.txt"},
    ]


@pytest.mark.parametrize("path", ["/i/4x", "/i/", "/f/1.", "/u/not-a-uuid", "/s/a/b", "/s/"])
def test_values_a_converter_refuses_do_not_match(path: str) -> None:
    app = App()

    @app.get("/i/{n:int}")
    @app.get("/f/{x:float}")
    @app.get("/u/{id:uuid}")
    @app.get("/s/{name}")
    def never(req: Request, **params: Any) -> None:
        raise AssertionError(params)

    assert TestClient(app).get(path).status == 404


def test_static_paths_win_then_first_registered_template() -> None:
    app = App()

    @app.get("/users/{name}")
    def by_name(req: Request, name: str) -> str:
        return f"name:{name}"

    @app.get("/users/{id:int}")
    def by_id(req: Request, id: int) -> str:
        return f"id:{id}"

    @app.get("/users/me")
    def me(req: Request) -> str:
        return "me"

    client = TestClient(app)
    assert client.get("/users/me").text == "me"
    assert client.get("/users/7").text == "name:7"  # registered first
    assert client.get("/users/me/").status == 404  # exact: no trailing-slash redirect


def test_http_and_websocket_share_a_path_and_methods_stack() -> None:
    app = App()

    @app.get("/thing")
    async def read(req: Request) -> str:
        return "read"

    @app.post("/thing")
    async def write(req: Request) -> str:
        return "wrote " + (await req.body()).decode()

    @app.websocket("/thing")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send("streamed")

    client = TestClient(app)
    assert client.get("/thing").text == "read"
    assert client.post("/thing", content=b"x").text == "wrote x"
    with client.websocket_connect("/thing") as ws:
        assert ws.receive_text() == "streamed"


def test_missing_route_is_404_and_wrong_method_405_with_allow() -> None:
    app = App()

    @app.route("/item", methods=["GET", "put"])
    def item(req: Request) -> None:
        return None

    client = TestClient(app)
    missing = client.get("/nothing")
    assert (missing.status, missing.json()) == (404, {"title": "Not Found"})
    wrong = client.post("/item")
    assert wrong.status == 405
    assert wrong.headers["allow"] == "GET, PUT"
    assert wrong.json() == {"title": "Method Not Allowed"}
    assert client.put("/item").status == 204


def test_unknown_websocket_path_is_denied_404() -> None:
    with pytest.raises(WebSocketDenied) as denied:
        TestClient(App()).websocket_connect("/nowhere")
    assert denied.value.status == 404
    assert denied.value.json() == {"title": "Not Found"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("no-slash", "must be a str starting with '/'"),
        ("/a/{", "unbalanced"),
        ("/a/}", "unbalanced"),
        ("/a/{}", "needs a valid name"),
        ("/a/{1x}", "needs a valid name"),
        ("/a/{x:bogus}", "unknown converter 'bogus'"),
        ("/a/{x}/{x:int}", "appears twice"),
        ("/a/{rest:path}/b", "must end the template"),
        ("/a/{x{y}}", "unbalanced"),
    ],
)
def test_bad_templates_raise_value_error_at_registration(template: str, message: str) -> None:
    app = App()
    with pytest.raises(ValueError, match=message):
        app.get(template)(lambda req: None)
    with pytest.raises(ValueError, match=message):
        app.websocket(template)(lambda ws: None)


def test_duplicates_raise_value_error() -> None:
    app = App()
    app.get("/a/{x:int}")(lambda req, x: None)
    app.websocket("/a/{x:int}")(lambda ws, x: None)
    with pytest.raises(ValueError, match=re.escape("duplicate route: GET route '/a/{y:int}'")):
        app.get("/a/{y:int}")(lambda req, y: None)
    with pytest.raises(ValueError, match="duplicate route: WebSocket route"):
        app.websocket("/a/{x:int}")(lambda ws, x: None)
    app.post("/a/{y:int}")(lambda req, y: None)  # another method is fine
    with pytest.raises(ValueError, match="duplicate route: POST route"):
        app.route("/a/{z:int}", methods=["PUT", "POST"])(lambda req, z: None)
    assert TestClient(app).put("/a/1").status == 405  # all or nothing: PUT was not added
    app.get("/a/{x}")(lambda req, x: None)  # another converter is another shape


def test_methods_must_be_a_list() -> None:
    app = App()
    with pytest.raises(ValueError, match="methods must be a non-empty list"):
        app.route("/x", methods="GET")
    with pytest.raises(ValueError, match="methods must be a non-empty list"):
        app.route("/x", methods=[])


def test_sync_http_handlers_run_in_a_worker_thread_and_async_inline() -> None:
    app = App()
    threads: dict[str, int] = {}

    @app.get("/sync")
    def sync(req: Request) -> None:
        threads["sync"] = threading.get_ident()

    @app.get("/async")
    async def run_async(req: Request) -> None:
        threads["async"] = threading.get_ident()

    with TestClient(app) as client:  # one event loop thread for both requests
        client.get("/sync")
        client.get("/async")
    assert threads["sync"] != threads["async"]


def test_handler_return_values_become_responses() -> None:
    app = App()
    values: dict[str, object] = {
        "dict": {"a": 1},
        "list": [1, "é"],
        "str": "hé",
        "bytes": b"\x00\x01",
        "none": None,
        "response": Response("made", 201, {"x-k": "v"}, content_type="text/x-custom"),
        "bad": 3.5,
    }

    @app.get("/{kind}")
    def handler(req: Request, kind: str) -> object:
        return values[kind]

    client = TestClient(app, raise_server_exceptions=False)
    cases = {
        "dict": (200, "application/json", b'{"a":1}'),
        "list": (200, "application/json", '[1,"é"]'.encode()),
        "str": (200, "text/plain; charset=utf-8", "hé".encode()),
        "bytes": (200, "application/octet-stream", b"\x00\x01"),
        "response": (201, "text/x-custom", b"made"),
        "bad": (500, "application/json", b'{"title":"Internal Server Error"}'),
    }
    for kind, (status, content_type, body) in cases.items():
        resp = client.get(f"/{kind}")
        assert (resp.status, resp.headers["content-type"], resp.body) == (
            status,
            content_type,
            body,
        )
        assert resp.headers["content-length"] == str(len(body))
    empty = client.get("/none")
    assert (empty.status, empty.body, "content-type" in empty.headers) == (204, b"", False)


def test_template_shapes_ignore_names() -> None:
    assert compile_template("/a/{x:int}").shape == compile_template("/a/{y:int}").shape
    assert compile_template("/a/{x}").match("/a/b") == {"x": "b"}
    assert compile_template("/static").match("/static") == {}
    assert compile_template("/static").match("/static/") is None
