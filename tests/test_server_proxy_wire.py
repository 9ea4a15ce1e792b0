"""`tinyws serve --proxy-headers` over real sockets, on both backends: an
app that echoes the scope's client and scheme, asked with and without
forwarding headers, from trusted and untrusted peers."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import pytest

from tests.servers import HOST, run_server

# --- over real sockets: tinyws serve --proxy-headers -------------------------------


def request(
    port: int, wire: bytes, source: str, tls: ssl.SSLContext | None, frame: bool = False
) -> bytes:
    """Send `wire` from `source` (over TLS with `tls`); read until the server
    closes or, when `frame`, until a complete WebSocket frame follows the head."""
    with contextlib.ExitStack() as stack:
        sock = socket.create_connection((HOST, port), timeout=10, source_address=(source, 0))
        stack.enter_context(sock)
        if tls is not None:
            sock = stack.enter_context(tls.wrap_socket(sock, server_hostname="localhost"))
        sock.sendall(wire)
        data = b""
        while len(data) < 1 << 16 and not (frame and _frame_in(data)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def _frame_in(data: bytes) -> bool:
    frames = data.partition(b"\r\n\r\n")[2]
    return len(frames) >= 2 and len(frames) >= 2 + frames[1]


def get_origin(
    port: int,
    pairs: Sequence[tuple[str, str]],
    source: str = HOST,
    tls: ssl.SSLContext | None = None,
) -> Any:
    lines = "".join(f"{name}: {value}\r\n" for name, value in pairs)
    wire = f"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{lines}\r\n".encode()
    reply = request(port, wire, source, tls)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    return json.loads(reply.partition(b"\r\n\r\n")[2])


def ws_origin(
    port: int,
    pairs: Sequence[tuple[str, str]],
    source: str = HOST,
    tls: ssl.SSLContext | None = None,
) -> Any:
    """The first text message of a WebSocket (short and unmasked, from a server)."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in pairs)
    wire = (
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"{lines}\r\n"
    ).encode()
    reply = request(port, wire, source, tls, frame=True)
    assert reply.startswith(b"HTTP/1.1 101"), reply
    frames = reply.partition(b"\r\n\r\n")[2]
    assert frames[0] == 0x81 and frames[1] < 126, frames
    return json.loads(frames[2 : 2 + frames[1]])


BACKENDS = ["asyncio", "trio"]
SPOOF = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_proxy_headers_from_a_trusted_peer(backend: str) -> None:
    args = ["--proxy-headers", "--backend", backend]
    with run_server("tinyws", "tests.apps.origin:app", args) as server:
        assert get_origin(server.port, SPOOF) == {"client": ["203.0.113.7", 0], "scheme": "https"}
        assert ws_origin(server.port, SPOOF) == {"client": ["203.0.113.7", 0], "scheme": "wss"}
        rfc = [("Forwarded", 'for="[2001:db8::5]:4711";proto=https')]
        assert ws_origin(server.port, rfc) == {"client": ["2001:db8::5", 4711], "scheme": "wss"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "args",
    [["--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8"], []],
    ids=["untrusted", "off"],
)
def test_serve_ignores_proxy_headers(backend: str, args: list[str]) -> None:
    with run_server("tinyws", "tests.apps.origin:app", [*args, "--backend", backend]) as server:
        seen = get_origin(server.port, SPOOF)
        assert (seen["client"][0], seen["scheme"]) == (HOST, "http")
        seen = ws_origin(server.port, SPOOF)
        assert (seen["client"][0], seen["scheme"]) == (HOST, "ws")
