"""Run an ASGI app under a real server, as a subprocess on a free loopback port.

The end-to-end suite, the probes of the built-in server and the Autobahn
runner all need the same thing: start ``module:attr`` under some server, wait
until it accepts TCP connections, talk to it over sockets, stop it. Each
server is a `ServerSpec`: the modules it needs and the command line that
starts it. `run_server` is the context manager around one process.

A server whose package cannot be imported is skipped with the reason (in CI
every peer is installed through the ``test`` extra). A server that starts but
never listens, or dies on the way, fails with its captured output.

Processes are stopped by their own PID: SIGTERM (every server here treats it
as a graceful shutdown), then SIGKILL for the whole process group that was
created for it (granian runs its workers as child processes).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

Command = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: its name, what it imports, its command line."""

    name: str
    modules: tuple[str, ...]
    command: Command

    def missing_module(self) -> str | None:
        """The first required module that cannot be imported, if any."""
        for module in self.modules:
            if importlib.util.find_spec(module) is None:
                return module
        return None


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _tinyws(app: str, port: int) -> list[str]:
    return _python("-m", "tinyws", "serve", app, "--host", HOST, "--port", str(port))


def _uvicorn(*flags: str) -> Command:
    def command(app: str, port: int) -> list[str]:
        return _python("-m", "uvicorn", app, "--host", HOST, "--port", str(port), *flags)

    return command


def _hypercorn(app: str, port: int) -> list[str]:
    return _python("-m", "hypercorn", app, "--bind", f"{HOST}:{port}")


def _granian(app: str, port: int) -> list[str]:
    return _python("-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port), app)


def _daphne(app: str, port: int) -> list[str]:
    return _python("-m", "daphne", "--bind", HOST, "--port", str(port), app)


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec("tinyws", ("tinyws", "h11", "wsproto"), _tinyws),
        ServerSpec(
            "uvicorn-wsproto",
            ("uvicorn", "h11", "wsproto"),
            _uvicorn("--http", "h11", "--ws", "wsproto"),
        ),
        # What uvicorn's "auto" picks when its "standard" extras are installed;
        # named explicitly so that a missing extra skips instead of silently
        # running the wsproto variant twice.
        ServerSpec(
            "uvicorn",
            ("uvicorn", "httptools", "websockets"),
            _uvicorn("--http", "httptools", "--ws", "websockets-sansio"),
        ),
        ServerSpec("hypercorn", ("hypercorn",), _hypercorn),
        ServerSpec("granian", ("granian",), _granian),
        ServerSpec("daphne", ("daphne",), _daphne),
    )
}


def free_port() -> int:
    """A loopback port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    """A started server process: where it listens and what it printed."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        """A block for assertion messages: the server and its recent output."""
        return f"--- {self.name} on port {self.port}, output tail ---\n{self.log()[-4000:]}"


def require(name: str) -> ServerSpec:
    """The spec of server ``name``; skip the test if the server is not installed."""
    spec = SERVERS[name]
    missing = spec.missing_module()
    if missing is not None:
        pytest.skip(f"server {name!r} not installed: cannot import {missing!r}")
    return spec


@contextlib.contextmanager
def run_server(
    name: str,
    app: str,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Start ``app`` ("module:attr") under server ``name``; stop it on exit."""
    spec = require(name)
    with tempfile.TemporaryDirectory(prefix="tinyws-e2e-") as tmp:
        server = _start(spec, app, extra_args, env, Path(tmp) / "server.log")
        try:
            _wait_listening(server)
            yield server
        finally:
            stop(server)


def _start(
    spec: ServerSpec,
    app: str,
    extra_args: Sequence[str],
    env: dict[str, str] | None,
    log_path: Path,
) -> RunningServer:
    port = free_port()
    command = [*spec.command(app, port), *extra_args]
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RunningServer(spec.name, port, process, log_path)


def _wait_listening(server: RunningServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode} before listening\n"
                + server.describe()
            )
        with contextlib.suppress(OSError):
            socket.create_connection(server.address, timeout=1.0).close()
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"{server.name} did not listen within {START_TIMEOUT}s\n" + server.describe()
    )


def stop(server: RunningServer, sig: int = signal.SIGTERM) -> int:
    """Stop the process (``sig``, then SIGKILL); return its exit status."""
    process = server.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    # Whatever is left of the group made for this server (workers) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout=STOP_TIMEOUT)
