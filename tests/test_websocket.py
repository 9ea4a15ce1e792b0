"""The WebSocket object: its state machine, messages, subprotocols and misuse errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.asgi import DISCONNECT, connect_then, drive, ws_scope
from tinyws import App, Response, WebSocket, WebSocketDisconnect, WebSocketStateError
from tinyws.types import Message

pytestmark = pytest.mark.anyio

Handler = Callable[[WebSocket], Awaitable[None]]


async def run(
    handler: Handler,
    *incoming: Message,
    subprotocols: tuple[str, ...] = (),
    offered: tuple[str, ...] = (),
) -> list[Message]:
    app = App()
    app.websocket("/", subprotocols=list(offered))(handler)
    return await drive(app, ws_scope("/", subprotocols=subprotocols), connect_then(*incoming))


async def test_misuse_raises_a_runtime_error_subclass_naming_the_state() -> None:
    errors: list[str] = []

    async def handler(ws: WebSocket) -> None:
        for attempt in (ws.send("early"), ws.receive()):
            with pytest.raises(WebSocketStateError) as info:
                await attempt
            errors.append(str(info.value))
        await ws.accept()
        with pytest.raises(WebSocketStateError) as info:
            await ws.accept()
        errors.append(str(info.value))
        await ws.close()
        with pytest.raises(RuntimeError) as caught:
            await ws.receive()
        errors.append(str(caught.value))
        with pytest.raises(WebSocketStateError):
            await ws.deny(ws_response())

    sent = await run(handler)
    assert errors == [
        "send() needs the WebSocket to be ACCEPTED, but it is CONNECTING",
        "receive() needs the WebSocket to be ACCEPTED, but it is CONNECTING",
        "accept() needs the WebSocket to be CONNECTING, but it is ACCEPTED",
        "receive() needs the WebSocket to be ACCEPTED, but it is CLOSED",
    ]
    assert sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}


def ws_response() -> Response:
    return Response()


async def test_state_properties_follow_the_connection() -> None:
    seen: list[tuple[bool, bool, int | None]] = []

    async def handler(ws: WebSocket) -> None:
        seen.append((ws.accepted, ws.closed, ws.close_code))
        await ws.accept()
        seen.append((ws.accepted, ws.closed, ws.close_code))
        await ws.close(4001, "done")
        seen.append((ws.accepted, ws.closed, ws.close_code))
        await ws.close()  # closing twice does nothing

    sent = await run(handler)
    assert seen == [(False, False, None), (True, False, None), (True, True, 4001)]
    assert sent[1:] == [{"type": "websocket.close", "code": 4001, "reason": "done"}]


async def test_typed_receive_and_send() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        assert await ws.receive_text() == "t"
        assert await ws.receive_bytes() == b"b"
        assert await ws.receive_json() == {"a": [1, 2]}
        assert await ws.receive_json() == [True]  # JSON in a binary frame
        with pytest.raises(TypeError, match="expected a text message"):
            await ws.receive_text()
        await ws.send_text("x")
        await ws.send_bytes(b"y")
        await ws.send_json({"k": "é"})
        with pytest.raises(TypeError):
            await ws.send(123)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await ws.send_text(b"nope")  # type: ignore[arg-type]

    sent = await run(
        handler,
        {"type": "websocket.receive", "text": "t"},
        {"type": "websocket.receive", "bytes": b"b"},
        {"type": "websocket.receive", "text": '{"a": [1, 2]}'},
        {"type": "websocket.receive", "bytes": b"[true]"},
        {"type": "websocket.receive", "bytes": b"bin"},
    )
    assert sent[1:4] == [
        {"type": "websocket.send", "text": "x"},
        {"type": "websocket.send", "bytes": b"y"},
        {"type": "websocket.send", "text": '{"k":"é"}'},
    ]


async def test_route_subprotocols_pick_the_first_client_offer_the_route_lists() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()

    sent = await run(
        handler, subprotocols=("v0", "chat.v2", "chat.v1"), offered=("chat.v1", "chat.v2")
    )
    assert sent[0] == {"type": "websocket.accept", "subprotocol": "chat.v2"}
    sent = await run(handler, subprotocols=("other",), offered=("chat.v1",))
    assert sent[0] == {"type": "websocket.accept", "subprotocol": None}


async def test_explicit_subprotocol_and_headers() -> None:
    chosen: list[str | None] = []

    async def handler(ws: WebSocket) -> None:
        with pytest.raises(ValueError, match="not offered"):
            await ws.accept("nope")
        with pytest.raises(ValueError, match="CR, LF"):
            await ws.accept(headers={"x-a": "1\r\nx-b: 2"})
        await ws.accept("b", headers=[("X-Room", "lobby")])
        chosen.append(ws.subprotocol)

    sent = await run(handler, subprotocols=("a", "b"))
    assert sent[0] == {
        "type": "websocket.accept",
        "subprotocol": "b",
        "headers": [(b"x-room", b"lobby")],
    }
    assert chosen == ["b"]


@pytest.mark.parametrize(
    ("reason", "sent_reason"),
    [
        ("x" * 200, "x" * 123),
        ("€" * 50, "€" * 41),  # 3-byte characters: 41 * 3 = 123
        ("a" + "€" * 50, "a" + "€" * 40),  # the 42nd would straddle byte 123
        ("bad \udcff surrogate", "bad ? surrogate"),
    ],
)
async def test_close_reason_is_utf8_of_at_most_123_bytes(reason: str, sent_reason: str) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(1000, reason)

    sent = await run(handler)
    assert sent[-1] == {"type": "websocket.close", "code": 1000, "reason": sent_reason}


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 5000, "1000"])
async def test_invalid_close_codes_are_refused(code: object) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        with pytest.raises(ValueError, match="not a close code"):
            await ws.close(code)  # type: ignore[arg-type]

    sent = await run(handler)
    assert sent[-1] == {
        "type": "websocket.close",
        "code": 1000,
        "reason": "",
    }  # still closed cleanly


async def test_iteration_ends_on_disconnect_and_skips_the_connect_message() -> None:
    got: list[str | bytes] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        async for message in ws:
            got.append(message)

    await run(
        handler,
        {"type": "websocket.receive", "text": "a"},
        {"type": "websocket.receive", "bytes": b"b"},
        DISCONNECT,
    )
    assert got == ["a", b"b"]


async def test_iteration_records_the_peers_close_code_and_keeps_reporting_it() -> None:
    """Once the client has gone, every later read says so again, with the client's code."""
    seen: list[object] = []

    async def handler(ws: WebSocket) -> None:
        with pytest.raises(WebSocketStateError, match="CONNECTING"):
            async for _ in ws:
                pass
        await ws.accept()
        async for _ in ws:
            pass
        seen.extend([ws.close_code, ws.close_reason, ws.closed])
        async for _ in ws:
            seen.append("iterated after the client left")
        for read in (ws.receive, ws.receive_text, lambda: ws.send("late")):
            with pytest.raises(WebSocketDisconnect) as gone:
                await read()
            seen.append((gone.value.code, gone.value.reason))

    await run(handler, {"type": "websocket.disconnect", "code": 4321, "reason": "done"})
    assert seen == [4321, "done", True, (4321, "done"), (4321, "done"), (4321, "done")]


@pytest.mark.parametrize(
    ("disconnect", "code", "reason"),
    [
        ({"type": "websocket.disconnect", "code": 4001, "reason": "bye"}, 4001, "bye"),
        ({"type": "websocket.disconnect"}, 1005, ""),
    ],
)
async def test_receive_raises_the_peers_close_code_and_reason(
    disconnect: Message, code: int, reason: str
) -> None:
    raised: list[tuple[int, str, int | None, str]] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.receive_text()
        raised.append((info.value.code, info.value.reason, ws.close_code, ws.close_reason))

    await run(handler, disconnect)
    assert raised == [(code, reason, code, reason)]


async def test_send_after_the_peer_left_is_a_disconnect() -> None:
    outcome: list[int] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.send("late")
        except WebSocketDisconnect as exc:
            outcome.append(exc.code)

    async def send(message: Message) -> None:
        if message["type"] == "websocket.send":
            raise OSError("connection lost")

    app = App()
    app.websocket("/")(handler)
    messages = connect_then()

    async def receive() -> Message:
        return messages.pop(0)

    await app(ws_scope("/"), receive, send)
    assert outcome == [1006]


def test_disconnect_is_a_connection_error_with_code_and_reason() -> None:
    exc = WebSocketDisconnect(4001, "bye")
    assert isinstance(exc, ConnectionError)
    assert (exc.code, exc.reason) == (4001, "bye")
    assert WebSocketDisconnect().code == 1000
    assert issubclass(WebSocketStateError, RuntimeError)
