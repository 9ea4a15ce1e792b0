"""A real redis-server for the broadcast tests: started on a free loopback
port with no persistence, stopped by PID. ``redis-cli`` (shipped with it)
reads its counters, so the tests never check tinyws with tinyws's own client."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from tests.servers import free_port

START_TIMEOUT = 10.0


def require_redis() -> str:
    """The redis-server binary; skip when it is not installed (.ci/run installs it)."""
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


class RedisServer:
    """One redis-server process; ``restart()`` keeps the port, as a real restart does."""

    def __init__(self, workdir: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [require_redis(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", self._workdir]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT
        while self.cli("PING") != "PONG":
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=START_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str) -> str:
        """One command through redis-cli; "" when the server does not answer."""
        result = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    def calls(self, command: str) -> int:
        """How often ``command`` ran since the last ``CONFIG RESETSTAT``."""
        for line in self.cli("INFO", "commandstats").splitlines():
            if line.startswith(f"cmdstat_{command.lower()}:"):
                fields = dict(field.split("=") for field in line.split(":", 1)[1].split(","))
                return int(fields["calls"])
        return 0

    def subscribers(self, channel: str) -> int:
        """PUBSUB NUMSUB: how many connections are subscribed to ``channel``."""
        lines = self.cli("PUBSUB", "NUMSUB", channel).splitlines()
        return int(lines[1])


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="tinyws-redis-") as workdir:
        server = RedisServer(workdir)
        server.start()
        try:
            yield server
        finally:
            server.stop()
