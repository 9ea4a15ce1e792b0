"""The built-in server over real loopback sockets: WebSocket."""

from __future__ import annotations

import anyio
import pytest
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from tests.server_helpers import (
    connect,
    echo_app,
    exchange,
    read_until_close,
    running,
    upgrade_head,
    ws_client,
)
from tinyws.types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


async def test_echo_text_binary_and_fragments() -> None:
    async with running(echo_app) as server, ws_client(server) as client:
        assert isinstance(await client.handshake(), AcceptConnection)
        await client.send_text("héllo")
        assert await client.receive_message() == "héllo"
        await client.send(BytesMessage(data=b"\x00\x01"))
        assert await client.receive_message() == b"\x00\x01"
        await client.send(TextMessage(data="frag", message_finished=False))
        await client.send(TextMessage(data="mented", message_finished=True))
        assert await client.receive_message() == "fragmented"
        await client.send(CloseConnection(code=1000))
        assert isinstance(await client.next_event(), CloseConnection)


async def test_scope_subprotocol_and_accept_headers() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await receive()
        await send(
            {"type": "websocket.accept", "subprotocol": "chat.v2", "headers": [(b"x-extra", b"1")]}
        )
        await send({"type": "websocket.close", "code": 1000})

    async with running(app) as server, ws_client(server) as client:
        event = await client.handshake("/room?x=1", subprotocols=["chat.v1", "chat.v2"])
        assert isinstance(event, AcceptConnection)
        assert event.subprotocol == "chat.v2"
        assert (b"x-extra", b"1") in event.extra_headers
    scope = scopes[0]
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/room"
    assert scope["query_string"] == b"x=1"
    assert scope["subprotocols"] == ["chat.v1", "chat.v2"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["asgi"]["spec_version"] == "2.4"


async def test_denial_response_is_real_http() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send(
            {"type": "websocket.http.response.body", "body": b'{"title":', "more_body": True}
        )
        await send({"type": "websocket.http.response.body", "body": b'"no"}'})

    async with running(app) as server, ws_client(server) as client:
        event = await client.handshake()
        assert isinstance(event, RejectConnection)
        assert event.status_code == 401
        assert (b"www-authenticate", b"Bearer") in event.headers
        assert (b"content-length", b"14") in event.headers
        assert client.reject_body == b'{"title":"no"}'


@pytest.mark.parametrize("mode", ["close", "return", "raise"])
async def test_handshake_outcomes_without_accept(mode: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if mode == "close":
            await send({"type": "websocket.close", "code": 1000})
        elif mode == "raise":
            raise RuntimeError("boom")

    async with running(app) as server:
        reply = await exchange(server, upgrade_head())
        expected = b"403" if mode == "close" else b"500"
        assert reply.startswith(b"HTTP/1.1 " + expected + b" ")
        assert b"boom" not in reply


async def test_app_raising_after_accept_closes_1011() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    async with running(app) as server, ws_client(server) as client:
        await client.handshake()
        assert (await client.expect_close()).code == 1011


@pytest.mark.parametrize(
    ("close", "code", "reason"),
    [(b"\x88\x85\0\0\0\0\x0f\xa1bye", 4001, "bye"), (b"\x88\x80\0\0\0\0", 1005, "")],
)
async def test_client_close_code_and_reason_reach_app(close: bytes, code: int, reason: str) -> None:
    got: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())

    async with running(app) as server, ws_client(server) as client:
        await client.handshake()
        await client.stream.send(close)  # raw, zero mask: wsproto never sends an empty close
        assert isinstance(await client.next_event(), CloseConnection)
    assert got == [{"type": "websocket.disconnect", "code": code, "reason": reason}]


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (upgrade_head(version="8"), b"426"),
        (upgrade_head(key=""), b"400"),
        (upgrade_head(key="short"), b"400"),
        (upgrade_head().replace(b"Sec-WebSocket-Key", b"X-Nothing"), b"400"),
    ],
)
async def test_bad_handshakes(head: bytes, status: bytes) -> None:
    async with running(echo_app) as server:
        reply = await exchange(server, head)
        assert reply.startswith(b"HTTP/1.1 " + status + b" ")
        if status == b"426":
            assert b"\r\nsec-websocket-version: 13\r\n" in reply
        async with ws_client(server) as client:
            assert isinstance(await client.handshake(), AcceptConnection)


async def test_unusual_head_goes_through_h11() -> None:
    folded = upgrade_head(extra="X-Folded: a\r\n b\r\n")  # obs-fold: h11 unfolds it
    absolute = upgrade_head().replace(b"GET / ", b"GET http://test/ ")
    async with running(echo_app) as server:
        for head in (folded, absolute):
            async with await connect(server) as stream:
                await stream.send(head)
                with anyio.fail_after(5):
                    assert (await stream.receive()).startswith(b"HTTP/1.1 101 ")


async def test_message_too_big_closes_1009() -> None:
    async with running(echo_app, ws_max_message_bytes=10) as server, ws_client(server) as client:
        await client.handshake()
        await client.send_text("x" * 11)
        assert (await client.next_event()).code == 1009  # type: ignore[attr-defined]


async def test_invalid_utf8_closes_1007() -> None:
    async with running(echo_app) as server, ws_client(server) as client:
        await client.handshake()
        await client.stream.send(
            b"\x81\x82abcd" + bytes(a ^ b for a, b in zip(b"\xc3\x28", b"ab", strict=True))
        )
        assert (await client.next_event()).code == 1007  # type: ignore[attr-defined]


async def test_protocol_error_closes_1002() -> None:
    async with running(echo_app) as server, ws_client(server) as client:
        await client.handshake()
        await client.stream.send(b"\x81\x00")  # unmasked client frame
        assert (await client.next_event()).code == 1002  # type: ignore[attr-defined]


async def test_server_pings_idle_client_and_drops_silent_one() -> None:
    options = {"ws_ping_interval": 0.2, "ws_ping_timeout": 0.3}
    async with running(echo_app, **options) as server:
        async with ws_client(server) as client:
            await client.handshake()
            event = await client.next_event()
            assert isinstance(event, Ping)
        async with await connect(server) as stream:
            await stream.send(upgrade_head())
            with anyio.fail_after(5):
                data = await read_until_close(stream)  # never answers the ping
            assert data.startswith(b"HTTP/1.1 101 ")


async def test_deflate_only_when_offered() -> None:
    async with running(echo_app) as server:
        async with ws_client(server) as client:
            event = await client.handshake(extensions=[PerMessageDeflate()])
            assert isinstance(event, AcceptConnection)
            assert [e.name for e in event.extensions] == ["permessage-deflate"]
            await client.send_text("z" * 1000)
            assert await client.receive_message() == "z" * 1000
        async with ws_client(server) as client:
            event = await client.handshake()
            assert isinstance(event, AcceptConnection)
            assert event.extensions == []


async def test_shutdown_closes_websockets_with_1001() -> None:
    async with running(echo_app) as server, ws_client(server) as client:
        await client.handshake()
        server.shutdown()
        assert (await client.expect_close()).code == 1001


async def test_compressed_message_over_limit_closes_1009() -> None:
    async with running(echo_app, ws_max_message_bytes=65536) as server, ws_client(server) as client:
        await client.handshake(extensions=[PerMessageDeflate()])
        await client.send(BytesMessage(data=bytes(8 << 20)))  # inflates a thousandfold
        close = await client.expect_close()
        assert close.code == 1009


async def test_pongs_count_even_when_the_app_is_not_reading() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await anyio.sleep(1.2)  # never calls receive() meanwhile
        await send({"type": "websocket.send", "text": "still here"})
        await send({"type": "websocket.close", "code": 1000})

    options = {"ws_ping_interval": 0.1, "ws_ping_timeout": 0.3}
    async with running(app, **options) as server, ws_client(server) as client:
        await client.handshake()
        pings = 0
        while True:
            event = await client.next_event()
            if isinstance(event, Ping):
                pings += 1
                await client.send(event.response())
                continue
            assert isinstance(event, TextMessage)
            assert event.data == "still here"
            break
        assert pings >= 2
