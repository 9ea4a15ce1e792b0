"""Fan-out: one publisher, many members, 64-byte text messages.

Each member is a WebSocket subscribed to one channel; the publisher asks the
server to publish ``--messages`` messages at a fixed rate. Measured per run:
deliveries per second (every message received by every member, over the time
from the first publish to the last receive), p50/p99 delivery latency (the
publish time is in the message; CLOCK_MONOTONIC is system-wide on Linux),
the server's CPU time over that span, and whether every member got every
message in order.

Servers: tinyws + tinyws.broadcast (benchmarks/apps/fanout_tinyws.py) and
encode/broadcaster + Starlette on uvicorn (benchmarks/apps/fanout_broadcaster.py),
each with ``memory://`` in one process and ``redis://`` across ``--workers``
processes, on a redis-server this script starts and stops. Servers and
redis-server run on CPU 0 (every worker: a one-core comparison), the client
on CPU 1; the cases run interleaved, round after round.

    python benchmarks/fanout.py                 # the figures (1,000 and 10,000 members)
    python benchmarks/fanout.py --smoke         # 50 members, 20 messages, tinyws only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout_client
import harness

SERVERS = ("tinyws", "broadcaster")
BACKENDS = ("memory", "redis")
TASKSET = harness.find_taskset()
NEEDS = {"tinyws": ("tinyws", "uvloop"), "broadcaster": ("broadcaster", "starlette", "uvicorn")}


@dataclass(frozen=True)
class Case:
    server: str
    backend: str
    members: int

    @property
    def name(self) -> str:
        return f"{self.server} {self.backend}:// {self.members} members"


@dataclass(frozen=True)
class Result:
    case: Case
    round: int
    messages: int
    received: int
    complete: int  # members that got every message in order
    out_of_order: int
    closed: int
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    redis_cpu_s: float
    client_cpu_s: float  # this process (the members and the publisher's client)

    @property
    def whole(self) -> bool:
        return self.complete == self.case.members


def server_command(case: Case, port: int, workers: int) -> list[str]:
    common = ["--host", harness.HOST, "--port", str(port), "--backlog", "4096"]
    if case.server == "tinyws":
        args = ["-m", "tinyws", "serve", "fanout_tinyws:app", *common, "--loop", "uvloop"]
        args += ["--log-level", "warning", "--no-access-log"]
        args += ["--max-connections", str(case.members + 1000)]
    else:
        args = ["-m", "uvicorn", "fanout_broadcaster:app", *common, "--loop", "uvloop"]
        args += ["--http", "httptools", "--ws", "websockets-sansio"]
        args += ["--log-level", "warning", "--no-access-log"]
    if case.backend == "redis":
        args += ["--workers", str(workers)]
    return [sys.executable, *args]


@contextlib.contextmanager
def started(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server pinned to CPU 0 in a session of its own (its PID is its group)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            harness.pinned(0, command, TASKSET),
            cwd=harness.APPS_DIR,
            env={**os.environ, **env, "PYTHONPATH": _pythonpath()},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        harness.stop(process)


def _pythonpath() -> str:
    """The apps' folder, then the caller's PYTHONPATH (to run another tinyws tree)."""
    return os.pathsep.join(filter(None, [str(harness.APPS_DIR), os.environ.get("PYTHONPATH")]))


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[tuple[str, int]]:
    """Our own redis-server on a free port, no persistence; yield (URL, PID)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis:// needs redis-server (apt-get install redis-server)")
    port = harness.free_port()
    command = [binary, "--port", str(port), "--bind", harness.HOST, "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    with started(command, {}, workdir / "redis.log") as process:
        harness.wait_listening(process, port, workdir / "redis.log")
        yield f"redis://{harness.HOST}:{port}/0", process.pid


def run_case(case: Case, args: argparse.Namespace, redis: tuple[str, int] | None, n: int) -> Result:
    port = harness.free_port()
    url = redis[0] if case.backend == "redis" and redis else "memory://"
    log = args.workdir / f"{case.server}-{case.backend}-{case.members}-{n}.log"
    messages = max(1, round(args.deliveries / case.members))
    rate = args.offered / case.members  # messages per second
    # Generous: a busy machine's slowest server, at 2,000 deliveries/s, still finishes.
    timeout = 30.0 + case.members / 200 + messages / rate + messages * case.members / 2000
    tally = fanout_client.Tally(case.members, messages)
    server_cpu: list[harness.CpuSnapshot] = []
    redis_cpu: list[harness.CpuSnapshot] = []
    client_cpu: list[float] = []
    command = server_command(case, port, args.workers)
    with started(command, {"FANOUT_BROADCAST": url}, log) as process:

        def checkpoint() -> None:  # before the first publish and after the last receive
            server_cpu.append(harness.cpu_snapshot(process.pid))
            client_cpu.append(time.process_time())
            if redis is not None:
                redis_cpu.append(harness.cpu_snapshot(redis[1]))

        try:
            harness.wait_listening(process, port, log)
            _run_loop(fanout_client.fan_out(port, tally, rate, timeout, checkpoint))
        except RuntimeError as exc:
            tail = log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{case.name}: {exc}\n{tail}") from None
    client = client_cpu[-1] - client_cpu[0] if len(client_cpu) >= 2 else 0.0
    return _result(case, n, tally, server_cpu=server_cpu, redis_cpu=redis_cpu, client_cpu_s=client)


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop when it is installed: the client costs less per message there."""
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def _cpu(snapshots: list[harness.CpuSnapshot]) -> float:
    return harness.cpu_between(snapshots[0], snapshots[-1])[0] if len(snapshots) >= 2 else 0.0


def _result(
    case: Case,
    n: int,
    tally: fanout_client.Tally,
    *,
    server_cpu: list[harness.CpuSnapshot],
    redis_cpu: list[harness.CpuSnapshot],
    client_cpu_s: float,
) -> Result:
    latencies = sorted(tally.latencies_ns)
    span_ns = tally.last_receive_ns - (tally.first_publish_ns or tally.last_receive_ns)

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1e6 if latencies else 0

    return Result(
        case=case,
        round=n,
        messages=tally.messages,
        received=tally.received,
        complete=tally.complete,
        out_of_order=tally.out_of_order,
        closed=tally.closed,
        deliveries_per_s=tally.received / (span_ns / 1e9) if span_ns > 0 else 0.0,
        p50_ms=quantile(0.50),
        p99_ms=quantile(0.99),
        server_cpu_s=_cpu(server_cpu),
        redis_cpu_s=_cpu(redis_cpu),
        client_cpu_s=client_cpu_s,
    )


# --- the runs and the report ------------------------------------------------


def cases(args: argparse.Namespace) -> list[Case]:
    return [
        Case(server, backend, members)
        for members in args.members
        for backend in args.backends
        for server in args.servers
    ]


def run_all(args: argparse.Namespace) -> list[Result]:
    """Every case once per round, in the same order each round (interleaved)."""
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        redis = (
            stack.enter_context(redis_server(args.workdir)) if "redis" in args.backends else None
        )
        for n in range(1, args.rounds + 1):
            for case in cases(args):
                result = run_case(case, args, redis, n)
                results.append(result)
                print(_line(result), flush=True)
    return results


def _line(r: Result) -> str:
    whole = "every member got every message in order" if r.whole else _missing(r)
    return (
        f"round {r.round}  {r.case.name}: {r.deliveries_per_s:,.0f} deliveries/s, "
        f"p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, server CPU {r.server_cpu_s:.2f} s, "
        f"redis CPU {r.redis_cpu_s:.2f} s, client CPU {r.client_cpu_s:.2f} s; {whole}"
    )


def _missing(r: Result) -> str:
    expected = r.case.members * r.messages
    return (
        f"INCOMPLETE: {r.received:,} of {expected:,} deliveries, {r.complete} of "
        f"{r.case.members} members whole, {r.out_of_order} out of order, {r.closed} closed"
    )


def table(results: list[Result]) -> str:
    """Medians over the rounds, one row per case."""
    rows = [
        "| server | backend | members | deliveries/s | p50 ms | p99 ms | server CPU s | "
        "deliveries per server CPU-s | whole rounds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in dict.fromkeys(r.case for r in results):
        mine = [r for r in results if r.case == case]
        rate = statistics.median(r.deliveries_per_s for r in mine)
        p50 = statistics.median(r.p50_ms for r in mine)
        p99 = statistics.median(r.p99_ms for r in mine)
        cpu = statistics.median(r.server_cpu_s for r in mine)
        per_cpu = statistics.median(r.received / r.server_cpu_s for r in mine if r.server_cpu_s)
        whole = sum(r.whole for r in mine)
        rows.append(
            f"| {case.server} | {case.backend}:// | {case.members:,} | {rate:,.0f} | {p50:.2f} | "
            f"{p99:.2f} | {cpu:.2f} | {per_cpu:,.0f} | {whole}/{len(mine)} |"
        )
    return "\n".join(rows)


def goal(results: list[Result]) -> str:
    """The issue's goal, per backend and member count: tinyws >= 3 x broadcaster's
    deliveries/s on one core, and a lower p99 (medians over the rounds)."""
    rows = [
        "| backend | members | deliveries/s, tinyws / broadcaster | deliveries per server "
        "CPU-s, same | p99 ms, tinyws / broadcaster | goal |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for backend, members in dict.fromkeys((r.case.backend, r.case.members) for r in results):
        pair = [[r for r in results if r.case == Case(s, backend, members)] for s in SERVERS]
        if not all(pair):
            continue
        rate, per_cpu, p99 = (
            [statistics.median(metric(r) for r in runs) for runs in pair]
            for metric in (_rate, _per_cpu, _p99)
        )
        met = rate[0] >= 3 * rate[1] and p99[0] < p99[1]
        rows.append(
            f"| {backend}:// | {members:,} | {rate[0] / rate[1]:.2f} | "
            f"{per_cpu[0] / per_cpu[1]:.2f} | {p99[0]:.1f} / {p99[1]:.1f} | "
            f"{'met' if met else '**missed**'} |"
        )
    return "\n".join(rows) if len(rows) > 2 else ""


def _rate(r: Result) -> float:
    return r.deliveries_per_s


def _per_cpu(r: Result) -> float:
    return r.received / r.server_cpu_s if r.server_cpu_s else 0.0


def _p99(r: Result) -> float:
    return r.p99_ms


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    members = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    p.add_argument("--members", type=members, default=[1000, 10000], help="(default 1000,10000)")
    p.add_argument("--servers", type=harness.csv_choices(SERVERS), default=list(SERVERS))
    p.add_argument("--backends", type=harness.csv_choices(BACKENDS), default=list(BACKENDS))
    p.add_argument(
        "--deliveries",
        type=int,
        default=200_000,
        help="deliveries per run (default %(default)s): messages = this / members",
    )
    p.add_argument(
        "--offered",
        type=float,
        default=1_000_000,
        help="deliveries/s offered (default: more than any server here delivers):\n"
        "the publish rate is this / members messages per second",
    )
    p.add_argument("--workers", type=int, default=2, help="processes for redis:// (default 2)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, help="write every run's figures here")
    p.add_argument("--smoke", action="store_true", help="50 members, 20 messages, tinyws only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.smoke:
        args.members, args.servers, args.rounds = [50], ["tinyws"], 1
        args.deliveries, args.offered = 50 * 20, 50 * 100
    for server in args.servers:
        missing = [m for m in NEEDS[server] if importlib.util.find_spec(m) is None]
        if missing:
            raise SystemExit(f"{server} needs {', '.join(missing)}: pip install -e '.[bench]'")
    harness.raise_nofile_limit()
    if TASKSET is not None:  # the client on CPU 1, the servers on CPU 0
        os.sched_setaffinity(0, {1})
    print(f"$ {shlex.join(['python', 'benchmarks/fanout.py', *(argv or sys.argv[1:])])}")
    with tempfile.TemporaryDirectory(prefix="fanout-") as workdir:
        args.workdir = Path(workdir)
        results = run_all(args)
    print(table(results))
    print(goal(results))
    if args.json is not None:
        args.json.write_text(json.dumps([{**asdict(r), "whole": r.whole} for r in results]))
    return 0 if all(r.whole for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
