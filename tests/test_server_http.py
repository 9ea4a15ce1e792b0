"""The built-in server over real loopback sockets: HTTP/1.1."""

from __future__ import annotations

import anyio
import pytest

from tests.server_helpers import (
    connect,
    echo_app,
    exchange,
    read_body,
    read_response,
    read_until_close,
    running,
    upgrade_head,
)
from tinyws.types import Receive, Scope, Send

pytestmark = pytest.mark.anyio


async def body_echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = await read_body(receive)
    info = f"{scope['method']} {scope['path']} {scope['query_string'].decode()} ".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": info + body})


async def test_get_and_keep_alive() -> None:
    async with running(body_echo) as server, await connect(server) as stream:
        for n in range(3):
            await stream.send(f"GET /a/{n}?x=1 HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            response = await read_response(stream)
            assert response.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"\r\ncontent-length: 13\r\n" in response
            assert response.endswith(f"GET /a/{n} x=1 ".encode())


async def test_pipelined_requests_answered_in_order() -> None:
    request = b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n"
    data = b"".join(request % n for n in range(5)) + b"GET /last HTTP/1.1\r\nHost: t\r\n"
    async with running(body_echo) as server:
        reply = await exchange(server, data + b"Connection: close\r\n\r\n")
    bodies = [part.split(b"\r\n\r\n")[-1] for part in reply.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"GET /%d  " % n for n in range(5)] + [b"GET /last  "]


async def test_chunked_request_and_streamed_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"!"})

    request = (
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    async with running(app) as server:
        reply = await exchange(server, request)
    assert b"transfer-encoding: chunked" in reply.lower()
    assert reply.endswith(b"\r\n\r\n5\r\nabcde\r\n1\r\n!\r\n0\r\n\r\n")


async def test_expect_100_continue() -> None:
    async with running(body_echo) as server, await connect(server) as stream:
        await stream.send(
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        with anyio.fail_after(5):
            interim = await stream.receive()
        assert interim.startswith(b"HTTP/1.1 100 ")
        await stream.send(b"data")
        assert (await read_response(stream)).endswith(b"POST /up  data")


async def test_body_over_limit_is_413() -> None:
    async with running(body_echo, max_body_bytes=10) as server:
        reply = await exchange(server, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 413 ")
        chunked = (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
        )
        assert (await exchange(server, chunked)).startswith(b"HTTP/1.1 413 ")
        assert (
            await exchange(
                server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"[:-2] + b"Connection: close\r\n\r\n"
            )
        ).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # no Host
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"400",
        ),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", b"505"),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
    ],
)
async def test_bad_requests_answered_and_closed(request_bytes: bytes, status: bytes) -> None:
    async with running(body_echo) as server:
        reply = await exchange(server, request_bytes)
        assert reply.startswith(b"HTTP/1.1 " + status + b" ")
        assert b"Traceback" not in reply
        assert b"connection: close" in reply.lower()
        ok = await exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200 ")


async def test_absolute_form_target_becomes_path() -> None:
    async with running(body_echo) as server:
        reply = await exchange(
            server,
            b"GET http://example.com/p/q?z=2 HTTP/1.1\r\n"
            b"Host: example.com\r\nConnection: close\r\n\r\n",
        )
    assert reply.endswith(b"GET /p/q z=2 ")


async def test_app_errors_become_500_and_server_keeps_serving() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/raise":
            raise ValueError("secret detail")
        if scope["path"] == "/ok":
            await echo_app(scope, receive, send)

    async with running(app) as server:
        for path in (b"/raise", b"/silent"):
            reply = await exchange(server, b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path)
            assert reply.startswith(b"HTTP/1.1 500 ")
            assert b"secret" not in reply
        ok = await exchange(server, b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert ok.endswith(b"ok")


async def test_scope() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await echo_app(scope, receive, send)

    async with running(app, root_path="/api") as server:
        await exchange(
            server, b"GET /a%20b?q=1 HTTP/1.1\r\nHost: t\r\nX-Thing: V\r\nConnection: close\r\n\r\n"
        )
    scope = scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/api/a b"
    assert scope["raw_path"] == b"/api/a%20b"
    assert scope["root_path"] == "/api"
    assert scope["query_string"] == b"q=1"
    assert (b"x-thing", b"V") in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ("127.0.0.1", server.port)


async def test_http_disconnect_reaches_app() -> None:
    seen = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        message = await receive()  # blocks until the client goes away
        assert message == {"type": "http.disconnect"}
        seen.set()

    async with running(app) as server:
        async with await connect(server) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await anyio.sleep(0.05)
        with anyio.fail_after(5):
            await seen.wait()


async def test_head_timeout_closes_slow_client() -> None:
    async with running(body_echo, head_timeout=0.3) as server, await connect(server) as stream:
        await stream.send(b"GET / HTTP/1.1\r\nHo")
        with anyio.fail_after(3):
            assert await read_until_close(stream) == b""


async def test_keepalive_timeout_closes_idle_connection() -> None:
    async with running(body_echo, keepalive_timeout=0.3) as server, await connect(server) as stream:
        await stream.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await read_response(stream)
        with anyio.fail_after(3):
            assert await read_until_close(stream) == b""


async def test_max_connections_refuses_with_503() -> None:
    async with running(echo_app, max_connections=1) as server, await connect(server) as first:
        # An open WebSocket: not evictable like a head-waiter or a slow body.
        await first.send(upgrade_head("/ws"))
        assert (await read_response(first)).startswith(b"HTTP/1.1 101 ")
        reply = await exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 503 ")


async def test_client_not_reading_applies_backpressure() -> None:
    sent = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * 65536
        for _ in range(1000):  # 64 MiB if nothing pushed back
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += 1

    async with running(app) as server, await connect(server) as stream:
        await stream.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await anyio.sleep(0.5)
        assert sent < 200  # the app waits for the socket instead of buffering


async def test_413_survives_a_client_still_sending_its_body() -> None:
    body = b"x" * (4 << 20)
    head = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
    async with running(body_echo, max_body_bytes=1024) as server, await connect(server) as stream:
        await stream.send(head)
        await stream.send(body)  # the server reads and drops it rather than resetting
        reply = await read_until_close(stream)
        assert reply.startswith(b"HTTP/1.1 413 ")


async def test_keep_alive_when_the_app_never_reads_the_request() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hi"})

    async with running(app) as server, await connect(server) as stream:
        for _ in range(3):
            await stream.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert (await read_response(stream)).endswith(b"\r\n\r\nhi")


async def test_stalled_request_body_is_cut_off() -> None:
    got: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        got.append(await read_body(receive))

    async with running(app, head_timeout=0.3) as server, await connect(server) as stream:
        await stream.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        with anyio.fail_after(3):
            await read_until_close(stream)
    assert got == [b"abc"]  # the app saw http.disconnect after the partial body
