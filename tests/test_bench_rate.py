"""``tinyws bench --rate``: the open model, against a server that freezes.

The server stalls for 300 ms once a second. A closed-loop client would see
the stall in only ``-c`` samples; the open model keeps starting handshakes
on schedule, so every handshake due during a stall waits for it and the
corrected (from-schedule) percentiles show it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
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
    report = done.stderr  # the text report, for every message below
    assert done.returncode == 0, report
    assert len(server.stalls) >= 3
    assert data["target_rate"] == 200
    assert data["statuses"] == {"101": 600} and data["errors"] == {}, report
    latency, service, schedule = data["latency_us"], data["service_us"], data["schedule"]
    # About 30 % of the handshakes were due during a stall, and waited up to 300 ms.
    assert latency["p99"] >= 250_000, report
    assert latency["p50"] < latency["p99"] / 10, report
    assert latency["max"] <= STALL_US + 300_000, report  # one stall, not two
    # Started on time, so the time from the actual start sees the stall as well:
    # the open model's service time does not hide it either.
    assert service["p99"] >= 250_000, report
    # Never held back by the cap. (Starts may still be late by some milliseconds,
    # from the burst of answers after each stall or a busy machine: counted and
    # reported, not asserted here.)
    assert schedule["late_by_max_inflight"] == 0, report
    assert data["late_starts"] == schedule["late_by_client"]
    # Starts per second over the schedule: the rate the server was offered.
    assert schedule["achieved_rate"] == pytest.approx(200, rel=0.1), report
    # Responses over the wall time, which includes the drain of the last
    # handshakes (up to one stall): looser.
    assert data["handshakes_per_s"] == pytest.approx(200, rel=0.15), report
    assert "latency*" in report and "service" in report


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
    # they started after it had room again: not blamed on the client (whose
    # own lateness, on a busy machine, is the rest).
    assert schedule["late_by_client"] < schedule["late_by_max_inflight"]
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


def test_dead_target_stops_the_schedule_early() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{probe.getsockname()[1]}/"
    done, data = bench(dead, "--rate", "2000", "--duration", "30")
    assert done.returncode == 1
    assert data["stopped_early"] is True
    assert data["errors"]["refused"] >= 100
    assert data["elapsed_s"] < 5  # not the 30 s of the schedule
    assert "stopped early: the first" in done.stderr


def test_server_pid_that_ends_during_the_run() -> None:
    sleeper = subprocess.Popen(["sleep", "60"])  # the "server", ended mid-run below
    try:
        with raw_server() as server:
            args = [server.url(), "--rate", "100", "--duration", "3"]
            running = subprocess.Popen(
                [sys.executable, "-m", "tinyws", "bench", *args, "--quiet", "--json", "-",
                 "--server-pid", str(sleeper.pid)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            time.sleep(1.5)  # start-up, then well into the 3 s run
            sleeper.kill()
            sleeper.wait(timeout=5)  # reaped: no zombie left in /proc
            out, err = running.communicate(timeout=60)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=5)
    assert running.returncode == 0, err
    data = json.loads(out)
    assert "server_cpu" not in data
    assert "a --server-pid process ended during the run: no server CPU figure" in data["warnings"]


def test_server_pid_cpu_is_reported() -> None:
    with raw_server() as server:  # in this process: its CPU time is ours
        done, data = bench(
            server.url(), "--rate", "400", "-n", "400", "--server-pid", str(os.getpid())
        )
    assert done.returncode == 0, done.stderr
    cpu = data["server_cpu"]
    assert cpu["total_s"] > 0
    assert cpu["us_per_handshake"] == pytest.approx(cpu["total_s"] * 1e6 / 400, rel=0.01)
    assert "server CPU   " in done.stderr
