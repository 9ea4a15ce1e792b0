"""Mount points, disconnect scoping and process_response_ws over real sockets.

The same app (``tests.apps.lifecycle``) under the built-in server on both
backends and under uvicorn; the mount point also with ``--root-path``, as a
proxy that strips ``/api`` would have it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests import wire
from tests.servers import RunningServer, run_server

APP = "tests.apps.lifecycle:app"
SERVERS = {
    "tinyws-asyncio": ("tinyws", ["--backend", "asyncio"]),
    "tinyws-trio": ("tinyws", ["--backend", "trio"]),
    "uvicorn-wsproto": ("uvicorn-wsproto", []),
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    name, args = SERVERS[request.param]
    with run_server(name, APP, args) as running:
        yield running


@pytest.fixture(scope="module", params=list(SERVERS))
def mounted(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    name, args = SERVERS[request.param]
    with run_server(name, APP, [*args, "--root-path", "/api"]) as running:
        yield running


def test_root_path_routes_below_the_mount_point(mounted: RunningServer) -> None:
    response = wire.http_get(mounted.address, b"/where?x=1")
    assert response.status == 200, mounted.describe()
    body = json.loads(response.body)
    assert body["path"] == "/where"
    assert body["url"].endswith("/api/where?x=1") and "/api/api" not in body["url"]
    # The prefix is added by the (absent) proxy: asking for it again routes /api/where.
    assert wire.http_get(mounted.address, b"/api/where").status == 404


def test_root_path_routes_websockets_below_the_mount_point(mounted: RunningServer) -> None:
    conn, response = wire.connect_ws(mounted.address, b"/ws/where")
    with conn:
        assert response.status == 101, mounted.describe()
        frame = wire.read_frame(conn)
        body = json.loads(frame.payload)
    assert body["path"] == "/ws/where"
    assert body["url"].startswith("ws://") and body["url"].endswith("/api/ws/where")


def test_without_root_path_nothing_is_stripped(server: RunningServer) -> None:
    assert json.loads(wire.http_get(server.address, b"/where").body)["path"] == "/where"


def join(server: RunningServer) -> wire.WebSocket:
    conn, response = wire.connect_ws(server.address, b"/room")
    assert response.status == 101, server.describe()
    return wire.WebSocket(conn, response)


def test_a_member_who_left_does_not_end_the_sender_quietly(server: RunningServer) -> None:
    alice, bob = join(server), join(server)
    try:
        bob.send_text("hi")
        assert alice.receive().payload == b"hi"
        assert bob.close(1000).close_code == 1000
        bob.conn.close()
        time.sleep(0.2)  # let the server see bob go
        alice.send_text("anyone?")
        frame = alice.receive()
        # The app failed to deliver; alice did nothing wrong: a crash close, never 1000.
        assert frame.opcode == wire.CLOSE and frame.close_code == 1011, server.describe()
    finally:
        alice.conn.close()
    assert "error in WebSocket handler for /room" in server.log()


def test_process_response_ws_sees_status_and_close_code(server: RunningServer) -> None:
    conn, response = wire.connect_ws(server.address, b"/guarded")
    conn.close()
    assert response.status == 401
    conn, response = wire.connect_ws(server.address, b"/guarded?token=good")
    with conn:
        assert response.status == 101
        assert wire.read_frame(conn).close_code == 4000
        conn.send(wire.close_frame(4000))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ends = json.loads(wire.http_get(server.address, b"/ends").body)
        guarded = [end for end in ends if end["path"] == "/guarded"]
        if len(guarded) >= 2:
            break
        time.sleep(0.05)
    assert guarded[-2:] == [
        {"path": "/guarded", "status": 401, "close_code": None, "succeeded": False},
        {"path": "/guarded", "status": 101, "close_code": 4000, "succeeded": True},
    ]
