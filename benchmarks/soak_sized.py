"""soak.py's scenarios at sizes given on the command line (between --smoke and full).

    python benchmarks/soak_sized.py --servers tinyws,uvicorn,hypercorn \\
        [--handshakes 20000] [--idle 2000] [--hold 20] [--feed 200] [--slow 20] [--json FILE] \\
        [--scenarios slow] [--no-stuck]

`--no-stuck` runs the slow-consumer scenario's readers alone: their
throughput without the stuck client, to compare with.

The scenarios, their measurements and the servers' own settings (default
pings) are those of a full ``soak.py`` run; only the sizes differ.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import harness
import soak

SCENARIOS = ("handshakes", "idle", "feed", "slow")


async def scenarios(
    name: str, sizes: dict[str, float], tmp: Path, only: Sequence[str] = SCENARIOS
) -> dict[str, object]:
    """soak.scenarios, one at a time: a scenario that fails is reported, the others still run."""
    results: dict[str, object] = {}
    held = int(sizes["idle"])
    for scenario, connections in [("handshakes", held), ("idle", held),
                                  ("feed", int(sizes["feed"])), ("slow", 10)]:  # fmt: skip
        if scenario not in only:
            continue
        with soak.serving(name, tmp, connections, False) as (pid, port):
            try:
                results[scenario] = await run_one(scenario, pid, port, sizes)
            except Exception as exc:  # the report says which scenario failed and why
                results[scenario] = {"failed": f"{type(exc).__name__}: {exc}"}
    return results


async def run_one(scenario: str, pid: int, port: int, sizes: dict[str, float]) -> object:
    if scenario == "handshakes":
        return await soak.handshakes(pid, port, int(sizes["handshakes"]))
    if scenario == "idle":
        return await soak.idle(pid, port, int(sizes["idle"]), sizes["hold"])
    if scenario == "feed":
        return await soak.feed(port, int(sizes["feed"]), sizes["hold"])
    return await soak.slow(pid, port, sizes["slow"], stuck=not sizes.get("no_stuck"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--servers", type=harness.csv_choices(sorted(harness.SERVERS)), default=["tinyws"])
    add("--handshakes", type=int, default=20_000, help="handshakes, 32 at a time")
    add("--idle", type=int, default=2000, help="idle WebSockets held")
    add("--hold", type=float, default=20.0, help="seconds the idle ones (and the feed) last")
    add("--feed", type=int, default=200, help="connections of the push-only feed")
    add("--slow", type=float, default=20.0, help="seconds of the slow-consumer scenario")
    add("--scenarios", type=harness.csv_choices(SCENARIOS), default=list(SCENARIOS))
    add("--no-stuck", action="store_true", help="the slow scenario without its stuck client")
    add("--json", type=Path, help="also write the results here")
    opts = parser.parse_args(argv)
    sizes: dict[str, float] = {"handshakes": opts.handshakes, "idle": opts.idle}
    sizes |= {"hold": opts.hold}
    sizes |= {"feed": opts.feed, "slow": opts.slow, "no_stuck": float(opts.no_stuck)}
    harness.raise_nofile_limit()
    report: dict[str, object] = {"sizes": sizes}
    with tempfile.TemporaryDirectory(prefix="tinyws-soak-") as tmp:
        for name in opts.servers:
            report[name] = asyncio.run(scenarios(name, sizes, Path(tmp), opts.scenarios))
            print(name, json.dumps(report[name], indent=1), flush=True)
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
