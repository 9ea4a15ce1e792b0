"""The socket-free benchmarks in CPU instructions, this tree against another.

Timing on a shared two-core machine moves by tens of percent from round to
round; an instruction count does not. This runs the exchanges of
``core.py`` (the sans-IO server core) and the handshakes of
``app_overhead.py`` (an app called as a server calls it) under valgrind's
callgrind, in this source tree and in a baseline tree (each tree's own
scripts against its own tinyws), and reports instructions per exchange:
two runs of different lengths, the difference divided by the difference in
exchanges, so start-up and imports cancel out. ``PYTHONHASHSEED`` is fixed,
so a rerun gives the same figure to within a fraction of a percent.

Instructions are not time (a cache miss costs more than an add), but a
change that executes fewer of them on the same interpreter is not slower
in any way this machine could show.

The ``server:APP:PATH`` scenarios (not run by default: minutes each) count
the whole built-in server instead: ``tinyws serve`` of each tree under
callgrind, pinned to CPU 0, driven by this tree's ``tinyws bench -c 32`` on
CPU 1, the same two run lengths. How many connections one loop wakeup
carries varies from run to run, so repeats of these differ by a few
percent; ``--repeats`` gives the median of several.

    python benchmarks/instructions_ab.py --baseline-tree DIR [--only core:accept,app:tinyws:reject]
    python benchmarks/instructions_ab.py --baseline-tree DIR --only server:raw:accept --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import harness

HERE_TREE = Path(__file__).resolve().parent.parent
SCENARIOS = [
    "core:accept",
    "core:reject",
    "core:http",
    "app:raw:accept",
    "app:raw:reject",
    "app:tinyws:accept",
    "app:tinyws:reject",
]
SERVER_SCENARIOS = [
    f"server:{app}:{path}" for app in ("raw", "tinyws") for path in ("accept", "reject")
]
_SERVER_APPS = {"raw": "raw:app", "tinyws": "tinyws_app:app"}
_EXPECT = {"accept": "101", "reject": "403"}
# Run in the measured tree: imports that tree's benchmark scripts and tinyws.
DRIVER = """
import asyncio, logging, sys
tree, scenario, n = sys.argv[1], sys.argv[2].split(":"), int(sys.argv[3])
sys.path[:0] = [tree, tree + "/benchmarks", tree + "/benchmarks/apps"]
if scenario[0] == "core":
    import core
    exchange, check = core.SCENARIOS[scenario[1]]
    pairs = core.requests_for(scenario[1], 64)
    for i in range(n + 8):
        key, request = pairs[i % len(pairs)]
        out = exchange(request)
    check(key, out)
else:
    import importlib
    import app_overhead as bench
    logging.disable(logging.CRITICAL)
    name, path = scenario[1], scenario[2]
    async def main():
        app = importlib.import_module(bench.APPS[name][0]).app
        await bench.lifespan(app, "startup")
        sent = []
        for _ in range(n + 8):
            sent.clear()
            await bench.handshake(app, path, sent)
        bench.check(name, path, sent)
    asyncio.run(main())
"""
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(tree: Path, scenario: str, n: int, valgrind: str) -> int:
    """Instructions of one whole run of `n` exchanges (start-up included)."""
    command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, "-c", DRIVER, str(tree), scenario, str(n)]
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
    done = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=600
    )
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{scenario} in {tree} failed:\n{done.stderr[-2000:]}")
    return int(found[1].replace(",", ""))


def server_instructions(tree: Path, scenario: str, n: int, valgrind: str, loop: str) -> int:
    """Instructions of one whole `tinyws serve` run that answered `n` handshakes."""
    _, app, path = scenario.split(":")
    port, taskset = harness.free_port(), harness.find_taskset()
    serve = [sys.executable, "-m", "tinyws", "serve", _SERVER_APPS[app], "--host", harness.HOST]
    serve += ["--port", str(port), "--no-access-log", "--loop", loop]
    command = harness.pinned(
        0, [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *serve], taskset
    )
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
    server = subprocess.Popen(
        command, cwd=tree / "benchmarks" / "apps", env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_listening(server, port)
        url = f"ws://{harness.HOST}:{port}/{path}"
        bench = [sys.executable, "-m", "tinyws", "bench", url, "-n", str(n), "-c", "32"]
        bench += ["--expect", _EXPECT[path], "--quiet"]
        client_env = {**os.environ, "PYTHONPATH": str(HERE_TREE)}
        subprocess.run(harness.pinned(1, bench, taskset), env=client_env, check=True, timeout=900,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=300)
    finally:
        if server.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    found = _REFS.search(err)
    if found is None:
        raise RuntimeError(f"{scenario} in {tree}: no instruction count:\n{err[-2000:]}")
    return int(found[1].replace(",", ""))


def _wait_listening(server: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 180  # python and tinyws start slowly under valgrind
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"the server exited before listening:\n{server.communicate()[1][-2000:]}"
            )
        with contextlib.suppress(OSError):
            socket.create_connection((harness.HOST, port), timeout=1.0).close()
            return
        time.sleep(0.2)
    raise RuntimeError("the server did not listen within 180 s")


def per_exchange(tree: Path, scenario: str, opts: argparse.Namespace, valgrind: str) -> float:
    """Instructions per exchange: the difference of two run lengths (median of repeats)."""
    figures = []
    for _ in range(opts.repeats):
        if scenario.startswith("server:"):
            low = server_instructions(tree, scenario, opts.short, valgrind, opts.loop)
            high = server_instructions(tree, scenario, opts.long, valgrind, opts.loop)
        else:
            low = instructions(tree, scenario, opts.short, valgrind)
            high = instructions(tree, scenario, opts.long, valgrind)
        figures.append((high - low) / (opts.long - opts.short))
    return float(statistics.median(figures))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-tree", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--only", help=f"comma-separated, of {','.join(SCENARIOS + SERVER_SCENARIOS)}"
    )
    parser.add_argument("--short", type=int, default=200, help="exchanges in the short run")
    parser.add_argument("--long", type=int, default=1200, help="exchanges in the long run")
    parser.add_argument("--repeats", type=int, default=1, help="median of this many (default 1)")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio",
                        help="the server's loop, for server:* scenarios")  # fmt: skip
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    opts = parser.parse_args(argv)
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    chosen = opts.only.split(",") if opts.only else SCENARIOS
    known = SCENARIOS + SERVER_SCENARIOS
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(known)}")
    if not 0 < opts.short < opts.long or opts.repeats < 1:
        parser.error("--short must be positive and below --long; --repeats at least 1")
    trees = {"before": opts.baseline_tree.resolve(), "after": HERE_TREE}
    figures: dict[str, dict[str, float]] = {}
    print("| scenario | before (instructions) | after | after/before |")
    print("|---|--:|--:|--:|")
    for scenario in chosen:
        found = {
            which: per_exchange(tree, scenario, opts, valgrind) for which, tree in trees.items()
        }
        figures[scenario] = found
        ratio = found["after"] / found["before"]
        print(f"| {scenario} | {found['before']:,.0f} | {found['after']:,.0f} | {ratio:.3f} |")
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
