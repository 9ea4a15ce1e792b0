"""Memory per idle open WebSocket: each server holding N connections.

Each server runs the raw ASGI app (``/accept`` accepts and waits) as a real
process, pinned to CPU 0 when it can be. This process is the client: it
opens a warm-up batch of connections (so that imports and lazy allocations
are paid), waits until the server is quiet and reads its resident memory
(VmRSS of every process in its group), then opens N more, each a complete
opening handshake with its ``Sec-WebSocket-Accept`` checked, keeps them
open and idle (answering pings), waits until the server is quiet again and
reads its memory again. The difference over N is the memory per idle
WebSocket. Then the client closes every connection and the server's process
group is stopped.

    python benchmarks/idle_memory.py                   # N=5000, every server here
    python benchmarks/idle_memory.py -n 200 --servers tinyws

The soft limit on open files is raised to the hard limit first (for the
client and, inherited, the server); it must leave room for N connections.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import harness
import render

from tinyws.rfc6455 import accept_key

DEFAULT_SERVERS = (
    "tinyws",
    "tinyws-uvloop",
    "tinyws-trio",
    "uvicorn-wsproto",
    "uvicorn",
    "hypercorn",
    "granian",
)
WARMUP = 50  # connections opened and held before the first reading
IN_FLIGHT = 64  # handshakes at once while opening
HANDSHAKE_TIMEOUT = 10.0
QUIET_WINDOW = 0.5  # seconds in which the server must use under QUIET_CPU
QUIET_CPU = 0.005  # seconds of CPU
QUIET_TIMEOUT = 15.0
CLOSE_TIMEOUT = 5.0
FD_MARGIN = 64


class Idle(asyncio.Protocol):
    """One client WebSocket: handshake, then stay idle, answering pings."""

    __slots__ = ("buf", "closed", "key", "opened", "transport", "upgraded")

    def __init__(self, request_head: bytes, opened: asyncio.Future[None]) -> None:
        self.key = base64.b64encode(os.urandom(16))
        self.buf = request_head + self.key + b"\r\n\r\n"  # the request, until it is sent
        self.opened = opened
        self.upgraded = False
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.buf)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            problem = check_head(head, self.key)
            if problem:
                self._fail(problem)
                return
            self.upgraded = True
            if not self.opened.done():
                self.opened.set_result(None)
        self._frames()

    def _frames(self) -> None:
        """Answer pings; note a close; skip anything else the server sends."""
        assert self.transport is not None
        while len(self.buf) >= 2:
            opcode, size, start = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(self.buf[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < start + size:
                return
            payload, self.buf = self.buf[start : start + size], self.buf[start + size :]
            if opcode == 0x9 and size <= 125:  # ping: a pong, masked with a zero key
                self.transport.write(bytes((0x8A, 0x80 | size)) + b"\0\0\0\0" + payload)
            elif opcode == 0x8:
                self.transport.close()
                return

    def _fail(self, problem: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(problem))
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Start the close handshake: a masked close frame, code 1000."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"\x88\x82\0\0\0\0\x03\xe8")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc or 'closed by the server'}")
        if not self.closed.done():
            self.closed.set_result(None)


def check_head(head: bytes, key: bytes) -> str:
    """What is wrong with a response head to an upgrade, or "" if it is a good 101."""
    status_line, *lines = head.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or parts[1] != b"101":
        return f"answered {status_line.decode(errors='replace')!r}"
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"sec-websocket-accept") != accept_key(key):
        return "a 101 with a wrong Sec-WebSocket-Accept"
    return ""


class Client:
    """The idle connections held open against one server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.head = (
            f"GET /accept HTTP/1.1\r\nHost: {harness.HOST}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
        ).encode()
        self.connections: list[Idle] = []

    async def open(self, count: int) -> None:
        """Open ``count`` more WebSockets; raise on the first that fails."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one() -> None:
            async with gate:
                opened: asyncio.Future[None] = loop.create_future()
                _, protocol = await loop.create_connection(
                    lambda: Idle(self.head, opened), harness.HOST, self.port
                )
                self.connections.append(protocol)
                await asyncio.wait_for(opened, HANDSHAKE_TIMEOUT)

        tasks = [asyncio.ensure_future(one()) for _ in range(count)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def open_count(self) -> int:
        return sum(1 for c in self.connections if c.upgraded and not c.closed.done())

    async def close(self) -> None:
        """Close handshakes for all; abort whatever has not closed in time."""
        for connection in self.connections:
            connection.close()
        pending = [c.closed for c in self.connections if not c.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)
        for connection in self.connections:
            if connection.transport is not None and not connection.closed.done():
                connection.transport.abort()
        await asyncio.sleep(0)


async def quiet_memory(pgid: int) -> tuple[int, bool]:
    """Wait until the group is quiet; return its memory (KiB) and whether it got quiet."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    before = harness.cpu_snapshot(pgid)
    memory = harness.group_memory_kib(pgid)
    while time.monotonic() < deadline:
        await asyncio.sleep(QUIET_WINDOW)
        after = harness.cpu_snapshot(pgid)
        now = harness.group_memory_kib(pgid)
        used, _ = harness.cpu_between(before, after)
        if used < QUIET_CPU and abs(now - memory) <= 64:
            return now, True
        before, memory = after, now
    return memory, False


async def hold(pgid: int, port: int, server: str, n: int, warmup: int) -> render.Memory:
    client = Client(port)
    try:
        await client.open(warmup)
        before, quiet_before = await quiet_memory(pgid)
        started = time.monotonic()
        await client.open(n)
        opening = time.monotonic() - started
        after, quiet_after = await quiet_memory(pgid)
        held = client.open_count - warmup
        if held != n:
            raise RuntimeError(f"{n - held} of {n} connections closed while idle")
        return render.Memory(server, n, before, after, quiet_before and quiet_after, opening)
    finally:
        await client.close()


@contextlib.contextmanager
def client_on_cpu(cpu: int, pin: bool) -> Iterator[None]:
    """Run this process (the client) on ``cpu`` for a while."""
    if not pin:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def measure(server: str, n: int, warmup: int, taskset: str | None, tmp: Path) -> render.Memory:
    """Memory per idle WebSocket of one server; raise RuntimeError or OSError on failure."""
    launch = harness.Launch(connections=n + warmup)
    log = tmp / f"{server}-memory.log"
    with (
        harness.server_process(server, "raw", taskset, log, launch) as (pid, port),
        client_on_cpu(1, taskset is not None),
    ):
        try:
            return asyncio.run(asyncio.wait_for(hold(pid, port, server, n, warmup), 300))
        except (asyncio.TimeoutError, ConnectionError) as exc:
            raise RuntimeError(str(exc) or type(exc).__name__) from exc


def measure_all(
    servers: list[str], n: int, warmup: int, taskset: str | None
) -> tuple[list[render.Memory], dict[str, str], list[str]]:
    """(results, skipped server -> why, failures) for every server asked for."""
    results: list[render.Memory] = []
    skipped: dict[str, str] = {}
    failures: list[str] = []
    limit = harness.raise_nofile_limit()
    if limit < n + warmup + FD_MARGIN:
        failures.append(f"idle memory: open-file limit {limit} is too low for {n} connections")
        return results, skipped, failures
    with tempfile.TemporaryDirectory(prefix="tinyws-memory-") as tmp:
        for server in servers:
            why = harness.unavailable(server, "raw")
            if why is not None:
                skipped[server] = why
                print(f"skip memory {server}: {why}", file=sys.stderr)
                continue
            started = time.monotonic()
            try:
                result = measure(server, n, warmup, taskset, Path(tmp))
            except (RuntimeError, OSError) as exc:
                failures.append(f"idle memory {server}: {exc}")
                print(f"FAIL memory {server}: {exc}", file=sys.stderr)
                continue
            results.append(result)
            took = time.monotonic() - started
            print(
                f"memory {server}: {result.per_connection_kib:.1f} KiB per idle WebSocket"
                f" (N={n}, {took:.1f} s)",
                file=sys.stderr,
            )
    return results, skipped, failures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("-n", type=int, default=5000, help="idle WebSockets to measure (default 5000)")
    add("--warmup", type=int, default=WARMUP, help=f"connections opened first (default {WARMUP})")
    add(
        "--servers",
        type=harness.csv_choices(list(harness.SERVERS)),
        default=list(DEFAULT_SERVERS),
        help=f"default: {','.join(DEFAULT_SERVERS)}",
    )
    add("--json", metavar="FILE", help="also write the results as JSON")
    opts = parser.parse_args(argv)
    taskset = harness.find_taskset()
    results, skipped, failures = measure_all(opts.servers, opts.n, opts.warmup, taskset)
    print("\n".join(render.memory_table(results)))
    for server, why in skipped.items():
        print(f"skipped {server}: {why}")
    if opts.json:
        Path(opts.json).write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
