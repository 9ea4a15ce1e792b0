"""Soak and load: what happens after the handshake, measured from outside.

Four scenarios against one server process (raw ASGI app `apps/soak_app.py`):

* handshakes: N handshakes (32 at a time); the server's RSS and open fds
  after the first 10,000 (or tenth, if less) and at the end: a leak shows as growth.
* idle: M idle WebSockets held for S seconds while the server pings them
  (the clients answer); memory per connection, none lost, and the latency
  of new handshakes while they are held.
* feed: a push-only handler (never in receive()) to K connections whose
  clients ping every second: messages and pongs received, connections lost.
* slow: a client that never reads (small receive buffer) beside 3 readers,
  each fed as fast as `send()` allows by its own handler: the readers'
  throughput, the server's memory, and when the stuck one is dropped.

    python benchmarks/soak.py [--smoke] [--servers tinyws,uvicorn-wsproto] [--json FILE]

`--smoke` runs each scenario at a size that takes seconds (what the tests
run); the full sizes are those of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import harness

FULL: dict[str, float] = {
    "handshakes": 1_000_000,
    "idle": 10_000,
    "hold": 60.0,
    "feed": 1000,
    "slow": 90.0,
}
SMOKE: dict[str, float] = {"handshakes": 2000, "idle": 200, "hold": 3.0, "feed": 50, "slow": 4.0}
CONCURRENCY = 32
FIRST = 10_000  # the handshake scenario compares the end with after this many (the issue's)
# In a smoke run the servers that have them ping every second, so that pings
# happen within it; full runs keep every server's defaults.
SMOKE_PINGS = ["--ws-ping-interval", "1", "--ws-ping-timeout", "1"]
PINGING = ("tinyws", "tinyws-uvloop", "tinyws-trio", "uvicorn", "uvicorn-wsproto")


class WS:
    """A minimal client WebSocket over asyncio streams (masked frames, pongs)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.messages = self.pongs = 0

    @classmethod
    async def open(cls, port: int, path: str, rcvbuf: int = 0) -> WS:
        sock = None
        if rcvbuf:
            import socket

            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (harness.HOST, port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        else:
            reader, writer = await asyncio.open_connection(harness.HOST, port, limit=1 << 20)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
            + key
            + b"\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {head[:40]!r}")
        return cls(reader, writer)

    def send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked)

    async def run(self) -> int:
        """Read frames until the connection ends; answer pings; return the close code."""
        try:
            while True:
                first, second = await self.reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    size = int.from_bytes(await self.reader.readexactly(2), "big")
                elif size == 127:
                    size = int.from_bytes(await self.reader.readexactly(8), "big")
                payload = await self.reader.readexactly(size)
                opcode = first & 0x0F
                if opcode == 0x9:
                    self.send(0xA, payload)
                elif opcode == 0xA:
                    self.pongs += 1
                elif opcode == 0x8:
                    code = int.from_bytes(payload[:2], "big") if payload else 1005
                    with contextlib.suppress(OSError):
                        self.send(0x8, payload[:2])
                    return code
                elif first & 0x80:
                    self.messages += 1
        except (asyncio.IncompleteReadError, OSError):
            return 1006
        finally:
            self.writer.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send(0x8, (1000).to_bytes(2, "big"))

    def abort(self) -> None:
        self.writer.transport.abort()


def fds(pgid: int) -> int:
    """Open fds of every process in the group (hypercorn's connections are its worker's)."""
    total = 0
    for pid in harness.group_pids(pgid):
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


async def handshakes(pid: int, port: int, n: int) -> dict[str, float]:
    done, first = 0, max(min(n // 10, FIRST), 1)
    sample: dict[str, float] = {"first": first}

    async def worker() -> None:
        nonlocal done
        while done < n:
            done += 1
            ws = await WS.open(port, "/accept")
            ws.close()
            await ws.run()
            if done == first:
                await asyncio.sleep(0.2)
                sample.update(rss_first=harness.group_memory_kib(pid), fds_first=fds(pid))

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    took = time.monotonic() - start
    await asyncio.sleep(0.5)
    rss, files = harness.group_memory_kib(pid), fds(pid)
    growth = 100 * (rss - sample["rss_first"]) / sample["rss_first"]
    return {
        **sample,
        "n": n,
        "per_second": n / took,
        "rss_end": rss,
        "fds_end": files,
        "rss_growth_pct": growth,
    }


async def idle(pid: int, port: int, n: int, hold: float) -> dict[str, float]:
    before = harness.group_memory_kib(pid)
    conns: list[WS] = []
    gate = asyncio.Semaphore(64)

    async def one() -> None:
        async with gate:
            conns.append(await WS.open(port, "/accept"))

    await asyncio.gather(*(one() for _ in range(n)))
    readers = [asyncio.ensure_future(ws.run()) for ws in conns]
    await asyncio.sleep(min(hold, 2.0))
    held = harness.group_memory_kib(pid)
    latencies = []
    end = time.monotonic() + hold
    while time.monotonic() < end:  # new handshakes while they are held
        start = time.perf_counter()
        ws = await WS.open(port, "/accept")
        latencies.append((time.perf_counter() - start) * 1000)
        ws.abort()
        await asyncio.sleep(0.05)
    lost = sum(1 for task in readers if task.done())
    for ws in conns:
        ws.close()
    await asyncio.wait(readers, timeout=10)
    return {
        "n": n,
        "kib_per_connection": (held - before) / n,
        "lost": lost,
        "handshake_ms_median": statistics.median(latencies),
        "handshake_ms_max": max(latencies),
    }


async def feed(port: int, n: int, hold: float) -> dict[str, float]:
    conns = [await WS.open(port, "/feed") for _ in range(n)]
    readers = [asyncio.ensure_future(ws.run()) for ws in conns]
    end = time.monotonic() + hold
    pings = 0
    while time.monotonic() < end:
        for ws in conns:
            ws.send(0x9, b"p")
        pings += 1
        await asyncio.sleep(1.0)
    await asyncio.sleep(0.5)
    lost = sum(1 for task in readers if task.done())
    pongs = min(ws.pongs for ws in conns)
    messages = min(ws.messages for ws in conns)
    for ws in conns:
        ws.close()
    await asyncio.wait(readers, timeout=10)
    return {"n": n, "lost": lost, "pings_each": pings, "min_pongs": pongs, "min_messages": messages}


async def slow(pid: int, port: int, hold: float, stuck: bool = True) -> dict[str, float]:
    """The stuck client (unless `stuck` is false: the readers alone) beside 3 readers."""
    held = await WS.open(port, "/flood", rcvbuf=4096) if stuck else None
    readers = [await WS.open(port, "/flood") for _ in range(3)]
    tasks = [asyncio.ensure_future(ws.run()) for ws in readers]
    start, wall = time.monotonic(), time.time()
    peak, ticks = 0, [(0.0, 0)]  # (seconds in, messages the 3 readers have read)
    while time.monotonic() - start < hold:
        await asyncio.sleep(0.5)
        peak = max(peak, harness.group_memory_kib(pid))
        ticks.append((time.monotonic() - start, sum(ws.messages for ws in readers)))
    rates = [ws.messages * 8 / 1024 / ticks[-1][0] for ws in readers]  # MiB/s
    ended = json.loads(await http_get(port, "/stats"))["flood_ended"]
    dropped = min(ended) - wall if ended else -1.0
    for ws in readers:
        ws.abort()
    if held is not None:
        held.abort()
        held.writer.close()
    await asyncio.wait(tasks, timeout=5)
    return {
        "reader_mib_s_min": min(rates),
        "reader_mib_s_max": max(rates),
        "peak_rss_kib": peak,
        "stuck_dropped_after_s": dropped,
        **phase_rates(ticks, dropped),
    }


def phase_rates(ticks: list[tuple[float, int]], dropped: float) -> dict[str, float]:
    """The readers' MiB/s each while the stuck one was held and after it was dropped."""
    before = [tick for tick in ticks if tick[0] <= dropped]
    if dropped <= 0 or len(before) < 2 or before[-1] == ticks[-1]:
        return {}
    (t1, m1), (t2, m2) = before[-1], ticks[-1]
    mib = 8 / 1024 / 3
    return {"mib_s_while_stuck": m1 * mib / t1, "mib_s_after_drop": (m2 - m1) * mib / (t2 - t1)}


async def http_get(port: int, path: str) -> str:
    """GET path over HTTP/1.1; the body whether sent with Content-Length, chunked or to EOF."""
    reader, writer = await asyncio.open_connection(harness.HOST, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
        status, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        if status.split(" ")[1:2] != ["200"]:
            raise RuntimeError(f"GET {path}: {status!r}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
        return body.decode()
    finally:
        writer.close()


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (RFC 9112 7.1): sizes in hex, extensions and trailers skipped."""
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16):
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, then the blank line
        pass
    return bytes(body)


@contextlib.contextmanager
def serving(name: str, tmp: Path, connections: int, smoke: bool) -> Iterator[tuple[int, int]]:
    port = harness.free_port()
    launch = harness.Launch(connections=connections)
    args = harness.SERVERS[name].command("soak_app:app", port, launch)
    if smoke and name in PINGING:
        args += SMOKE_PINGS
    log = tmp / f"{name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(harness.APPS_DIR)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=harness.APPS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        harness.wait_listening(process, port, log)
        yield process.pid, port
    finally:
        harness.stop(process)


async def scenarios(name: str, sizes: dict[str, float], tmp: Path) -> dict[str, object]:
    results: dict[str, object] = {}
    smoke = sizes is SMOKE
    with serving(name, tmp, int(sizes["idle"]), smoke) as (pid, port):
        results["handshakes"] = await handshakes(pid, port, int(sizes["handshakes"]))
    with serving(name, tmp, int(sizes["idle"]), smoke) as (pid, port):
        results["idle"] = await idle(pid, port, int(sizes["idle"]), sizes["hold"])
    with serving(name, tmp, int(sizes["feed"]), smoke) as (pid, port):
        results["feed"] = await feed(port, int(sizes["feed"]), sizes["hold"])
    with serving(name, tmp, 10, smoke) as (pid, port):
        results["slow"] = await slow(pid, port, sizes["slow"])
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="seconds, not minutes")
    parser.add_argument("--servers", type=harness.csv_choices(sorted(harness.SERVERS)))
    parser.add_argument("--json", type=Path, help="also write the results here")
    opts = parser.parse_args(argv)
    sizes = SMOKE if opts.smoke else FULL
    harness.raise_nofile_limit()
    import tempfile

    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="tinyws-soak-") as tmp:
        for name in opts.servers or ["tinyws"]:
            report[name] = asyncio.run(scenarios(name, sizes, Path(tmp)))
            print(name, json.dumps(report[name], indent=1))
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
