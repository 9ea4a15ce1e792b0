"""The soak and load benchmarks (benchmarks/soak.py) at their smoke size:
kept alive, and their verdicts on the built-in server checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.scripts import BENCHMARKS, load_benchmark


def test_soak_smoke_run_keeps_every_connection_and_drops_the_stuck_one(tmp_path: Path) -> None:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # soak.py imports harness as a sibling
    soak = load_benchmark("soak")
    out = tmp_path / "soak.json"
    assert soak.main(["--smoke", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["tinyws"]
    assert result["handshakes"]["fds_end"] <= result["handshakes"]["fds_first"]
    assert result["handshakes"]["rss_growth_pct"] < 10
    assert result["idle"]["lost"] == 0
    assert result["idle"]["kib_per_connection"] < 24
    feed = result["feed"]
    assert feed["lost"] == 0
    assert feed["min_pongs"] == feed["pings_each"]  # every ping answered by a push-only app
    assert feed["min_messages"] > 0
    slow = result["slow"]
    assert slow["reader_mib_s_min"] > 1  # the readers were not held up by the stuck one
    assert 0 < slow["stuck_dropped_after_s"] < 4  # pinged, no pong: dropped
