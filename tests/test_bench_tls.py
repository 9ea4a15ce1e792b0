"""``tinyws bench wss://``: verification, the phases of each handshake, the negotiated TLS.

The servers are uvicorn and the built-in server (on both backends) with
``--ssl-certfile``/``--ssl-keyfile`` on the end-to-end app (``/foo?token=good``
accepts, anything else is a 404), with
certificates made by trustme: a throw-away CA the client trusts only when
given ``--cacert``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.bench_servers import raw_server
from tests.servers import RunningServer, run_server

APP = "tests.apps.e2e:app"
BACKENDS = ["asyncio", "trio"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


TLS_SERVERS = {
    "uvicorn-wsproto": ("uvicorn-wsproto", []),
    "tinyws-asyncio": ("tinyws", ["--backend", "asyncio"]),
    "tinyws-trio": ("tinyws", ["--backend", "trio"]),
}


def _tls_server(
    cert: trustme.LeafCert, folder: Path, name: str = "uvicorn-wsproto"
) -> Iterator[RunningServer]:
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    for i, blob in enumerate(cert.cert_chain_pems):
        blob.write_to_path(str(certfile), append=i > 0)
    flags = ["--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile), "--log-level", "error"]
    server_name, extra = TLS_SERVERS[name]
    with run_server(server_name, APP, [*flags, *extra]) as server:
        yield server


@pytest.fixture(scope="module", params=list(TLS_SERVERS))
def server(
    ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RunningServer]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    yield from _tls_server(cert, tmp_path_factory.mktemp("tls"), request.param)


def bench(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "tinyws", "bench", *args, "--quiet", "--json", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, json.loads(done.stdout) if done.stdout else {}


# The TLS driver runs on uvloop (asyncio's default here), asyncio's own loop and trio.
RUNTIMES = [["--backend", "asyncio"], ["--no-uvloop"], ["--backend", "trio"]]


@pytest.mark.parametrize("flags", RUNTIMES)
def test_trusted_with_cacert(server: RunningServer, ca_file: Path, flags: list[str]) -> None:
    url = f"wss://127.0.0.1:{server.port}/foo?token=good"
    done, data = bench(url, "-n", "40", "-c", "4", "--cacert", str(ca_file), *flags)
    assert done.returncode == 0, done.stderr + server.describe()
    assert (data["statuses"], data["errors"]) == ({"101": 40}, {})
    phases = data["phases_us"]
    assert list(phases) == ["connect", "tls", "upgrade"]
    for values in phases.values():
        assert list(values) == ["p50", "p90", "p99", "max"]
        assert 0 < values["p50"] <= values["p90"] <= values["p99"] <= values["max"]
    # The phases add up to the handshake: each p50 is below the whole one's.
    assert sum(v["p50"] for v in phases.values()) <= data["latency_us"]["p99"]
    assert data["tls"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert data["tls"]["cipher"]  # e.g. TLS_AES_256_GCM_SHA384
    text = done.stderr  # --json - moved it there
    assert f"tls          {data['tls']['version']}, {data['tls']['cipher']}" in text
    assert "\n  tls " in text and "\n  connect " in text and "\n  upgrade " in text


def test_denial_over_tls_is_a_response(server: RunningServer, ca_file: Path) -> None:
    url = f"wss://127.0.0.1:{server.port}/foo"
    done, data = bench(url, "-n", "10", "--cacert", str(ca_file))
    assert done.returncode == 0, done.stderr
    assert (data["statuses"], data["errors"]) == ({"404": 10}, {})


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_ca_is_a_verify_error(server: RunningServer, backend: str) -> None:
    url = f"wss://127.0.0.1:{server.port}/foo?token=good"
    done, data = bench(url, "-n", "5", "--backend", backend)
    assert done.returncode == 1
    assert (data["statuses"], data["errors"]) == ({}, {"tls-verify": 5})
    assert "errors       tls-verify: 5" in done.stderr
    assert "first error  tls-verify: unable to get local issuer certificate" in done.stderr
    assert "give its CA with --cacert PEM, or skip the check with --insecure" in done.stderr
    assert "tls" not in data and data["phases_us"]["connect"]["p50"] is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_insecure_skips_verification(server: RunningServer, backend: str) -> None:
    url = f"wss://127.0.0.1:{server.port}/foo?token=good"
    done, data = bench(url, "-n", "10", "--insecure", "--backend", backend)
    assert done.returncode == 0, done.stderr
    assert (data["statuses"], data["errors"]) == ({"101": 10}, {})


def test_wrong_host_name_is_a_verify_error(ca: trustme.CA, ca_file: Path, tmp_path: Path) -> None:
    # Signed by the trusted CA, but for another name than the URL's.
    for running in _tls_server(ca.issue_cert("example.test"), tmp_path):
        url = f"wss://127.0.0.1:{running.port}/foo?token=good"
        done, data = bench(url, "-n", "3", "--cacert", str(ca_file))
        assert done.returncode == 1
        assert data["errors"] == {"tls-verify": 3}
        assert (
            "first error  tls-verify: IP address mismatch, certificate is not valid for "
            "'127.0.0.1'." in done.stderr
        )


@pytest.mark.parametrize("flags", [["--backend", "trio"], ["--no-uvloop"], []])
def test_plain_ws_has_connect_and_upgrade_phases(flags: list[str]) -> None:
    with raw_server() as plain:
        done, data = bench(plain.url(), "-n", "20", *flags)
    assert done.returncode == 0, done.stderr
    phases = data["phases_us"]
    assert list(phases) == ["connect", "upgrade"] and "tls" not in data
    assert phases["connect"]["p50"] > 0 and phases["upgrade"]["p50"] > 0
    assert phases["upgrade"]["max"] <= data["latency_us"]["max"]
