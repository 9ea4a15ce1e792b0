"""SPEC section 4, row by row, as the literal ASGI messages the app sends."""

from __future__ import annotations

import json
import logging

import pytest

from tests.asgi import DISCONNECT, connect_then, drive, ws_scope
from tinyws import App, HTTPError, Request, Response, WebSocket

pytestmark = pytest.mark.anyio


def denial(status: int, body: bytes, content_type: bytes = b"application/json") -> list[object]:
    return [
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        },
        {"type": "websocket.http.response.body", "body": body},
    ]


def make_app() -> App:
    app = App()

    @app.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            await ws.send(message)

    @app.websocket("/http-error")
    async def http_error(ws: WebSocket) -> None:
        raise HTTPError(401, "Login first", "no session", {"WWW-Authenticate": "Bearer"})

    @app.websocket("/deny")
    async def deny(ws: WebSocket) -> None:
        await ws.deny(Response("gone", 410, {"x-why": "moved"}))

    @app.websocket("/silent")
    async def silent(ws: WebSocket) -> None:
        return None

    @app.websocket("/close-first")
    async def close_first(ws: WebSocket) -> None:
        await ws.close(4000, "nope")

    @app.websocket("/boom")
    async def boom(ws: WebSocket) -> None:
        raise LookupError("secret detail")

    @app.websocket("/after/{what}")
    async def after(ws: WebSocket, what: str) -> None:
        await ws.accept()
        await ws.receive()
        if what == "http-error":
            raise HTTPError(404, "Room gone")
        if what == "boom":
            raise LookupError("secret detail")

    return app


async def test_accept_and_echo_until_disconnect() -> None:
    sent = await drive(
        make_app(),
        ws_scope("/echo"),
        connect_then(
            {"type": "websocket.receive", "text": "hi"},
            {"type": "websocket.receive", "bytes": b"\x00"},
            DISCONNECT,
        ),
    )
    assert sent == [
        {"type": "websocket.accept", "subprotocol": None},
        {"type": "websocket.send", "text": "hi"},
        {"type": "websocket.send", "bytes": b"\x00"},
    ]


async def test_unknown_path_is_a_404_denial() -> None:
    sent = await drive(make_app(), ws_scope("/nowhere"), connect_then())
    assert sent == denial(404, b'{"title":"Not Found"}')


async def test_http_error_before_accept_is_a_denial_with_its_headers() -> None:
    sent = await drive(make_app(), ws_scope("/http-error"), connect_then())
    body = b'{"title":"Login first","description":"no session"}'
    assert sent[0]["headers"] == [
        (b"www-authenticate", b"Bearer"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    assert sent[0]["status"] == 401
    assert sent[1:] == [{"type": "websocket.http.response.body", "body": body}]


async def test_deny_sends_exactly_that_response() -> None:
    sent = await drive(make_app(), ws_scope("/deny"), connect_then())
    assert sent == [
        {
            "type": "websocket.http.response.start",
            "status": 410,
            "headers": [
                (b"x-why", b"moved"),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"4"),
            ],
        },
        {"type": "websocket.http.response.body", "body": b"gone"},
    ]


async def test_returning_without_accept_is_a_403_denial() -> None:
    sent = await drive(make_app(), ws_scope("/silent"), connect_then())
    assert sent == denial(403, b'{"title":"Forbidden"}')


async def test_close_before_accept_in_http_mode_is_a_close_message() -> None:
    # ASGI defines it: the server answers a close before accept with 403.
    sent = await drive(make_app(), ws_scope("/close-first"), connect_then())
    assert sent == [{"type": "websocket.close", "code": 4000, "reason": "nope"}]


async def test_unexpected_exception_before_accept_is_a_generic_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="tinyws"):
        sent = await drive(make_app(), ws_scope("/boom"), connect_then())
    assert sent == denial(500, b'{"title":"Internal Server Error"}')
    assert b"secret" not in sent[1]["body"]
    assert "secret detail" in caplog.text  # the traceback goes to the log


async def test_http_error_after_accept_closes_4000_plus_status() -> None:
    sent = await drive(
        make_app(),
        ws_scope("/after/http-error"),
        connect_then({"type": "websocket.receive", "text": "x"}),
    )
    assert sent == [
        {"type": "websocket.accept", "subprotocol": None},
        {"type": "websocket.close", "code": 4404, "reason": "Room gone"},
    ]


async def test_exception_after_accept_closes_1011(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="tinyws"):
        sent = await drive(
            make_app(),
            ws_scope("/after/boom"),
            connect_then({"type": "websocket.receive", "text": "x"}),
        )
    assert sent[-1] == {"type": "websocket.close", "code": 1011, "reason": ""}
    assert "secret detail" in caplog.text


async def test_normal_return_after_accept_closes_1000() -> None:
    sent = await drive(
        make_app(),
        ws_scope("/after/fine"),
        connect_then({"type": "websocket.receive", "text": "x"}),
    )
    assert sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}


async def test_client_disconnect_raises_with_code_and_reason() -> None:
    app = App()
    seen: list[tuple[int, str]] = []

    @app.websocket("/")
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive()
        except ConnectionError as exc:  # WebSocketDisconnect is a ConnectionError
            seen.append((exc.code, exc.reason))  # type: ignore[attr-defined]
            assert ws.closed and ws.close_code == 4321
            raise

    sent = await drive(
        app,
        ws_scope("/"),
        connect_then({"type": "websocket.disconnect", "code": 4321, "reason": "bye"}),
    )
    assert seen == [(4321, "bye")]
    assert sent == [
        {"type": "websocket.accept", "subprotocol": None}
    ]  # nothing after the peer left


async def test_disconnect_without_code_is_1005() -> None:
    app = App()
    codes: list[int] = []

    @app.websocket("/")
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        async for _ in ws:
            pass
        codes.append(ws.close_code or 0)

    await drive(app, ws_scope("/"), connect_then({"type": "websocket.disconnect"}))
    assert codes == [1005]


async def test_no_extension_means_no_extension_messages() -> None:
    # daphne drops them silently and the client hangs: only websocket.close is allowed.
    app = make_app()
    for path in ("/nowhere", "/http-error", "/deny", "/silent", "/boom"):
        sent = await drive(app, ws_scope(path, extensions={}), connect_then())
        assert sent == [{"type": "websocket.close", "code": 1000, "reason": ""}], path
    sent = await drive(app, {**ws_scope("/deny"), "extensions": None}, connect_then())
    assert [m["type"] for m in sent] == ["websocket.close"]


async def test_a_denied_connection_never_reaches_accept() -> None:
    app = App()

    def refuse(req: Request) -> bool:
        return False

    @app.websocket("/", guard=refuse)
    async def handler(ws: WebSocket) -> None:
        raise AssertionError("the handler must not run")

    sent = await drive(app, ws_scope("/"), connect_then())
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 403


@pytest.mark.parametrize("mode", ["http", "close", "auto"])
async def test_denial_body_is_one_message_with_explicit_length(mode: str) -> None:
    app = App(denial=mode)  # type: ignore[arg-type]

    @app.websocket("/")
    async def handler(ws: WebSocket) -> None:
        await ws.deny(Response.json({"ü": "é"}, 422))

    sent = await drive(app, ws_scope("/"), connect_then())
    if mode == "close":
        assert sent == [
            {"type": "websocket.accept"},
            {"type": "websocket.close", "code": 4422, "reason": "Unprocessable Entity"},
        ]
        return
    body = json.dumps({"ü": "é"}, ensure_ascii=False, separators=(",", ":")).encode()
    assert sent == denial(422, body)


async def test_204_denial_has_no_type_nor_length() -> None:
    app = App()

    @app.websocket("/")
    async def handler(ws: WebSocket) -> None:
        await ws.deny(Response(status=204))

    sent = await drive(app, ws_scope("/"), connect_then())
    assert sent == [
        {"type": "websocket.http.response.start", "status": 204, "headers": []},
        {"type": "websocket.http.response.body", "body": b""},
    ]
