"""docs/deployment.md's nginx config, run as written in a real nginx in front
of `tinyws serve --proxy-headers`: WebSockets pass, and the app sees the
client's real address and `https`/`wss` whatever the client claims.

The client connects from 127.0.0.3, nginx reaches tinyws from 127.0.0.1
(the only trusted proxy), so a spoofed address is told apart from the real
one on loopback. Needs the nginx binary (CI installs Debian's nginx)."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.servers import HOST, ROOT, free_port, run_server
from tests.test_server_proxy_wire import get_origin, ws_origin

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)
pytestmark = pytest.mark.skipif(NGINX is None, reason="needs the nginx binary (apt nginx)")

CLIENT = "127.0.0.3"
SPOOF = [("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=6.6.6.6;proto=http")]


def docs_config() -> str:
    page = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    match = re.search(r"^```nginx\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
    assert match is not None, "docs/deployment.md has no nginx block"
    return match[1]


def substitute(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the docs' nginx block no longer has {old!r}"
    return text.replace(old, new)


@contextlib.contextmanager
def nginx(upstream: int, tmp: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    """nginx with the docs' config on a free port; yields it and a client context."""
    ca = trustme.CA()
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(tmp / "site.pem"))
    port = free_port()
    site = docs_config()
    site = substitute(site, "server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    site = substitute(site, "listen 443 ssl;", f"listen {HOST}:{port} ssl;")
    site = substitute(site, "/etc/ssl/example.com/fullchain.pem", str(tmp / "site.pem"))
    site = substitute(site, "/etc/ssl/example.com/privkey.pem", str(tmp / "site.pem"))
    temp = " ".join(f"{kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy"))
    temp += " fastcgi_temp_path x; uwsgi_temp_path x; scgi_temp_path x;"
    (tmp / "nginx.conf").write_text(
        f"daemon off; master_process off; pid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'error.log'} info;\n"
        "events { worker_connections 64; }\n"
        f"http {{ access_log off; {temp}\n{site}\n}}\n"
    )
    assert NGINX is not None
    command = [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, process.communicate()[1].decode()
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1):
                break
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.05)
        client = ssl.create_default_context()
        ca.configure_trust(client)
        yield port, client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_documented_nginx_config(backend: str, tmp_path: Path) -> None:
    args = ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--backend", backend]
    with (
        run_server("tinyws", "tests.apps.origin:app", args) as server,
        nginx(server.port, tmp_path) as (port, tls),
    ):
        seen = get_origin(port, SPOOF, source=CLIENT, tls=tls)
        assert (seen["client"][0], seen["scheme"]) == (CLIENT, "https")
        seen = ws_origin(port, SPOOF, source=CLIENT, tls=tls)
        assert (seen["client"][0], seen["scheme"]) == (CLIENT, "wss")
