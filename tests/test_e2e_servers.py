"""One tinyws app, every ASGI server, real sockets, literal wire values.

Each server runs as its own process (see ``servers.py``), once per module
and server: ``tests.apps.e2e:app`` for the framework's behaviour and the raw
``tests.apps.probe:app`` to measure what the server itself offers. The
measurements are pinned in `SUPPORT` (and written up in docs/servers.md);
the expectations of the framework tests follow from them: where a server
lacks the denial extension, every denial is a 403, and where it sends no
lifespan events, ``on_startup`` hooks run lazily and ``lifespan=`` state is
absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests import wire
from tests.servers import SERVERS, RunningServer, run_server


@dataclass(frozen=True)
class Support:
    """What a server offers an app, as measured by ``tests.apps.probe``."""

    #: Advertises "websocket.http.response": denials keep their status.
    denial_extension: bool = True
    #: Sends lifespan events.
    lifespan: bool = True
    #: Passes the lifespan ``state`` dict on to each connection's scope.
    lifespan_state: bool = True
    #: Puts the app's close reason into the close frame.
    close_reason: bool = True
    #: Sends an empty text message (rather than dropping it).
    empty_message: bool = True
    #: Adds ``Upgrade`` / ``Sec-WebSocket-Accept`` to a denial response.
    upgrade_headers_on_denial: bool = False


SUPPORT = {
    "tinyws": Support(),
    "uvicorn-wsproto": Support(),
    "uvicorn": Support(),
    "hypercorn": Support(),
    "granian": Support(upgrade_headers_on_denial=True),
    "daphne": Support(
        denial_extension=False,
        lifespan=False,
        lifespan_state=False,
        close_reason=False,
        empty_message=False,
    ),
}
GREETING = "hello from lifespan"


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with run_server(request.param, "tests.apps.e2e:app") as running:
        yield running


@pytest.fixture(scope="module", params=list(SERVERS))
def probed(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with run_server(request.param, "tests.apps.probe:app") as running:
        yield running


def support(server: RunningServer) -> Support:
    return SUPPORT[server.name]


def denied_status(server: RunningServer, status: int) -> int:
    """What a client sees for a denial with ``status`` on this server."""
    return status if support(server).denial_extension else 403


def open_ws(server: RunningServer, target: bytes) -> wire.WebSocket:
    conn, response = wire.connect_ws(server.address, target)
    assert response.status_line.startswith(b"HTTP/1.1 101 "), server.describe()
    assert response.header(b"sec-websocket-accept") == wire.accept_value(wire.KEY)
    return wire.WebSocket(conn, response)


# -- what each server offers (measured with the raw probe app) ---------------


def test_server_support_matches_table(probed: RunningServer) -> None:
    http_facts = json.loads(wire.http_get(probed.address, b"/facts").body)
    ws = open_ws(probed, b"/ws/facts")
    ws_facts = json.loads(ws.receive().payload)
    ws.conn.close()
    extension = "websocket.http.response" in ws_facts["extensions"]
    measured = Support(
        denial_extension=extension,
        lifespan=http_facts["lifespan_startup"],
        lifespan_state=ws_facts["request_state"] == "yes" == http_facts["request_state"],
        **measure_quirks(probed, extension),
    )
    assert measured == SUPPORT[probed.name], (ws_facts, http_facts)


def measure_quirks(server: RunningServer, extension: bool) -> dict[str, bool]:
    ws = open_ws(server, b"/ws/quirks")
    first = ws.receive()
    if first.payload == b"":
        ws.receive()
    close = ws.receive()
    ws.conn.close()
    assert close.close_code == 4000, close
    upgrade_headers = False
    if extension:  # without it, the denial message would be dropped
        conn, response = wire.connect_ws(server.address, b"/ws/deny")
        conn.close()
        assert response.status_line.startswith(b"HTTP/1.1 404 ")
        assert response.body == b'{"error":"denied"}'
        upgrade_headers = response.header(b"upgrade") is not None
    return {
        "close_reason": close.close_reason == b"bye",
        "empty_message": first.payload == b"",
        "upgrade_headers_on_denial": upgrade_headers,
    }


def test_close_before_accept_is_403(probed: RunningServer) -> None:
    conn, response = wire.connect_ws(probed.address, b"/ws/close-early")
    conn.close()
    assert response.status_line.startswith(b"HTTP/1.1 403 "), probed.describe()


# -- the tinyws app ------------------------------------------------------------


def test_seed_scenario_refused_with_404_json(server: RunningServer) -> None:
    for target in (b"/foo", b"/foo?token=bad"):
        conn, response = wire.connect_ws(server.address, target)
        conn.close()
        expected = denied_status(server, 404)
        assert response.status_line.startswith(b"HTTP/1.1 %d " % expected), server.describe()
        upgrade = response.header(b"upgrade")
        assert (upgrade is not None) == support(server).upgrade_headers_on_denial
        if expected == 404:
            assert response.header(b"content-type") == b"application/json"
            assert response.header(b"content-length") == str(len(response.body)).encode()
            assert json.loads(response.body) == {"error": "no such room", "path": "/foo"}


def test_seed_scenario_accepted_echoes(server: RunningServer) -> None:
    ws = open_ws(server, b"/foo?token=good")
    ws.send_text("hello")
    assert ws.receive() == wire.Frame(wire.TEXT, b"hello")
    ws.send_bytes(b"\x00\xff")
    assert ws.receive() == wire.Frame(wire.BINARY, b"\x00\xff")
    assert ws.close(1000).close_code == 1000
    ws.conn.close()


def test_echo_route(server: RunningServer) -> None:
    ws = open_ws(server, b"/echo")
    texts = ["caf\u00e9 \u2615", "x" * 70_000]
    if support(server).empty_message:
        texts.append("")
    for text in texts:
        ws.send_text(text)
        assert ws.receive() == wire.Frame(wire.TEXT, text.encode())
    assert ws.close(1000).close_code == 1000
    ws.conn.close()


def test_unknown_websocket_path_is_denied_404(server: RunningServer) -> None:
    conn, response = wire.connect_ws(server.address, b"/nowhere")
    conn.close()
    expected = denied_status(server, 404)
    assert response.status_line.startswith(b"HTTP/1.1 %d " % expected), server.describe()


def test_http_route(server: RunningServer) -> None:
    response = wire.http_get(server.address, b"/hello")
    assert response.status_line.startswith(b"HTTP/1.1 200 "), server.describe()
    assert response.header(b"content-type") == b"application/json"
    assert json.loads(response.body) == {"hello": "world"}


def test_unknown_http_path_is_404(server: RunningServer) -> None:
    response = wire.http_get(server.address, b"/nowhere")
    assert response.status_line.startswith(b"HTTP/1.1 404 "), server.describe()


def expected_state(server: RunningServer) -> dict[str, object]:
    # on_startup runs once either way: from lifespan events, or lazily before
    # the first request where the server sends none (daphne). The state of a
    # lifespan= context manager exists only with real lifespan events.
    greeting = GREETING if support(server).lifespan else None
    return {"greeting": greeting, "startup": ["on_startup"]}


def test_lifespan_state_over_http(server: RunningServer) -> None:
    response = wire.http_get(server.address, b"/state")
    assert response.status_line.startswith(b"HTTP/1.1 200 "), server.describe()
    assert json.loads(response.body) == expected_state(server)
    if not support(server).lifespan:
        # The lifespan= context manager could not be entered: tinyws says so.
        assert "lifespan" in server.log().lower(), server.describe()


def test_lifespan_state_over_websocket(server: RunningServer) -> None:
    ws = open_ws(server, b"/ws/state")
    frame = ws.receive()
    assert frame.opcode == wire.TEXT
    assert json.loads(frame.payload) == expected_state(server)
    assert ws.receive().close_code == 1000
    ws.conn.close()


def test_denial_close_mode_accepts_then_closes_4401(server: RunningServer) -> None:
    ws = open_ws(server, b"/closing")
    frame = ws.receive()
    ws.conn.close()
    assert frame.opcode == wire.CLOSE
    assert frame.close_code == 4401
    reason = b"token required" if support(server).close_reason else b""
    assert frame.close_reason == reason


def test_no_traceback_in_server_output(server: RunningServer) -> None:
    assert "Traceback" not in server.log(), server.describe()
