"""``tinyws bench --compare URL2``: interleaved rounds and paired ratios, with server CPU."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.bench_servers import raw_server
from tests.servers import free_port
from tinyws.bench import compare
from tinyws.bench.results import Results

FLOOR = Path(__file__).resolve().parent.parent / "benchmarks" / "floor_server.py"


@contextmanager
def floor_server(*flags: str) -> Iterator[tuple[int, int]]:
    """Run benchmarks/floor_server.py; yield its port and PID."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(FLOOR), "--port", str(port), *flags],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert process.poll() is None and time.monotonic() < deadline, "floor server down"
            time.sleep(0.05)
        yield port, process.pid
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def bench(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "tinyws", "bench", *args, "--json", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, json.loads(done.stdout) if done.stdout else {}


def test_order_alternates() -> None:
    assert compare.order(3) == ["A", "B", "B", "A", "A", "B"]


def test_compare_two_servers_with_their_cpu(tmp_path: Path) -> None:
    hdr, svg = tmp_path / "cmp.hgrm", tmp_path / "cmp.svg"
    with floor_server() as (port_a, pid_a), floor_server("--reject") as (port_b, pid_b):
        url_a, url_b = f"ws://127.0.0.1:{port_a}/", f"ws://127.0.0.1:{port_b}/"
        done, data = bench(
            # Long enough for the servers' CPU time (counted in 10 ms ticks) to mean something.
            url_a, "--compare", url_b, "--rounds", "3", "--duration", "0.5", "-c", "4",
            "--server-pid", str(pid_a), "--compare-pid", str(pid_b),
            "--hdr", str(hdr), "--plot", str(svg),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = data["compare"]
    assert (result["a"], result["b"], result["rounds"]) == (url_a, url_b, 3)
    assert result["order"] == ["A", "B", "B", "A", "A", "B"]
    figures = result["figures"]
    assert set(figures) == {"handshakes_per_s", "p50_us", "p99_us", "server_cpu_us_per_handshake"}
    for figure in figures.values():
        assert len(figure["a"]) == len(figure["b"]) == 3
        ratio = figure["ratio"]
        expected = [a / b for a, b in zip(figure["a"], figure["b"], strict=True)]
        assert ratio["values"] == pytest.approx(expected, rel=0.01)
        assert ratio["min"] <= ratio["median"] <= ratio["max"]
        assert ratio["median"] == pytest.approx(sorted(expected)[1], rel=0.01)
    assert all(cpu > 0 for cpu in figures["server_cpu_us_per_handshake"]["a"])
    runs = data["runs"]
    assert [list(r["statuses"]) for r in runs["A"]] == [["101"]] * 3
    assert [list(r["statuses"]) for r in runs["B"]] == [["403"]] * 3
    assert figures["handshakes_per_s"]["a"] == [r["handshakes_per_s"] for r in runs["A"]]
    assert all("server_cpu" in r for r in runs["A"] + runs["B"])
    table = done.stderr  # --json - moves the text to stderr
    assert "figure" in table and "A/B median" in table
    for label in ("rate", "p50", "p99", "server CPU/hs"):
        assert f"\n{label} " in table
    assert hdr.exists() and (tmp_path / "cmp-b.hgrm").exists()
    assert 'data-series="A ' in svg.read_text() and 'data-series="B ' in svg.read_text()


def test_compare_without_pids_has_no_cpu_figure() -> None:
    with raw_server() as a, raw_server(reject=True) as b:
        done, data = bench(a.url(), "--compare", b.url(), "--rounds", "2", "-n", "50", "--quiet")
    assert done.returncode == 0, done.stderr
    assert set(data["compare"]["figures"]) == {"handshakes_per_s", "p50_us", "p99_us"}
    assert "server CPU/hs" not in done.stderr


def test_compare_with_errors_exits_1() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{probe.getsockname()[1]}/"
    with raw_server() as a:
        done, data = bench(a.url(), "--compare", dead, "--rounds", "1", "-n", "5", "--quiet")
    assert done.returncode == 1
    assert "refused: 5" in done.stderr
    assert data["compare"]["figures"] == {}  # nothing to divide by: no ratio at all
    assert [r["errors"] for r in data["runs"]["B"]] == [{"refused": 5}]


def test_ratios_median_and_range() -> None:
    a, b = compare.Side("A", "a"), compare.Side("B", "b")
    for rate_a, rate_b in ((100, 50), (300, 100), (200, 200)):
        for side, rate in ((a, rate_a), (b, rate_b)):
            results = Results(elapsed=1.0)
            for _ in range(rate):
                results.add(101, 1000)
            side.runs.append(results)
    ratio = compare.figures(a, b)["handshakes_per_s"]["ratio"]
    assert (ratio["median"], ratio["min"], ratio["max"]) == (2.0, 1.0, 3.0)
    text = compare.to_text(a, b, 3)
    assert "2.000x" in text and "1.000-3.000" in text


def test_compare_under_rate() -> None:
    with raw_server() as a, raw_server() as b:
        done, data = bench(
            a.url(), "--compare", b.url(), "--rounds", "2", "--rate", "200", "-n", "60", "--quiet"
        )
    assert done.returncode == 0, done.stderr
    assert set(data["compare"]["figures"]) == {"handshakes_per_s", "p50_us", "p99_us"}
    for run in data["runs"]["A"] + data["runs"]["B"]:
        assert (run["target_rate"], run["handshakes"]) == (200, 60)
