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

    python benchmarks/instructions_ab.py --baseline-tree DIR [--only core:accept,app:tinyws:reject]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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


def per_exchange(tree: Path, scenario: str, short: int, long: int, valgrind: str) -> float:
    low = instructions(tree, scenario, short, valgrind)
    high = instructions(tree, scenario, long, valgrind)
    return (high - low) / (long - short)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-tree", type=Path, required=True, metavar="DIR")
    parser.add_argument("--only", help=f"comma-separated, of {','.join(SCENARIOS)}")
    parser.add_argument("--short", type=int, default=200, help="exchanges in the short run")
    parser.add_argument("--long", type=int, default=1200, help="exchanges in the long run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    opts = parser.parse_args(argv)
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    chosen = opts.only.split(",") if opts.only else SCENARIOS
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if not 0 < opts.short < opts.long:
        parser.error("--short must be positive and below --long")
    trees = {"before": opts.baseline_tree.resolve(), "after": HERE_TREE}
    figures: dict[str, dict[str, float]] = {}
    print("| scenario | before (instructions) | after | after/before |")
    print("|---|--:|--:|--:|")
    for scenario in chosen:
        found = {
            which: per_exchange(tree, scenario, opts.short, opts.long, valgrind)
            for which, tree in trees.items()
        }
        figures[scenario] = found
        ratio = found["after"] / found["before"]
        print(f"| {scenario} | {found['before']:,.0f} | {found['after']:,.0f} | {ratio:.3f} |")
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
