"""The seed scenario over ``wss://`` and ``https://`` against ``tinyws serve --ssl-*``.

``/foo?token=good`` is a WebSocket echo; any other token is refused with a
404 and a JSON body. Clients are the ``websockets`` library and the stdlib's
``http.client``, verifying a trustme certificate, on both server backends.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator

import pytest
import trustme
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.servers import RunningServer, run_server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def server(
    ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RunningServer]:
    pem = tmp_path_factory.mktemp("tls") / "server.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(pem))
    flags = ["--ssl-certfile", str(pem), "--backend", request.param]
    with run_server("tinyws", "tests.apps.e2e:app", flags) as running:
        yield running


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def url(server: RunningServer, path: str) -> str:
    return f"wss://localhost:{server.port}{path}"


def test_wss_echo(server: RunningServer, client_context: ssl.SSLContext) -> None:
    with connect(url(server, "/foo?token=good"), ssl=client_context, open_timeout=5) as ws:
        ws.send("hello over TLS")
        assert ws.recv(timeout=5) == "hello over TLS"
    assert "https://" in server.log(), server.describe()  # the startup line names the scheme


def test_wss_denial_is_a_404_with_its_json_body(
    server: RunningServer, client_context: ssl.SSLContext
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(url(server, "/foo?token=bad"), ssl=client_context, open_timeout=5)
    response = refused.value.response
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body or b"") == {"error": "no such room", "path": "/foo"}


def test_https_get(server: RunningServer, client_context: ssl.SSLContext) -> None:
    conn = http.client.HTTPSConnection("localhost", server.port, context=client_context, timeout=5)
    try:
        conn.request("GET", "/hello")
        reply = conn.getresponse()
        assert (reply.status, json.loads(reply.read())) == (200, {"hello": "world"})
        assert reply.getheader("date")
    finally:
        conn.close()


def test_plain_http_on_the_tls_port_is_closed(server: RunningServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            conn.request("GET", "/hello")
            conn.getresponse()
    finally:
        conn.close()
    assert "Traceback" not in server.log()


def test_the_log_has_no_traceback(server: RunningServer) -> None:
    assert "Traceback" not in server.log(), server.describe()
