"""The handshake benchmark suite: every (server, app) target, interleaved.

Each target runs as a real process pinned to CPU 0; ``tinyws bench`` runs
pinned to CPU 1. Targets are interleaved over rounds (A B ... B A), and for
every measured run the server's CPU time (utime + stime of every process in
its process group, so granian's workers count) is read from ``/proc`` before
and after. Medians across rounds go into ``benchmarks.md`` and
``benchmarks.svg`` in ``--out`` (default ``docs``).

    python benchmarks/run.py                 # the default grid, into docs/
    python benchmarks/run.py --smoke         # one quick round, into a temp dir

Only 127.0.0.1 is used; only the processes started here are stopped, by
their process group.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import render

ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = Path(__file__).resolve().parent / "apps"
HOST = "127.0.0.1"
REFERENCE_SERVER = "uvicorn-wsproto"
EXPECTED = {"accept": 101, "reject": 403}
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

Command = Callable[[str, int], list[str]]
Parser = Callable[[str], list[object]]


def _uvicorn(*flags: str) -> Command:
    def command(app: str, port: int) -> list[str]:
        base = ["-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--loop", "asyncio"]
        return [*base, *flags, "--log-level", "warning", "--no-access-log"]

    return command


def _tinyws(app: str, port: int) -> list[str]:
    return ["-m", "tinyws", "serve", app, "--host", HOST, "--port", str(port)]


def _hypercorn(app: str, port: int) -> list[str]:
    return ["-m", "hypercorn", app, "--bind", f"{HOST}:{port}", "--workers", "1"]


def _granian(app: str, port: int) -> list[str]:
    flags = ["--interface", "asgi", "--host", HOST, "--port", str(port), "--workers", "1"]
    return ["-m", "granian", *flags, app]


# name -> (modules it needs, arguments after the interpreter)
SERVERS: dict[str, tuple[tuple[str, ...], Command]] = {
    "tinyws": (("tinyws",), _tinyws),
    "uvicorn-wsproto": (
        ("uvicorn", "h11", "wsproto"),
        _uvicorn("--http", "h11", "--ws", "wsproto"),
    ),
    "uvicorn": (
        ("uvicorn", "httptools", "websockets"),
        _uvicorn("--http", "httptools", "--ws", "websockets-sansio"),
    ),
    "hypercorn": (("hypercorn",), _hypercorn),
    "granian": (("granian",), _granian),
}
# name -> (module:attr inside benchmarks/apps, modules it needs)
APPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "raw": ("raw:app", ()),
    "tinyws": ("tinyws_app:app", ("tinyws",)),
    "starlette": ("starlette_app:app", ("starlette",)),
    "fastapi": ("fastapi_app:app", ("fastapi",)),
    "falcon": ("falcon_app:app", ("falcon",)),
    "litestar": ("litestar_app:app", ("litestar",)),
}
BASE_APPS = ("raw", "tinyws")


@dataclass(frozen=True)
class Target:
    server: str
    app: str

    @property
    def label(self) -> str:
        return f"{self.server} / {self.app}"


@dataclass
class Outcome:
    """Everything measured, plus what was skipped or failed and why."""

    runs: list[render.Run] = field(default_factory=list)
    skipped: dict[Target, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def skipped_labels(self) -> dict[str, str]:
        return {target.label: reason for target, reason in self.skipped.items()}


def missing_module(target: Target) -> str | None:
    needed = SERVERS[target.server][0] + APPS[target.app][1]
    for module in needed:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def pinned(cpu: int, command: list[str], taskset: str | None) -> list[str]:
    return [taskset, "-c", str(cpu), *command] if taskset else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of every process in group ``pgid``, plus its reaped children."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid:  # field 5, pgrp
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server_process(target: Target, taskset: str | None, log: Path) -> Iterator[tuple[int, int]]:
    """Start the target pinned to CPU 0; yield (pid, port); stop its group."""
    port = free_port()
    args = SERVERS[target.server][1](APPS[target.app][0], port)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(APPS_DIR)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(0, [sys.executable, *args], taskset),
            cwd=APPS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_listening(process, port, log)
        yield process.pid, port
    finally:
        stop(process)


def wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"exited with {process.returncode} before listening:\n{tail}")
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, port), timeout=1.0).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"did not listen within {START_TIMEOUT:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # workers left in the group made for it
    process.wait(timeout=STOP_TIMEOUT)


def bench(port: int, path: str, n: int, c: int, opts: argparse.Namespace) -> dict[str, Any]:
    """Run ``tinyws bench`` on CPU 1; return its JSON report."""
    taskset, tmp = opts.taskset, Path(opts.tmp)
    report = tmp / "bench.json"
    report.unlink(missing_ok=True)
    url = f"ws://{HOST}:{port}/{path}"
    args = ["-m", "tinyws", "bench", url, "-n", str(n), "-c", str(c), "--quiet"]
    args += ["--expect", str(EXPECTED[path]), "--timeout", "10", "--json", str(report)]
    done = subprocess.run(
        pinned(1, [sys.executable, *args], taskset),
        capture_output=True,
        timeout=60 + n / 20,
        check=False,
    )
    if done.returncode not in (0, 1) or not report.exists():
        raise RuntimeError(f"tinyws bench exited {done.returncode}: {done.stderr.decode()[-800:]}")
    try:
        data: dict[str, Any] = json.loads(report.read_text())
    except ValueError as exc:
        tail = done.stderr.decode(errors="replace")[-800:]
        raise RuntimeError(
            f"tinyws bench exited {done.returncode} without a report: {tail}"
        ) from exc
    return data


def measure_target(target: Target, opts: argparse.Namespace, rnd: int) -> list[render.Run]:
    runs: list[render.Run] = []
    with server_process(target, opts.taskset, Path(opts.tmp, "server.log")) as (pid, port):
        for path in opts.paths:  # unmeasured warmup
            bench(port, path, opts.warmup, max(opts.concurrency), opts)
        for path in opts.paths:
            for c in opts.concurrency:
                before = group_cpu_seconds(pid)
                data = bench(port, path, opts.n, c, opts)
                cpu = group_cpu_seconds(pid) - before
                key = (target.server, target.app, path, c)
                runs.append(render.Run.from_bench(key, rnd, cpu, data))
    return runs


def select_targets(opts: argparse.Namespace) -> list[Target]:
    return [
        Target(server, app)
        for server in opts.servers
        for app in opts.apps
        if opts.full_grid or app in BASE_APPS or server == REFERENCE_SERVER
    ]


def run_suite(targets: list[Target], opts: argparse.Namespace) -> Outcome:
    outcome = Outcome()
    for target in targets:
        missing = missing_module(target)
        if missing is not None:
            outcome.skipped[target] = f"cannot import {missing!r}"
            print(f"skip {target.label}: cannot import {missing!r}", file=sys.stderr)
    active = [t for t in targets if t not in outcome.skipped]
    broken: set[Target] = set()
    with tempfile.TemporaryDirectory(prefix="tinyws-suite-") as opts.tmp:
        for rnd in range(opts.rounds):
            order = active if rnd % 2 == 0 else active[::-1]
            for target in order:
                if target in broken:
                    continue
                started = time.monotonic()
                try:
                    runs = measure_target(target, opts, rnd)
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                    broken.add(target)
                    outcome.failures.append(f"{target.label}: {exc}")
                    print(f"FAIL {target.label}: {exc}", file=sys.stderr)
                    continue
                outcome.runs.extend(runs)
                bad = [f"{r.path} C={r.concurrency}: {r.errors}" for r in runs if r.errors]
                outcome.failures += [f"{target.label} round {rnd + 1}, {b}" for b in bad]
                took = time.monotonic() - started
                print(f"round {rnd + 1} {target.label}: {took:.1f} s", file=sys.stderr)
    return outcome


def csv(kind: Callable[[str], object], choices: Sequence[str] = ()) -> Parser:
    def parse(text: str) -> list[object]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        for item in items:
            if choices and item not in choices:
                raise argparse.ArgumentTypeError(f"{item!r} is not one of {', '.join(choices)}")
        return [kind(item) for item in items]

    return parse


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    add("-n", type=int, default=2000, help="measured handshakes per run (default 2000)")
    add("--warmup", type=int, default=200, help="unmeasured handshakes per path (default 200)")
    add("--concurrency", type=csv(int), default=[1, 32], help="e.g. 1,32 (default)")
    add("--servers", type=csv(str, list(SERVERS)), default=list(SERVERS))
    add("--apps", type=csv(str, list(APPS)), default=list(APPS))
    add("--paths", type=csv(str, list(EXPECTED)), default=list(EXPECTED))
    add(
        "--full-grid",
        action="store_true",
        help="every app on every server (default: "
        "raw and tinyws everywhere, every app on uvicorn-wsproto)",
    )
    add("--out", default="docs", help="directory for benchmarks.md and benchmarks.svg")
    add("--raw", metavar="FILE", help="also write every measured run as JSON")
    add("--smoke", action="store_true", help="one quick round of four targets into a temp dir")
    return parser


def apply_smoke(opts: argparse.Namespace) -> None:
    opts.rounds, opts.n, opts.warmup = 1, 64, 16
    opts.servers = ["tinyws", REFERENCE_SERVER]
    opts.apps = list(BASE_APPS)
    opts.full_grid = False
    opts.out = tempfile.mkdtemp(prefix="tinyws-smoke-")


def main(argv: list[str]) -> int:
    opts = make_parser().parse_args(argv)
    if opts.smoke:
        apply_smoke(opts)
    opts.taskset = shutil.which("taskset")
    if opts.taskset is None or (os.cpu_count() or 1) < 2:
        print("warning: taskset or a second CPU is missing; running unpinned", file=sys.stderr)
        opts.taskset = None
    targets = select_targets(opts)
    started = time.monotonic()
    outcome = run_suite(targets, opts)
    shown = [a for i, a in enumerate(argv) if "--raw" not in (a, argv[i - 1] if i else "")]
    command = " ".join(["python benchmarks/run.py", *shown])
    meta = render.Meta(command, pinned=opts.taskset is not None, rounds=opts.rounds, n=opts.n)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    render.write(out, outcome.runs, outcome.skipped_labels(), outcome.failures, meta)
    if opts.raw:
        Path(opts.raw).write_text(json.dumps([r.__dict__ for r in outcome.runs], indent=1))
    print(f"wrote {out / 'benchmarks.md'} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
