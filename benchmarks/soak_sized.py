"""soak.py's scenarios at sizes given on the command line (between --smoke and full).

    python benchmarks/soak_sized.py --servers tinyws,uvicorn,hypercorn \\
        [--handshakes 20000] [--idle 2000] [--hold 20] [--feed 200] [--slow 20] [--json FILE]

The scenarios, their measurements and the servers' own settings (default
pings) are those of a full ``soak.py`` run; only the sizes differ.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import harness
import soak


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--servers", type=harness.csv_choices(sorted(harness.SERVERS)), default=["tinyws"])
    add("--handshakes", type=int, default=20_000, help="handshakes, 32 at a time")
    add("--idle", type=int, default=2000, help="idle WebSockets held")
    add("--hold", type=float, default=20.0, help="seconds the idle ones (and the feed) last")
    add("--feed", type=int, default=200, help="connections of the push-only feed")
    add("--slow", type=float, default=20.0, help="seconds of the slow-consumer scenario")
    add("--json", type=Path, help="also write the results here")
    opts = parser.parse_args(argv)
    sizes = {"handshakes": opts.handshakes, "idle": opts.idle, "hold": opts.hold}
    sizes |= {"feed": opts.feed, "slow": opts.slow}
    harness.raise_nofile_limit()
    report: dict[str, object] = {"sizes": sizes}
    with tempfile.TemporaryDirectory(prefix="tinyws-soak-") as tmp:
        for name in opts.servers:
            report[name] = asyncio.run(soak.scenarios(name, dict(sizes), Path(tmp)))
            print(name, json.dumps(report[name], indent=1), flush=True)
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
