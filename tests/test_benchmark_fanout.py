"""benchmarks/fanout.py stays runnable (``--smoke``: tinyws on memory:// and on
redis:// across 2 workers, over real sockets), and its client's bookkeeping
notices a lost, reordered or refused delivery instead of counting it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.redis_server import require_redis
from tests.scripts import BENCHMARKS, load_benchmark

SMOKE_TIMEOUT = 90.0  # about 10 s on an idle machine


def test_smoke_every_member_gets_every_message_in_order(tmp_path: Path) -> None:
    require_redis()
    out = tmp_path / "fanout.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "fanout.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads(out.read_text())
    assert [(r["case"]["server"], r["case"]["backend"]) for r in runs] == [
        ("tinyws", "memory"),
        ("tinyws", "redis"),
    ]
    for run in runs:
        assert (run["case"]["members"], run["messages"]) == (50, 20)
        assert (run["received"], run["complete"], run["whole"]) == (1000, 50, True)
        assert (run["out_of_order"], run["closed"]) == (0, 0)
        assert 0 < run["p50_ms"] <= run["p99_ms"] and run["deliveries_per_s"] > 0
    assert done.stdout.count("every member got every message in order") == 2
    assert "| tinyws | redis:// | 50 |" in done.stdout


@pytest.fixture(scope="module")
def client() -> ModuleType:
    return load_benchmark("fanout_client")


def frame(text: bytes) -> bytes:
    return bytes([0x81, len(text)]) + text  # a server frame: FIN + text, unmasked


def message(seq: int, published_ns: int = 1) -> bytes:
    return f"{seq:08d} {published_ns:020d} ".ljust(64, "x").encode()


def members(client: ModuleType, count: int, messages: int) -> tuple[Any, list[Any]]:
    tally = client.Tally(count, messages)
    joined = [client.Member(tally) for _ in range(count)]
    for member in joined:
        member.data_received(b"HTTP/1.1 101 Switching Protocols\r\n\r\n" + frame(b"joined"))
    return tally, joined


def test_every_message_in_order_makes_a_member_whole(client: ModuleType) -> None:
    async def main() -> None:
        tally, (first, second) = members(client, 2, 3)
        assert tally.all_joined.is_set()
        wire = b"".join(frame(message(seq)) for seq in range(3))
        first.data_received(wire[:5])  # frames split anywhere still parse
        first.data_received(wire[5:])
        second.data_received(wire)
        assert (tally.received, tally.complete, tally.out_of_order) == (6, 2, 0)
        assert tally.all_received.is_set() and tally.first_publish_ns == 1

    asyncio.run(main())


def test_a_gap_or_a_reordering_is_counted_not_hidden(client: ModuleType) -> None:
    async def main() -> None:
        tally, (gap, swap) = members(client, 2, 3)
        gap.data_received(frame(message(0)) + frame(message(2)))
        swap.data_received(frame(message(1)) + frame(message(0)) + frame(message(2)))
        assert (tally.complete, tally.out_of_order) == (0, 2)
        assert not tally.all_received.is_set()  # 5 of 6 deliveries

    asyncio.run(main())


def test_a_member_closed_early_ends_the_wait_and_is_counted(client: ModuleType) -> None:
    async def main() -> None:
        tally, (member,) = members(client, 1, 3)
        member.data_received(frame(message(0)) + bytes([0x88, 2]) + (1013).to_bytes(2, "big"))
        assert (tally.closed, tally.complete) == (1, 0)
        assert tally.all_received.is_set()

    asyncio.run(main())


def test_a_refused_handshake_is_reported(client: ModuleType) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Refuse, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tally = client.Tally(2, 1)

        def checkpoint() -> None:
            raise AssertionError("nothing is published when members are refused")

        with pytest.raises(RuntimeError, match=r"0 of 2 members joined.*503 Service Unavailable"):
            await client.fan_out(port, tally, 10.0, 1.0, checkpoint)
        server.close()

    asyncio.run(main())


class Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
