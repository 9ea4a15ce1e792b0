"""``tinyws bench --rate``: the open model, against a server that freezes.

The server stalls for 300 ms once a second. A closed-loop client would see
the stall in only ``-c`` samples; the open model keeps starting handshakes
on schedule, so every handshake due during a stall waits for it and the
corrected (from-schedule) percentiles show it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.bench_servers import raw_server

BACKENDS = ["asyncio", "trio"]
STALL_US = 300_000


def bench(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "tinyws", "bench", *args, "--quiet", "--json", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, json.loads(done.stdout) if done.stdout else {}


@pytest.mark.parametrize("backend", BACKENDS)
def test_stall_shows_in_the_corrected_percentiles(backend: str) -> None:
    with raw_server(stall=0.3, period=1.0) as server:
        done, data = bench(server.url(), "--rate", "200", "--duration", "3", "--backend", backend)
    assert done.returncode == 0, done.stderr
    assert len(server.stalls) >= 3
    assert data["target_rate"] == 200
    assert data["statuses"] == {"101": 600} and data["errors"] == {}
    # About 30 % of the handshakes were due during a stall, and waited up to 300 ms.
    assert data["latency_us"]["p99"] >= 250_000
    assert data["latency_us"]["max"] <= STALL_US + 100_000
    # Started on time, so the time from the actual start sees the stall as well:
    # the open model's service time does not hide it either.
    assert data["service_us"]["p99"] >= 250_000
    assert data["latency_us"]["p50"] < data["latency_us"]["p99"] / 10
    # Never held back by the cap. (Starts may still be late by some milliseconds,
    # from the burst of answers after each stall or a busy machine: counted and
    # reported, not asserted here.)
    assert data["schedule"]["late_by_max_inflight"] == 0
    assert data["late_starts"] == data["schedule"]["late_by_client"]
    assert data["schedule"]["achieved_rate"] == pytest.approx(200, rel=0.1)
    assert data["handshakes_per_s"] == pytest.approx(200, rel=0.1)
    assert "latency*" in done.stderr and "service" in done.stderr


def test_capped_inflight_starts_late_and_the_corrected_latency_keeps_the_stall() -> None:
    # With at most 2 in flight, the handshakes due during a stall cannot even
    # start: a closed-loop tool would never have tried them. They start late,
    # counted as late starts, and their latency still counts from schedule.
    with raw_server(stall=0.3, period=1.0) as server:
        done, data = bench(server.url(), "--rate", "200", "--duration", "3", "--max-inflight", "2")
    assert done.returncode == 0, done.stderr
    assert data["latency_us"]["p99"] >= 250_000
    assert data["service_us"]["max"] >= 250_000  # the two caught in each stall
    assert data["late_starts"] >= 100  # ~60 were due during each of the 3 stalls
    schedule = data["schedule"]
    assert schedule["late_by_max_inflight"] >= 100
    # Those due while the scheduler waited for room are the cap's, even when
    # they started after it had room again: not blamed on the client.
    assert schedule["late_by_client"] < schedule["late_by_max_inflight"] / 5
    assert schedule["late_by_client"] + schedule["late_by_max_inflight"] == data["late_starts"]
    assert data["config"]["max_inflight"] == 2


def test_n_and_ramp() -> None:
    with raw_server() as server:
        done, counted = bench(server.url(), "--rate", "100", "-n", "40")
        ramp_done, ramped = bench(server.url(), "--rate", "200", "--ramp", "1", "--duration", "2")
    assert done.returncode == 0 and ramp_done.returncode == 0, done.stderr + ramp_done.stderr
    assert counted["handshakes"] == 40
    assert 0.35 <= counted["elapsed_s"] <= 1.0  # 40 at 100/s: the last due at 0.39 s
    # 0 to 200/s over the first second (100 handshakes), then 200/s for one more.
    assert ramped["handshakes"] == 300
    assert ramped["config"]["ramp_s"] == 1.0
    assert 1.9 <= ramped["elapsed_s"] <= 2.5


def test_a_client_that_cannot_keep_up_says_so() -> None:
    # 50,000 starts a second is far beyond one Python process: the schedule
    # slips and the report must say it was the client, not the server.
    with raw_server() as server:
        done, data = bench(
            server.url(), "--rate", "50000", "-n", "3000", "--max-inflight", "100000"
        )
    assert done.returncode == 0, done.stderr
    assert data["schedule"]["late_by_client"] > 30
    [warning] = [w for w in data["warnings"] if "could not keep the schedule" in w]
    assert f"warning: {warning}" in done.stderr
