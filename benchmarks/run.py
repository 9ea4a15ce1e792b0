"""The handshake benchmark suite: every (server, app) target, interleaved.

Each target runs as a real process pinned to CPU 0; ``tinyws bench`` runs
pinned to CPU 1. Targets are interleaved over rounds (A B ... B A), and for
every measured run the server's CPU time (nanoseconds on CPU of every thread
of every process in its process group, so granian's workers count) is read
from ``/proc`` before and after. Then each server's memory per idle
WebSocket is measured (``idle_memory.py``). Medians across rounds, the
issue's targets and the memory table go into ``benchmarks.md`` and
``benchmarks.svg`` in ``--out`` (default ``docs``).

    python benchmarks/run.py                 # the default grid, into docs/
    python benchmarks/run.py --smoke         # one quick round, into a temp dir

Only 127.0.0.1 is used; only the processes started here are stopped, by
their process group.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import idle_memory
import render

HOST = harness.HOST
REFERENCE_SERVER = render.REFERENCE_SERVER
EXPECTED = {"accept": 101, "reject": 403}
# The handshake grid's servers: tinyws-trio only when asked for.
DEFAULT_SERVERS = [
    "tinyws", "tinyws-uvloop", "uvicorn-wsproto", "uvicorn", "hypercorn", "granian", "floor",
]  # fmt: skip
BASE_APPS = ("raw", "tinyws")
SMOKE_MEMORY_CONNECTIONS = 200


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
    skipped: dict[str, str] = field(default_factory=dict)  # label -> why
    failures: list[str] = field(default_factory=list)
    memory: list[render.Memory] = field(default_factory=list)
    socket_free: render.SocketFree | None = None


def bench(port: int, path: str, n: int, c: int, opts: argparse.Namespace) -> dict[str, Any]:
    """Run ``tinyws bench`` on CPU 1; return its JSON report."""
    taskset, tmp = opts.taskset, Path(opts.tmp)
    report = tmp / "bench.json"
    report.unlink(missing_ok=True)
    url = f"ws://{HOST}:{port}/{path}"
    args = ["-m", "tinyws", "bench", url, "-n", str(n), "-c", str(c), "--quiet"]
    args += ["--expect", str(EXPECTED[path]), "--timeout", "10", "--json", str(report)]
    done = subprocess.run(
        harness.pinned(1, [sys.executable, *args], taskset),
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


def measure_runs(
    target: Target, opts: argparse.Namespace, rnd: int, server: tuple[int, int], paths: list[str]
) -> list[render.Run]:
    """Warm up, then measure every (path, concurrency) of one running server."""
    pgid, port = server
    runs: list[render.Run] = []
    for path in paths:  # unmeasured warmup
        bench(port, path, opts.warmup, max(opts.concurrency), opts)
    for path in paths:
        for c in opts.concurrency:
            before = harness.cpu_snapshot(pgid)
            data = bench(port, path, opts.n, c, opts)
            cpu, source = harness.cpu_between(before, harness.cpu_snapshot(pgid))
            key = (target.server, target.app, path, c)
            runs.append(render.Run.from_bench(key, rnd, cpu, data, source))
    return runs


def measure_target(target: Target, opts: argparse.Namespace, rnd: int) -> list[render.Run]:
    """One round of one target: one server process, or one per path (floor)."""
    log = Path(opts.tmp, "server.log")
    if not harness.SERVERS[target.server].per_path:
        with harness.server_process(target.server, target.app, opts.taskset, log) as server:
            return measure_runs(target, opts, rnd, server, opts.paths)
    runs = []
    for path in opts.paths:
        launch = harness.Launch(path=path)
        with harness.server_process(target.server, target.app, opts.taskset, log, launch) as server:
            runs += measure_runs(target, opts, rnd, server, [path])
    return runs


def select_targets(opts: argparse.Namespace) -> list[Target]:
    """The grid: raw and tinyws everywhere, every app on the reference server."""
    return [
        Target(server, app)
        for server in opts.servers
        for app in opts.apps
        if harness.serves(server, app)
        and (opts.full_grid or app in BASE_APPS or server == REFERENCE_SERVER)
    ]


def run_suite(targets: list[Target], opts: argparse.Namespace) -> Outcome:
    outcome = Outcome()
    active = []
    for target in targets:
        why = harness.unavailable(target.server, target.app)
        if why is None:
            active.append(target)
        else:
            outcome.skipped[target.label] = why
            print(f"skip {target.label}: {why}", file=sys.stderr)
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


def run_memory(outcome: Outcome, opts: argparse.Namespace) -> None:
    results, skipped, failures = idle_memory.measure_all(
        opts.memory_servers, opts.memory_connections, idle_memory.WARMUP, opts.taskset
    )
    outcome.memory = results
    outcome.skipped.update({f"{server} (idle memory)": why for server, why in skipped.items()})
    outcome.failures += failures


# The socket-free benchmarks, and their arguments in a full run and in a smoke run.
SOCKET_FREE: dict[str, tuple[str, list[str], list[str]]] = {
    "core": ("core.py", [], ["-n", "50", "--repeats", "1"]),
    "apps": ("app_overhead.py", [], ["-n", "50", "--repeats", "1", "--apps", "raw,tinyws"]),
}


def run_socket_free(outcome: Outcome, opts: argparse.Namespace) -> None:
    """The server's sans-IO core and each framework's own work, no sockets, on CPU 0."""
    reports: dict[str, Any] = {}
    commands: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tinyws-socket-free-") as tmp:
        for name, (script, full, smoke) in SOCKET_FREE.items():
            report = Path(tmp, f"{name}.json")
            args = [str(Path(__file__).resolve().parent / script), *(smoke if opts.smoke else full)]
            commands.append(" ".join(["python", f"benchmarks/{script}", *args[1:]]))
            done = subprocess.run(
                harness.pinned(0, [sys.executable, *args, "--json", str(report)], opts.taskset),
                capture_output=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0 or not report.exists():
                tail = done.stderr.decode(errors="replace")[-800:]
                outcome.failures.append(f"{script} exited {done.returncode}: {tail}")
                continue
            reports[name] = json.loads(report.read_text())
    outcome.socket_free = render.SocketFree(reports.get("core"), reports.get("apps"), commands)


def concurrency_list(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    servers, apps = list(harness.SERVERS), list(harness.APPS)
    add("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    add("-n", type=int, default=2000, help="measured handshakes per run (default 2000)")
    add("--warmup", type=int, default=200, help="unmeasured handshakes per path (default 200)")
    add("--concurrency", type=concurrency_list, default=[1, 32], help="e.g. 1,32 (default)")
    add(
        "--servers",
        type=harness.csv_choices(servers),
        default=DEFAULT_SERVERS,
        help=f"of {','.join(servers)} (default: all but tinyws-trio)",
    )
    add("--apps", type=harness.csv_choices(apps), default=apps)
    add("--paths", type=harness.csv_choices(list(EXPECTED)), default=list(EXPECTED))
    add(
        "--full-grid",
        action="store_true",
        help="every app on every server (default: "
        "raw and tinyws everywhere, every app on uvicorn-wsproto)",
    )
    add("--no-memory", action="store_true", help="skip the idle-memory measurement")
    add(
        "--memory-connections",
        type=int,
        default=5000,
        help="idle WebSockets per server for the memory table (default 5000)",
    )
    add(
        "--memory-servers",
        type=harness.csv_choices(servers),
        default=list(idle_memory.DEFAULT_SERVERS),
        help=f"(default {','.join(idle_memory.DEFAULT_SERVERS)})",
    )
    add(
        "--no-socket-free",
        action="store_true",
        help="skip the socket-free benchmarks (core.py, app_overhead.py)",
    )
    add(
        "--baseline-tree",
        metavar="DIR",
        type=Path,
        help="another tinyws source tree (an earlier commit's checkout): adds the targets "
        "tinyws-before and tinyws-before-uvloop, its server on stdlib asyncio and uvloop",
    )
    add("--out", default="docs", help="directory for benchmarks.md and benchmarks.svg")
    add("--raw", metavar="FILE", help="also write every measured run as JSON")
    add("--smoke", action="store_true", help="one quick round of a few targets into a temp dir")
    return parser


def apply_smoke(opts: argparse.Namespace) -> None:
    opts.rounds, opts.n, opts.warmup = 1, 64, 16
    opts.servers = ["tinyws", "tinyws-uvloop", REFERENCE_SERVER]
    opts.apps = list(BASE_APPS)
    opts.full_grid = False
    opts.memory_servers = ["tinyws"]
    opts.memory_connections = min(opts.memory_connections, SMOKE_MEMORY_CONNECTIONS)
    opts.out = tempfile.mkdtemp(prefix="tinyws-smoke-")


BASELINE_SERVERS = ("tinyws-before", "tinyws-before-uvloop")


def apply_baseline(opts: argparse.Namespace) -> None:
    """With --baseline-tree, its servers run first in the grid (ahead of tinyws)."""
    if opts.baseline_tree is None:
        return
    if not (opts.baseline_tree / "tinyws" / "__init__.py").is_file():
        raise SystemExit(f"--baseline-tree: no tinyws package in {opts.baseline_tree}")
    harness.set_baseline_tree(opts.baseline_tree)
    extra = [name for name in BASELINE_SERVERS if name not in opts.servers]
    opts.servers = extra + list(opts.servers)


def shown_command(argv: list[str], baseline: str | None = None) -> str:
    """The command line for the report, without this machine's paths (``--out`` ...)."""
    hidden = ("--raw", "--out", "--baseline-tree")
    shown = [a for i, a in enumerate(argv) if not {a, argv[i - 1] if i else ""} & set(hidden)]
    if baseline is not None:
        shown += ["--baseline-tree", f"<checkout of {baseline}>"]
    return " ".join(["python benchmarks/run.py", *shown])


def tree_commit(tree: Path) -> str:
    """The baseline tree's commit, short, for the report; "a tinyws tree" when unknown."""
    try:
        done = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "a tinyws tree"
    return done.stdout.decode().strip() if done.returncode == 0 else "a tinyws tree"


def main(argv: list[str]) -> int:
    opts = make_parser().parse_args(argv)
    if opts.smoke:
        apply_smoke(opts)
    apply_baseline(opts)
    opts.taskset = harness.find_taskset()
    started, tree = time.monotonic(), opts.baseline_tree
    outcome = run_suite(select_targets(opts), opts)
    if not opts.no_memory:
        run_memory(outcome, opts)
    if not opts.no_socket_free:
        run_socket_free(outcome, opts)
    servers = set(opts.servers) | (set() if opts.no_memory else set(opts.memory_servers))
    meta = render.Meta(
        shown_command(argv, None if tree is None else tree_commit(tree)),
        pinned=opts.taskset is not None,
        rounds=opts.rounds,
        n=opts.n,
        loops={name: harness.SERVERS[name].loop for name in servers},
        memory_command=f"python benchmarks/idle_memory.py -n {opts.memory_connections} "
        f"--servers {','.join(opts.memory_servers)}",
    )
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    render.write(
        out,
        outcome.runs,
        outcome.skipped,
        outcome.failures,
        meta,
        memory=outcome.memory,
        socket_free=outcome.socket_free,
    )
    if opts.raw:
        Path(opts.raw).write_text(json.dumps([r.__dict__ for r in outcome.runs], indent=1))
    print(f"wrote {out / 'benchmarks.md'} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
