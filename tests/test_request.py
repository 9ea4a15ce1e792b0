"""Request: a lazy view over the scope, for HTTP requests and handshakes alike."""

from __future__ import annotations

from typing import Any

import pytest

from tinyws import App, HTTPError, Request, WebSocket
from tinyws.datastructures import Headers, Namespace, QueryParams
from tinyws.testing import TestClient


def test_request_attributes_over_http() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.post("/items/{id:int}")
    async def item(req: Request, id: int) -> dict[str, Any]:
        seen.update(
            method=req.method,
            path=req.path,
            url=req.url,
            scheme=req.scheme,
            query_string=req.query_string,
            tags=req.query.getall("tag"),
            first=req.query.get("tag"),
            missing=req.query.get("nope"),
            agent=req.headers["USER-AGENT"],
            multi=req.headers.getall("x-multi"),
            cookies=req.cookies,
            params=req.params,
            client=req.client is not None,
        )
        return await req.json()  # type: ignore[no-any-return]

    client = TestClient(app)
    resp = client.post(
        "/items/3?tag=a&tag=b",
        json={"k": [1]},
        headers=[
            ("user-agent", "ua/1"),
            ("x-multi", "1"),
            ("x-multi", "2"),
            ("cookie", 'a=1; b="two"; c'),
        ],
    )
    assert resp.json() == {"k": [1]}
    assert seen == {
        "method": "POST",
        "path": "/items/3",
        "url": "http://testserver/items/3?tag=a&tag=b",
        "scheme": "http",
        "query_string": "tag=a&tag=b",
        "tags": ["a", "b"],
        "first": "a",
        "missing": None,
        "agent": "ua/1",
        "multi": ["1", "2"],
        "cookies": {"a": "1", "b": "two"},
        "params": {"id": 3},
        "client": True,
    }


def test_malformed_json_is_a_400() -> None:
    app = App()

    @app.post("/")
    async def parse(req: Request) -> Any:
        return await req.json()

    resp = TestClient(app).post("/", content=b"{nope")
    assert resp.status == 400
    assert resp.json()["title"] == "Malformed JSON"


def test_handshake_request_has_subprotocols_and_ws_scheme() -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.websocket("/ws/{room}")
    async def handler(ws: WebSocket, room: str) -> None:
        req = ws.request
        seen.update(
            method=req.method, scheme=req.scheme, subprotocols=req.subprotocols, room=ws.params
        )
        with pytest.raises(RuntimeError, match="no body"):
            await req.body()
        await ws.accept()

    with TestClient(app).websocket_connect("/ws/lobby", subprotocols=["a", "b"]):
        pass
    assert seen == {
        "method": "GET",
        "scheme": "ws",
        "subprotocols": ["a", "b"],
        "room": {"room": "lobby"},
    }


def test_namespace_has_attribute_and_item_access() -> None:
    ns = Namespace()
    ns.user = "alice"
    assert ns["user"] == "alice"
    ns["role"] = "admin"
    assert ns.role == "admin"
    assert set(ns) == {"user", "role"}
    del ns.user
    with pytest.raises(AttributeError):
        _ = ns.user
    assert ns.get("user") is None


def test_headers_and_query_params_views() -> None:
    headers = Headers([(b"X-A", b"1"), (b"x-a", b"2"), (b"b", b"3")])
    assert list(headers) == ["x-a", "b"]
    assert len(headers) == 2
    assert headers.getall("X-A") == ["1", "2"]
    assert list(headers.items()) == [("x-a", "1"), ("x-a", "2"), ("b", "3")]
    assert len(headers.items()) == 3 and ("x-a", "2") in headers.items()
    assert headers.multi_items() == [("x-a", "1"), ("x-a", "2"), ("b", "3")]
    query = QueryParams(b"a=1&a=2&empty=&sp=a+b%21")
    assert query["a"] == "1"
    assert query.getall("a") == ["1", "2"]
    assert query["empty"] == ""
    assert query["sp"] == "a b!"
    assert sorted(query) == ["a", "empty", "sp"]


def test_http_error_validates_its_status() -> None:
    assert HTTPError(404).title == "Not Found"
    assert HTTPError(499).title == "499"  # no standard phrase
    for status in (100, 600, "404"):
        with pytest.raises(ValueError):
            HTTPError(status)  # type: ignore[arg-type]
