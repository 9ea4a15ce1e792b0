"""The examples do what their docstrings say."""

from __future__ import annotations

import pytest

from examples.chat import app as chat_app
from examples.seed import app as seed_app
from tinyws.testing import TestClient, WebSocketDenied


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_seed_refuses_with_404_json_unless_token_is_good(backend: str) -> None:
    with TestClient(seed_app, backend=backend) as client:
        for query in ("", "?token=bad", "?token=goodish"):
            with pytest.raises(WebSocketDenied) as denied:
                client.websocket_connect(f"/foo{query}")
            assert denied.value.status == 404
            assert denied.value.headers["content-type"] == "application/json"
            assert denied.value.json() == {
                "title": "Not Found",
                "description": "no such endpoint for this token",
            }
        with client.websocket_connect("/foo?token=good") as ws:
            ws.send_text("hello")
            assert ws.receive_text() == "hello"
            ws.send_bytes(b"\x01\x02")
            assert ws.receive_bytes() == b"\x01\x02"


def test_seed_falls_back_to_403_without_the_extension(backend: str) -> None:
    with pytest.raises(WebSocketDenied) as denied:
        TestClient(seed_app, denial_response=False, backend=backend).websocket_connect("/foo")
    assert denied.value.status == 403
    assert denied.value.body == b""


def test_chat_guards_and_broadcast(backend: str) -> None:
    bearer = [("authorization", "Bearer alice-token")]
    with TestClient(chat_app, backend=backend) as client:
        assert client.get("/health").json() == {"ok": True}
        assert client.get("/health").headers["server-timing"].startswith("app;dur=")
        with pytest.raises(WebSocketDenied) as denied:
            client.websocket_connect("/rooms/lobby")
        assert denied.value.status == 401
        assert denied.value.headers["www-authenticate"] == "Bearer"
        with pytest.raises(WebSocketDenied) as denied:
            client.websocket_connect(
                "/rooms/lobby", headers=[*bearer, ("origin", "https://evil.example")]
            )
        assert denied.value.status == 403
        with pytest.raises(WebSocketDenied) as denied:
            client.websocket_connect("/rooms/attic", headers=bearer)
        assert denied.value.json()["title"] == "Unknown room"
        with client.websocket_connect(
            "/rooms/lobby", headers=bearer, subprotocols=["chat.v1"]
        ) as ws:
            assert ws.subprotocol == "chat.v1"
            ws.send_text("hi")
            assert ws.receive_text() == "alice: hi"
