"""The examples do what their docstrings say (the chat's own tests: test_chat_example.py)."""

from __future__ import annotations

import http.client

import anyio
import pytest
from wsproto.events import AcceptConnection, RejectConnection

from examples.seed import app as seed_app
from tests.server_helpers import WSClient
from tests.servers import run_server
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


def get(port: int, path: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.getheader("content-type", ""), answer.read()
    finally:
        connection.close()


def test_tinyws_serve_runs_the_seed() -> None:
    """The README's first command: the seed echoes for the good token, 404s otherwise."""

    async def talk(port: int) -> None:
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            client = WSClient(stream)
            assert isinstance(await client.handshake("/foo?token=good"), AcceptConnection)
            await client.send_text("hello")
            assert await client.receive_message() == "hello"
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            refused = await WSClient(stream).handshake("/foo?token=bad")
            assert isinstance(refused, RejectConnection)
            assert refused.status_code == 404

    with run_server("tinyws", "examples.seed:app") as server:
        anyio.run(talk, server.port)


def test_tinyws_serve_runs_the_chat() -> None:
    with run_server("tinyws", "examples.chat:app") as server:
        status, content_type, page = get(server.port, "/")
        assert (status, content_type) == (200, "text/html; charset=utf-8"), server.describe()
        assert b"<title>tinyws chat</title>" in page
