"""Usage errors of ``tinyws bench`` and the formatting of its report."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path

import pytest

from tests.servers import run_server
from tinyws.bench import cli, report, runner
from tinyws.bench.client_handshake import Target
from tinyws.bench.results import Results

TARGET = Target(2, ("127.0.0.1", 9), b"", b"", frozenset())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1/"], "expected a ws://host[:port]/path or wss:// URL"),
        (["ws:///path"], "expected a ws://host[:port]/path or wss:// URL"),
        (["ws://127.0.0.1/", "--insecure"], "--cacert and --insecure are for wss:// URLs"),
        (["wss://127.0.0.1/", "--insecure", "--cacert", "x.pem"], "not both"),
        (["wss://127.0.0.1/", "--cacert", "/no/such.pem"], "cannot load --cacert"),
        (["ws://127.0.0.1/", "--ramp", "2"], "--ramp needs --rate"),
        (["ws://127.0.0.1/", "--max-inflight", "2"], "--max-inflight needs --rate"),
        (["ws://127.0.0.1/", "--rate", "0"], "must be a positive number"),
        (["ws://127.0.0.1/", "--rounds", "3"], "--rounds needs --compare"),
        (["ws://127.0.0.1/", "--server-pid", "x"], "expected PID[,PID]"),
        (["ws://127.0.0.1/", "--server-pid", "999999999"], "no such process"),
        (["ws://127.0.0.1:99999/"], "bad port"),
        (["ws://127.0.0.1/", "-n", "5", "--duration", "2"], "not both"),
        (["ws://127.0.0.1/", "-H", "NoColon"], "expected -H 'Name: value'"),
        (["ws://127.0.0.1/", "-H", "Bad Name: x"], "expected -H 'Name: value'"),
        (["ws://127.0.0.1/", "-H", "Sec-WebSocket-Key: x"], "generated afresh"),
        (["ws://127.0.0.1/", "--subprotocol", "a b"], "bad subprotocol"),
        (["ws://127.0.0.1/", "--expect", "42"], "takes an HTTP status"),
        (["ws://127.0.0.1/", "--warmup", "-1"], "cannot be negative"),
        (["ws://127.0.0.1/", "-n", "0"], "must be a positive integer"),
        (["ws://127.0.0.1/", "-c", "x"], "invalid _positive_int value"),
        (["ws://127.0.0.1/", "--timeout", "0"], "must be a positive number"),
        (["ws://127.0.0.1/", "--backend", "curio"], "invalid choice"),
        ([], "the following arguments are required: URL"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "usage: tinyws bench" in err
    assert message in err


def test_unwritable_json_file_fails_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no" / "such" / "dir.json"
    assert cli.main(["ws://127.0.0.1:9/", "--json", str(missing)]) == 2
    assert "cannot write --json file" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("-n N", "--duration", "-c C", "-H", "--subprotocol", "--expect", "--warmup"):
        assert flag in out
    assert "Exit status" in out


def test_defaults() -> None:
    plan = cli.make_plan(cli.make_parser().parse_args(["ws://localhost/"]))
    assert (plan.count, plan.duration, plan.concurrency, plan.warmup) == (1000, None, 1, 0)
    assert (plan.timeout, plan.expect) == (10.0, None)
    assert plan.target.address[1] == 80
    assert plan.target.head.startswith(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
    assert plan.target.head.endswith(b"\r\nSec-WebSocket-Key: ")
    timed = cli.make_plan(cli.make_parser().parse_args(["ws://localhost/", "--duration", "3"]))
    assert (timed.count, timed.duration) == (None, 3.0)


def test_ipv6_literal() -> None:
    plan = cli.make_plan(cli.make_parser().parse_args(["ws://[::1]:8080/x"]))
    assert plan.target.address[:2] == ("::1", 8080)
    assert b"\r\nHost: [::1]:8080\r\n" in plan.target.head


def test_python_m_tinyws_bench_dispatches_here() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tinyws", "bench", "ftp://x/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "expected a ws://host[:port]/path or wss:// URL" in done.stderr


def test_duration_format() -> None:
    assert report.duration(12.34) == "12.3 µs"
    assert report.duration(456.7) == "457 µs"
    assert report.duration(4567.0) == "4.57 ms"
    assert report.duration(45_678.0) == "45.7 ms"
    assert report.duration(2_500_000.0) == "2.50 s"


def results(cpu: float) -> Results:
    out = Results(elapsed=2.0, cpu_user=cpu * 2 * 0.75, cpu_system=cpu * 2 * 0.25)
    for latency_ns in (100_000, 200_000, 300_000, 400_000):
        out.add(101, latency_ns)
    out.fail("refused")
    return out


def test_text_report() -> None:
    plan = runner.Plan(target=TARGET, concurrency=4, count=5)
    text = report.to_text("ws://h/", plan, results(0.5), "trio")
    assert "5 in 2.00 s, 4 concurrent (trio)" in text
    assert "2 handshakes/s" in text
    assert "101: 4" in text and "refused: 1" in text
    assert "50% of one core" in text
    assert "warning" not in text


def test_client_bound_warning() -> None:
    plan = runner.Plan(target=TARGET)
    text = report.to_text("ws://h/", plan, results(0.95), "asyncio")
    assert "warning: the client kept a CPU core busy" in text
    assert report.to_json("ws://h/", plan, results(0.95), "asyncio")["client_cpu"]["bound"]


def test_json_latency_in_microseconds() -> None:
    plan = runner.Plan(target=TARGET)
    data = report.to_json("ws://h/", plan, results(0.1), "asyncio")
    # Percentiles are bucket tops, within 0.1 % of the sample: 200 µs shows as 200.1.
    assert data["latency_us"] == pytest.approx(
        {
            "min": 100.0,
            "mean": 250.0,
            "p50": 200.0,
            "p90": 400.0,
            "p99": 400.0,
            "p99_9": 400.0,
            "max": 400.0,
        },
        rel=1e-3,
    )
    assert data["statuses"] == {"101": 4}
    assert data["errors"] == {"refused": 1}
    assert (data["handshakes"], data["responses"], data["handshakes_per_s"]) == (5, 4, 2.0)


def test_report_without_responses() -> None:
    plan = runner.Plan(target=TARGET)
    failed = Results(elapsed=2.0, cpu_user=2.0)
    failed.fail("refused")
    text = report.to_text("ws://h/", plan, failed, "asyncio")
    assert "statuses     none" in text and "refused: 1" in text
    assert "warning" not in text  # nothing was measured, so nothing was limited
    latency = report.to_json("ws://h/", plan, failed, "asyncio")["latency_us"]
    assert latency["p50"] is None and latency["max"] is None


def test_short_runs_are_not_judged_client_bound() -> None:
    plan = runner.Plan(target=TARGET)
    short = Results(elapsed=0.1, cpu_user=0.1)
    short.add(101, 1000)
    assert "warning" not in report.to_text("ws://h/", plan, short, "asyncio")


# --- the real command against dead and live targets ------------------------------------
# Each runs `python -m tinyws bench` in a child process, bounded by a timeout.

BACKENDS = ["asyncio", "trio"]


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinyws", "bench", *args, "--quiet"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def stderr_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("tinyws bench:")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_target_stops_after_100(backend: str) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/"
    done = bench(url, "--backend", backend)  # the default -n is 1000
    assert done.returncode == 1
    [line] = stderr_lines(done)
    assert line.startswith(
        "tinyws bench: stopped early: the first 100 handshakes all failed without a "
        "response (first error refused: "
    )
    assert line.endswith(f"; is the server up at {url}?")
    assert "errors       refused: 100\n" in done.stdout


def test_fewer_handshakes_than_100_all_count() -> None:
    done = bench(f"ws://127.0.0.1:{closed_port()}/", "-n", "7", "-c", "3")
    assert done.returncode == 1
    [line] = stderr_lines(done)
    assert "the first 7 handshakes all failed without a response (first error refused" in line


def test_silent_target_stops_on_timeouts() -> None:
    # A listener that never accepts: the kernel completes the TCP handshake
    # (backlog), nothing ever answers the request.
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        port = listener.getsockname()[1]
        done = bench(f"ws://127.0.0.1:{port}/", "-n", "3", "--timeout", "0.2")
    assert done.returncode == 1
    [line] = stderr_lines(done)
    assert "the first 3 handshakes all failed without a response" in line
    assert "(first error timeout: no response within 0.2 s)" in line


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_connections_stop_the_run(backend: str) -> None:
    def reset_all(listener: socket.socket) -> None:
        with suppress(OSError):
            while True:
                conn, _ = listener.accept()
                # SO_LINGER 0: close() sends RST instead of FIN.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

    with socket.create_server(("127.0.0.1", 0), backlog=128) as listener:
        threading.Thread(target=reset_all, args=(listener,), daemon=True).start()
        port = listener.getsockname()[1]
        done = bench(f"ws://127.0.0.1:{port}/", "-n", "150", "--backend", backend)
        listener.shutdown(socket.SHUT_RDWR)
    assert done.returncode == 1
    [line] = stderr_lines(done)
    assert "the first 100 handshakes all failed without a response (first error reset: " in line
    assert "handshakes   100 in" in done.stdout
    assert "errors       reset: 100\n" in done.stdout


def test_one_response_disarms_the_early_stop() -> None:
    def answer_once(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        listener.close()  # every later handshake is refused

    listener = socket.create_server(("127.0.0.1", 0), backlog=1)
    port = listener.getsockname()[1]
    threading.Thread(target=answer_once, args=(listener,), daemon=True).start()
    done = bench(f"ws://127.0.0.1:{port}/", "-n", "150")
    assert done.returncode == 1
    assert stderr_lines(done) == []
    assert "handshakes   150 in" in done.stdout
    assert "statuses     403: 1\n" in done.stdout


def test_unresolvable_host_stops_before_the_first_handshake() -> None:
    done = bench("ws://no-such-host.invalid/")
    assert (done.returncode, done.stdout) == (1, "")
    [line] = stderr_lines(done)
    assert line.startswith(
        "tinyws bench: stopped before the first handshake: dns: cannot resolve "
        "'no-such-host.invalid'"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_json_dash_writes_json_to_stdout(backend: str) -> None:
    with run_server("tinyws", "tests.apps.echo:app", ["--backend", backend]) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        done = bench(url, "-n", "20", "-c", "2", "--json", "-", "--backend", backend)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # nothing but the JSON document
    assert (data["statuses"], data["errors"], data["stopped_early"]) == ({"101": 20}, {}, False)
    assert f"target       {url}\n" in done.stderr  # the text report moved to stderr
    assert not Path("-").exists()


def test_json_dash_on_a_dead_target() -> None:
    done = bench(f"ws://127.0.0.1:{closed_port()}/", "-n", "4", "--json", "-")
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert (data["errors"], data["stopped_early"]) == ({"refused": 4}, True)
    assert "stopped early: the first 4 handshakes" in done.stderr
