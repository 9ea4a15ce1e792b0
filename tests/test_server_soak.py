"""The soak and load benchmarks (benchmarks/soak.py) at their smoke size:
kept alive, and their verdicts on the built-in server checked."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts import BENCHMARKS, load_benchmark


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # soak.py imports harness as a sibling
    return load_benchmark("soak")


def test_soak_smoke_run_keeps_every_connection_and_drops_the_stuck_one(
    soak: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "soak.json"
    assert soak.main(["--smoke", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["tinyws"]
    assert result["handshakes"]["fds_end"] <= result["handshakes"]["fds_first"]
    assert result["handshakes"]["rss_growth_pct"] < 10
    assert result["idle"]["lost"] == 0
    assert result["idle"]["kib_per_connection"] < 24
    feed = result["feed"]
    assert feed["lost"] == 0
    assert feed["min_pongs"] == feed["pings_each"]  # every ping answered by a push-only app
    assert feed["min_messages"] > 0
    slow = result["slow"]
    assert slow["reader_mib_s_min"] > 1  # the readers were not held up by the stuck one
    assert 0 < slow["stuck_dropped_after_s"] < 4  # pinged, no pong: dropped


def test_stats_are_read_from_uvicorn_which_sends_them_chunked(
    soak: ModuleType, tmp_path: Path
) -> None:
    with soak.serving("uvicorn", tmp_path, 10, True) as (_pid, port):
        raw = asyncio.run(_raw_get(soak.harness.HOST, port, "/stats"))
        assert b"transfer-encoding: chunked" in raw.partition(b"\r\n\r\n")[0].lower()
        stats = json.loads(asyncio.run(soak.http_get(port, "/stats")))
    assert stats == {"feed_ended": [], "flood_ended": []}


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'3;ext=1\r\n{"a\r\nA\r\n": [1, 2]}\r\n0\r\nX-Trailer: t\r\n\r\n'
)
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize(
    ("response", "body"),
    [(CHUNKED, '{"a": [1, 2]}'), (LENGTH, "{}")],
    ids=["chunked-extension-trailer", "content-length"],
)
def test_http_get_undoes_the_framing_without_waiting_for_eof(
    soak: ModuleType, response: bytes, body: str
) -> None:
    # The server never closes: a reader that waited for EOF would time out.
    assert asyncio.run(_one_response(soak.http_get, soak.harness.HOST, response)) == body


def test_http_get_rejects_a_malformed_chunk(soak: ModuleType) -> None:
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n"
    with pytest.raises(ValueError, match="CRLF"):
        asyncio.run(_one_response(soak.http_get, soak.harness.HOST, bad))


async def _one_response(
    get: Callable[[int, str], Awaitable[str]], host: str, response: bytes
) -> str:
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await done.wait()
        writer.close()

    server = await asyncio.start_server(handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await asyncio.wait_for(get(port, "/stats"), timeout=5)
    finally:
        done.set()
        server.close()
        await server.wait_closed()


async def _raw_get(host: str, port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    return data


def test_readers_rates_split_at_the_stuck_ones_drop(soak: ModuleType) -> None:
    ticks = [(0.0, 0), (1.0, 384), (2.0, 768), (3.0, 1536)]  # 384 messages of 8 KiB: 1 MiB each
    assert soak.phase_rates(ticks, 2.2) == {"mib_s_while_stuck": 1.0, "mib_s_after_drop": 2.0}
    assert soak.phase_rates(ticks, -1.0) == {}  # never dropped
    assert soak.phase_rates(ticks, 3.5) == {}  # dropped after the last sample
