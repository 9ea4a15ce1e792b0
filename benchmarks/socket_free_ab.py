"""The socket-free benchmarks, this tree against another, interleaved.

``core.py`` and ``app_overhead.py --apps raw,tinyws`` run in this source
tree and in a baseline tree (an earlier commit's checkout, each tree's own
scripts against its own tinyws), alternating A B / B A over rounds, pinned
to one CPU. Each script's figure per round is its own summary (core.py: the
median and the min of its batches; app_overhead.py: the fastest sample);
the table gives the median over rounds and after/before.

    python benchmarks/socket_free_ab.py --baseline-tree DIR [--rounds 3] [--cpu 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import harness

HERE_TREE = harness.HERE.parent
SCRIPTS = {
    "core": ["benchmarks/core.py"],
    "apps": ["benchmarks/app_overhead.py", "--apps", "raw,tinyws"],
}


def run_script(tree: Path, name: str, opts: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    report = tmp / f"{name}.json"
    report.unlink(missing_ok=True)
    command = [sys.executable, *SCRIPTS[name], "--json", str(report)]
    subprocess.run(
        harness.pinned(opts.cpu, command, opts.taskset),
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        timeout=900,
        check=True,
    )
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def figures(name: str, data: dict[str, Any]) -> dict[str, float]:
    """One round's figures of one script, flat: 'accept median' -> µs."""
    if name == "core":
        out = {}
        for scenario, found in data["results"].items():
            out[f"core {scenario} median"] = float(found["median_us"])
            out[f"core {scenario} min"] = float(found["min_us"])
        return out
    return {f"app {app} {path}": float(us) for app, paths in data["us"].items()
            for path, us in paths.items()}  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-tree", type=Path, required=True, metavar="DIR")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=1, help="the CPU to pin to (default 1)")
    parser.add_argument("--json", metavar="FILE", help="write every round's figures as JSON")
    opts = parser.parse_args(argv)
    opts.taskset = harness.find_taskset()
    trees = {"after": HERE_TREE, "before": opts.baseline_tree.resolve()}
    found: dict[str, dict[str, list[float]]] = {"after": {}, "before": {}}
    with tempfile.TemporaryDirectory(prefix="tinyws-ab-") as tmp:
        for rnd in range(opts.rounds):
            order = ["before", "after"] if rnd % 2 == 0 else ["after", "before"]
            for which in order:
                for name in SCRIPTS:
                    data = run_script(trees[which], name, opts, Path(tmp))
                    for key, value in figures(name, data).items():
                        found[which].setdefault(key, []).append(value)
                print(f"round {rnd + 1} {which}", file=sys.stderr)
    print("| figure (µs) | before | after | after/before | rounds before | rounds after |")
    print("|---|--:|--:|--:|---|---|")
    for key, before in found["before"].items():
        after = found["after"].get(key, [])
        if not after:
            continue
        b, a = statistics.median(before), statistics.median(after)
        rb, ra = (", ".join(f"{v:.2f}" for v in vs) for vs in (before, after))
        print(f"| {key} | {b:.2f} | {a:.2f} | {a / b:.3f} | {rb} | {ra} |")
    if opts.json:
        Path(opts.json).write_text(json.dumps(found, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
