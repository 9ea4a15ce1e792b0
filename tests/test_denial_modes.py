"""Denial modes: "http", "close" and "auto", app-wide and per route."""

from __future__ import annotations

import pytest

from tests.asgi import connect_then, drive, ws_scope
from tinyws import App, HTTPError, Request, Response, WebSocket
from tinyws.types import Message

pytestmark = pytest.mark.anyio

ORIGIN = (b"origin", b"https://app.example")


def refusing_app(mode: str, route_mode: str | None = None) -> App:
    app = App(denial=mode)  # type: ignore[arg-type]

    def no_entry(req: Request) -> None:
        raise HTTPError(401, "Token required")

    @app.websocket("/guarded", guard=no_entry, denial=route_mode)  # type: ignore[arg-type]
    async def guarded(ws: WebSocket) -> None:
        raise AssertionError("unreachable")

    @app.websocket("/response", denial=route_mode)  # type: ignore[arg-type]
    async def response(ws: WebSocket) -> None:
        await ws.deny(Response.text("no", 451))

    @app.websocket("/close", denial=route_mode)  # type: ignore[arg-type]
    async def close(ws: WebSocket) -> None:
        await ws.close(4100, "custom")

    return app


def closed_with(code: int, reason: str) -> list[Message]:
    return [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": code, "reason": reason},
    ]


async def test_close_mode_accepts_then_closes_with_4000_plus_status() -> None:
    app = refusing_app("close")
    assert await drive(app, ws_scope("/guarded"), connect_then()) == closed_with(
        4401, "Token required"
    )
    assert await drive(app, ws_scope("/response"), connect_then()) == closed_with(
        4451, "Unavailable For Legal Reasons"
    )
    assert await drive(app, ws_scope("/close"), connect_then()) == closed_with(4100, "custom")
    assert await drive(app, ws_scope("/missing"), connect_then()) == closed_with(4404, "Not Found")


async def test_close_mode_works_without_the_extension() -> None:
    sent = await drive(refusing_app("close"), ws_scope("/guarded", extensions={}), connect_then())
    assert sent == closed_with(4401, "Token required")


async def test_auto_mode_closes_for_browsers_and_answers_http_otherwise() -> None:
    app = refusing_app("auto")
    browser = await drive(app, ws_scope("/guarded", headers=[ORIGIN]), connect_then())
    assert browser == closed_with(4401, "Token required")
    other = await drive(app, ws_scope("/guarded"), connect_then())
    assert other[0]["type"] == "websocket.http.response.start"
    assert other[0]["status"] == 401


async def test_route_mode_overrides_the_app_mode() -> None:
    app = refusing_app("http", route_mode="close")
    sent = await drive(app, ws_scope("/guarded"), connect_then())
    assert sent == closed_with(4401, "Token required")
    # Before routing the app's mode applies: an unknown path is an HTTP 404.
    missing = await drive(app, ws_scope("/missing"), connect_then())
    assert missing[0]["status"] == 404


async def test_route_can_go_back_to_http_under_a_close_app() -> None:
    app = refusing_app("close", route_mode="http")
    sent = await drive(app, ws_scope("/guarded", headers=[ORIGIN]), connect_then())
    assert sent[0]["type"] == "websocket.http.response.start"


async def test_close_reason_of_a_long_title_is_cut_on_a_character_boundary() -> None:
    app = App(denial="close")
    title = "é" * 100  # 200 bytes of UTF-8

    @app.websocket("/")
    async def handler(ws: WebSocket) -> None:
        raise HTTPError(400, title)

    sent = await drive(app, ws_scope("/"), connect_then())
    reason = sent[1]["reason"]
    assert reason == "é" * 61  # 122 bytes: the 62nd "é" would straddle byte 123
    assert len(reason.encode()) <= 123


@pytest.mark.parametrize("mode", ["sideways", "", None, 1])
def test_unknown_mode_is_refused_at_registration(mode: object) -> None:
    with pytest.raises(ValueError, match="denial must be one of"):
        App(denial=mode)  # type: ignore[arg-type]
    app = App()
    if mode is not None:
        with pytest.raises(ValueError, match="denial must be one of"):
            app.websocket("/", denial=mode)  # type: ignore[arg-type]


async def test_repeated_refusals_are_unaffected_by_a_server_that_edits_the_headers() -> None:
    # Plain refusals send headers made once; a server changing the list it got
    # must not change what the next refused client sees.
    app = App()

    @app.websocket("/room/{name}", guard=lambda req: req.params["name"] == "open")
    async def room(ws: WebSocket) -> None:
        await ws.accept()

    async def refuse_once() -> Message:
        starts: list[Message] = []

        async def send(message: Message) -> None:
            if message["type"] == "websocket.http.response.start":
                starts.append({**message, "headers": list(message["headers"])})
                message["headers"].append((b"x-added-by", b"server"))

        async def receive() -> Message:
            return {"type": "websocket.connect"}

        await app(ws_scope("/room/shut"), receive, send)
        return starts[0]

    plain = [(b"content-type", b"application/json"), (b"content-length", b"21")]
    expected = {"type": "websocket.http.response.start", "status": 403, "headers": plain}
    assert await refuse_once() == expected
    assert await refuse_once() == expected


@pytest.mark.parametrize("path", ["/guarded", "/response", "/close", "/missing"])
async def test_close_mode_accepts_with_a_subprotocol_the_client_offered(path: str) -> None:
    """A browser fails a 101 that picks none of the subprotocols it offered (1006, not 4xxx)."""
    scope = ws_scope(path, subprotocols=["chat.v2", "chat.v1"])
    sent = await drive(refusing_app("close"), scope, connect_then())
    assert sent[0] == {"type": "websocket.accept", "subprotocol": "chat.v2"}
    assert sent[1]["type"] == "websocket.close" and 4000 <= sent[1]["code"] < 5000


async def test_close_mode_prefers_the_routes_subprotocol_in_a_refusal() -> None:
    app = App(denial="close")

    def no_entry(req: Request) -> bool:
        return False

    @app.websocket("/", guard=no_entry, subprotocols=["chat.v1"])
    async def handler(ws: WebSocket) -> None:
        raise AssertionError("unreachable")

    sent = await drive(app, ws_scope("/", subprotocols=["chat.v2", "chat.v1"]), connect_then())
    assert sent == [
        {"type": "websocket.accept", "subprotocol": "chat.v1"},
        {"type": "websocket.close", "code": 4403, "reason": "Forbidden"},
    ]


async def test_http_mode_refusals_never_pick_a_subprotocol() -> None:
    scope = ws_scope("/guarded", subprotocols=["chat.v1"])
    sent = await drive(refusing_app("http"), scope, connect_then())
    assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 401
