"""`tinyws serve --workers 2` over real sockets, on both backends.

Which worker served a connection is read from the app itself
(``tests/apps/workers.py`` answers with its PID), so every assertion is
about what a client sees: who answers, what close code arrives, whether a
connection was refused or reset, the exit status and the last message.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.servers import HOST, ROOT, RunningServer, free_port, run_server
from tests.wire import CLOSE, TEXT, Conn, close_frame, handshake, read_frame, read_head, request
from tests.wire import read_response as read_http_response
from tinyws.server.cli import main as serve_main

APP = "tests.apps.workers:app"
BACKENDS = ["asyncio", "trio"]
WAIT = 60.0  # seconds any one expectation may take on a loaded machine
REQUEST_TIMEOUT = 20.0


def wait_for(condition: Callable[[], bool], what: str, server: RunningServer) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT}s: {what}\n" + server.describe())
        time.sleep(0.05)


@contextlib.contextmanager
def workers(backend: str, *args: str) -> Iterator[RunningServer]:
    """`tinyws serve` with two workers, once both say they serve."""
    with run_server("tinyws", APP, ["--workers", "2", "--backend", backend, *args]) as server:
        wait_for(lambda: server.log().count(" serving (slot ") >= 2, "2 workers serving", server)
        yield server


def get_pid(server: RunningServer) -> int:
    """A fresh connection's GET /pid: the PID of the worker that took it."""
    with Conn(server.address, timeout=REQUEST_TIMEOUT) as conn:
        conn.send(request(b"GET", b"/pid", [(b"Connection", b"close")]))
        response = read_http_response(conn)
    assert response.status == 200, response
    return int(response.body)


def both_pids(server: RunningServer) -> set[int]:
    pids: set[int] = set()
    for _ in range(200):
        pids.add(get_pid(server))
        if len(pids) == 2:
            return pids
    raise AssertionError(f"200 connections all went to {pids}\n" + server.describe())


@pytest.mark.parametrize("backend", BACKENDS)
def test_connections_spread_over_both_workers(backend: str) -> None:
    with workers(backend) as server:
        counts: dict[int, int] = {}
        for _ in range(60):
            pid = get_pid(server)
            counts[pid] = counts.get(pid, 0) + 1
        assert len(counts) == 2, counts
        assert server.process.pid not in counts  # the supervisor serves nothing
        # The kernel hashes each connection to a socket: about 30 each; fewer
        # than 10 of 60 on one side happens with odds of about 1 in 10^7.
        assert min(counts.values()) >= 10, counts


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_worker_is_replaced(backend: str) -> None:
    with workers(backend) as server:
        before = both_pids(server)
        victim, survivor = sorted(before)
        os.kill(victim, signal.SIGKILL)
        after: set[int] = set()
        deadline = time.monotonic() + WAIT
        while len(after - before) == 0 or survivor not in after:
            assert time.monotonic() < deadline, f"no new worker: {after}\n" + server.describe()
            after.add(get_pid(server))  # none is refused, even while the slot is empty
        assert victim not in after
        assert len(after) == 2, after
        assert f"worker {victim} exited (killed by SIGKILL)" in server.log()


def open_websockets(server: RunningServer) -> dict[Conn, int]:
    """WebSockets until both workers hold some: each connection and its worker's PID."""
    conns: dict[Conn, int] = {}
    for _ in range(40):
        conn = Conn(server.address, timeout=REQUEST_TIMEOUT)
        conn.send(handshake(b"/ws"))
        assert read_head(conn).status == 101
        frame = read_frame(conn)
        assert frame.opcode == TEXT, frame
        conns[conn] = int(frame.payload)
        if len(set(conns.values())) == 2 and len(conns) >= 4:
            return conns
    raise AssertionError(f"40 WebSockets all went to {set(conns.values())}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("signum", "group"),
    [
        (signal.SIGTERM, False),
        (signal.SIGINT, False),
        # A process manager signalling the whole group (systemd's default), or
        # Ctrl-C in a terminal: one graceful stop all the same.
        (signal.SIGTERM, True),
        (signal.SIGINT, True),
    ],
)
def test_a_signal_closes_every_websocket_with_1001(backend: str, signum: int, group: bool) -> None:
    with workers(backend) as server:
        conns = open_websockets(server)
        try:
            (os.killpg if group else os.kill)(server.process.pid, signum)
            for conn in conns:
                frame = read_frame(conn)
                assert (frame.opcode, frame.close_code) == (CLOSE, 1001), frame
                conn.send(close_frame(1001))
        finally:
            for conn in conns:
                conn.close()
        assert server.process.wait(timeout=WAIT) == 0, server.describe()
        log = server.log()
        for pid in set(conns.values()):
            assert f"worker {pid} stopped (exit status 0)" in log


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_signal_stops_the_workers_at_once(backend: str) -> None:
    # Clients that never answer the close frame would hold a graceful stop for 30 s.
    with workers(backend, "--ws-close-timeout", "30") as server:
        conns = open_websockets(server)
        try:
            os.kill(server.process.pid, signal.SIGTERM)
            for conn in conns:
                assert read_frame(conn).close_code == 1001
            started = time.monotonic()
            os.kill(server.process.pid, signal.SIGTERM)
            assert server.process.wait(timeout=WAIT) == 0, server.describe()
            assert time.monotonic() - started < 15, server.describe()
        finally:
            for conn in conns:
                conn.close()
        assert "received SIGTERM again: stopping the workers now" in server.log()


class Hammer:
    """A client connecting in a loop (one request per connection) on a thread."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.pids: list[int] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pids.append(get_pid(self.server))
            except (OSError, EOFError, AssertionError, ValueError) as exc:
                self.errors.append(exc)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sighup_replaces_every_worker_without_refusing_a_connection(backend: str) -> None:
    with workers(backend) as server:
        before = both_pids(server)
        with Hammer(server) as hammer:
            wait_for(lambda: len(hammer.pids) >= 20, "requests before SIGHUP", server)
            os.kill(server.process.pid, signal.SIGHUP)
            wait_for(lambda: "every worker replaced" in server.log(), "SIGHUP done", server)
            served = len(hammer.pids)
            wait_for(lambda: len(set(hammer.pids[served:])) == 2, "both new workers", server)
        assert hammer.errors == []
        after = set(hammer.pids[served:])
        assert after.isdisjoint(before), (before, after)
        assert len(hammer.pids) > 40
        assert server.process.poll() is None  # still serving, on the new workers


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sighup_whose_new_worker_fails_keeps_the_old_ones(
    backend: str, tmp_path: pathlib.Path
) -> None:
    broken = tmp_path / "broken"
    env = {"WORKERS_APP_BROKEN": str(broken)}
    args = ["--workers", "2", "--backend", backend]
    with run_server("tinyws", APP, args, env) as server:
        wait_for(lambda: server.log().count(" serving (slot ") >= 2, "2 workers serving", server)
        before = both_pids(server)
        broken.touch()  # the release deployed meanwhile does not start
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for(lambda: "keeping the old workers" in server.log(), "the failed start", server)
        assert "failed to start (startup failed: this release is broken)" in server.log()
        assert {get_pid(server) for _ in range(40)} == before
        broken.unlink()  # fixed: the next SIGHUP goes through
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for(lambda: "every worker replaced" in server.log(), "SIGHUP done", server)
        assert {get_pid(server) for _ in range(40)}.isdisjoint(before)


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tinyws", "serve", "--host", HOST, *args]


def run_to_exit(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_workers_that_keep_failing_at_startup_end_the_server(backend: str) -> None:
    port = str(free_port())
    app = "tests.apps.failing_startup:app"
    result = run_to_exit(serve_command(app, "--port", port, "--workers", "2", "--backend", backend))
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "tinyws serve: workers failed to start 5 times in a row; "
        "the last one: startup failed: no database today"
    )


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.create_server((HOST, 0)) as taken:
        port = str(taken.getsockname()[1])
        result = run_to_exit(serve_command(APP, "--port", port, "--workers", "2"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tinyws serve: [Errno ") and "in use" in last, last


def test_workers_below_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main([APP, "--workers", "0"]) == 2
    assert capsys.readouterr().err.endswith("tinyws serve: workers must be at least 1\n")


def test_workers_stop_when_the_supervisor_is_killed() -> None:
    with workers("asyncio") as server:
        pids = both_pids(server)
        os.kill(server.process.pid, signal.SIGKILL)

        def refused() -> bool:
            try:
                socket.create_connection(server.address, timeout=1.0).close()
            except ConnectionRefusedError:
                return True
            return False

        wait_for(refused, "the port closed", server)
        for pid in pids:
            wait_for(functools.partial(_gone, pid), f"worker {pid} exited", server)


def _gone(pid: int) -> bool:
    """The process exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
