"""TLS on the built-in server, over real sockets on both backends: wss://
and https://, garbage and silence instead of a ClientHello, and the log."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.abc
import pytest
import trustme
from wsproto.events import AcceptConnection, CloseConnection, TextMessage

from tests.apps.origin import app as origin
from tests.server_helpers import WSClient, read_response, read_until_close, running
from tinyws.server import Server
from tinyws.server.tls import build_ssl_context

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def contexts(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "server.pem")
    )
    client = ssl.create_default_context()
    ca.configure_trust(client)
    yield build_ssl_context(str(tmp_path / "server.pem")), client


async def connect_tls(server: Server, client: ssl.SSLContext) -> anyio.abc.ByteStream:
    return await anyio.connect_tcp(
        "127.0.0.1", server.port, ssl_context=client, tls_hostname="localhost"
    )


async def test_wss_and_https(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = contexts
    async with running(origin, ssl=server_ctx) as server:
        async with await connect_tls(server, client_ctx) as stream:
            ws = WSClient(stream)  # type: ignore[arg-type]
            assert isinstance(await ws.handshake("/"), AcceptConnection)
            seen = json.loads(await ws.receive_message())
            assert seen["scheme"] == "wss"
            assert isinstance(await ws.next_event(), CloseConnection)
        async with await connect_tls(server, client_ctx) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = await read_response(stream)
            assert reply.startswith(b"HTTP/1.1 200")
            assert json.loads(reply.partition(b"\r\n\r\n")[2])["scheme"] == "https"


async def test_garbage_is_closed_at_once_and_logged_in_one_line(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "tinyws")
    async with (
        running(origin, ssl=contexts[0], head_timeout=30) as server,
        await anyio.connect_tcp("127.0.0.1", server.port) as stream,
    ):
        start = time.monotonic()
        await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await read_until_close(stream) == b""
        assert time.monotonic() - start < 5
    lines = [r.getMessage() for r in caplog.records if "TLS" in r.getMessage()]
    assert len(lines) == 1 and lines[0].endswith(
        "TLS handshake failed: not a TLS ClientHello (plain HTTP)"
    )
    assert not any(r.exc_info for r in caplog.records)


async def test_silence_is_closed_at_the_head_timeout_while_others_are_served(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "tinyws")
    server_ctx, client_ctx = contexts
    async with (
        running(origin, ssl=server_ctx, head_timeout=1.0) as server,
        await anyio.connect_tcp("127.0.0.1", server.port) as silent,
    ):
        start = time.monotonic()
        async with await connect_tls(server, client_ctx) as stream:
            ws = WSClient(stream)  # type: ignore[arg-type]
            assert isinstance(await ws.handshake("/"), AcceptConnection)
            assert isinstance(await ws.next_event(), TextMessage)
            assert isinstance(await ws.next_event(), CloseConnection)
        assert await read_until_close(silent) == b""
        assert 0.9 < time.monotonic() - start < 5
    assert [r.getMessage().split(" - ")[1] for r in caplog.records if "TLS" in r.getMessage()] == [
        "TLS handshake failed: timed out"
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_a_client_that_distrusts_the_certificate(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "tinyws")
    other = ssl.create_default_context()
    trustme.CA().configure_trust(other)
    async with running(origin, ssl=contexts[0]) as server:

        def handshake() -> None:  # the stdlib's client, which sends its alert
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                other.wrap_socket(sock, server_hostname="localhost")

        with pytest.raises(ssl.SSLCertVerificationError):
            await anyio.to_thread.run_sync(handshake)
        with anyio.fail_after(5):
            while not any("TLS" in r.getMessage() for r in caplog.records):
                await anyio.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if "TLS" in r.getMessage()]
    assert lines[0].endswith("TLS handshake failed: client alert: unknown ca"), lines
