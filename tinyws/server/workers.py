"""`tinyws serve --workers N`: a supervisor and N worker processes on one port.

The supervisor never serves. It binds the port and starts each worker as a
fresh `tinyws serve` process with the same options (`worker.py`), which runs
the app's lifespan and serves on the socket it was given.

**Sockets.** On Linux the supervisor opens one listening socket per worker
*slot*, each bound to the port with `SO_REUSEPORT`, so the kernel spreads new
connections evenly over them (one shared accept queue piles most connections
on whichever worker wakes first). A slot's socket outlives its workers: the
supervisor keeps it open and hands it to each worker of that slot. This is
what makes restarts lossless. Closing a listening socket resets every
connection still in its accept queue (Linux moves them to a sibling socket
only when `net.ipv4.tcp_migrate_req` is set, which it is not by default),
and nothing can drain that queue without racing new arrivals. Here no
listening socket is closed while the server runs: a stopping worker stops
accepting and drops its own descriptor, and whatever is queued is accepted
by the slot's other worker. Elsewhere (no load-balancing `SO_REUSEPORT`) all
slots share one socket.

**Replacing.** A worker that exits unexpectedly is replaced in its slot,
at once the first time and then with a growing delay if it keeps dying soon
after starting. Workers that die *before* serving (the app's lifespan fails,
the module does not import any more) five times in a row make the
supervisor give up: it stops the others and exits 1 naming the reason.

**Signals.** SIGINT/SIGTERM: every worker is told to stop (WebSockets
closed with 1001, in-flight requests finished), and the supervisor exits 0
once they have; a second signal makes them stop at once. SIGHUP: the
workers are replaced one at a time, each new one serving before its
predecessor is told to stop; a new worker that fails to start ends the
replacement and leaves the old ones serving.
"""

from __future__ import annotations

import logging
import selectors
import signal
import socket
import sys
import time
from collections import deque

from tinyws.server.config import Config
from tinyws.server.server import configure_logging
from tinyws.server.worker_pool import Exit, Pool, Worker, WorkerState

logger = logging.getLogger("tinyws.server")

#: Workers that die before serving this many times in a row: give up.
STARTUP_FAILURES = 5
#: A worker that lived this long before dying is replaced at once; one that
#: died sooner doubles the delay before its slot's next start.
STABLE_SECONDS = 10.0
MAX_DELAY = 8.0
_TICK = 0.1  # seconds between looks at the workers' exit statuses


def run_supervisor(argv: list[str], config: Config) -> int:
    """Run `tinyws serve` with `argv` (its own command line) as N workers.

    Returns the exit status: 0 after a stop by signal, 1 when the port
    cannot be bound or the workers keep failing at startup.
    """
    if sys.platform == "win32":  # workers inherit their sockets: POSIX descriptor passing
        sys.stderr.write("tinyws serve: --workers needs Linux, macOS or another POSIX system\n")
        return 2
    configure_logging(config.log_level)
    try:
        sockets = bind_slots(config)
    except OSError as exc:
        sys.stderr.write(f"tinyws serve: {exc}\n")
        return 1
    # argparse keeps the last occurrence: the workers run the same options, one process each.
    command = [sys.executable, "-m", "tinyws", "serve", *argv, "--workers", "1"]
    try:
        return Supervisor(command, sockets, config).run()
    finally:
        for sock in set(sockets):
            sock.close()


def bind_slots(config: Config) -> list[socket.socket]:
    """One listening socket per worker on Linux (`SO_REUSEPORT`), else one shared."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    balanced = sys.platform.startswith("linux")
    first = socket.create_server(
        (config.host, config.port), family=family, backlog=config.backlog, reuse_port=balanced
    )
    if not balanced:
        return [first] * config.workers
    address = (config.host, first.getsockname()[1])  # with port 0: the one the kernel chose
    sockets = [first]
    try:
        for _ in range(config.workers - 1):
            sockets.append(
                socket.create_server(
                    address, family=family, backlog=config.backlog, reuse_port=True
                )
            )
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Supervisor:
    """The loop: signals in; workers started, replaced and stopped."""

    def __init__(self, command: list[str], sockets: list[socket.socket], config: Config) -> None:
        self.config = config
        self.selector = selectors.DefaultSelector()
        self.pool = Pool(command, sockets, self.selector)
        self.stopping = False
        self.stop_deadline = float("inf")
        self.failure: str | None = None
        self.failures = 0  # workers in a row that died before serving
        self.due: dict[int, float] = {}  # slot -> when its next worker starts
        self.delays: dict[int, float] = {}  # slot -> delay after its next early death
        self.reloading: deque[int] = deque()  # slots a SIGHUP has still to replace
        self.replacement: Worker | None = None  # the new worker of the slot being replaced
        self.retiring: Worker | None = None  # the old one, stopping
        self.reload_active = False
        self._signals: deque[int] = deque()

    def run(self) -> int:
        wake_r, wake_w = socket.socketpair()
        wake_w.setblocking(False)
        signums = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {signum: signal.signal(signum, self._on_signal) for signum in signums}
        previous_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        self.selector.register(wake_r, selectors.EVENT_READ)
        try:
            self._announce()
            for slot in range(self.config.workers):
                self.pool.spawn(slot)
            while self.pool.workers or not self.stopping:
                self._tick(wake_r)
        finally:
            self.pool.kill_all()
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.selector.close()
            wake_r.close()
            wake_w.close()
        if self.failure is not None:
            sys.stderr.write(f"tinyws serve: {self.failure}\n")
            return 1
        logger.info("all workers stopped")
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _announce(self) -> None:
        config = self.config
        host = f"[{config.host}]" if ":" in config.host else config.host
        port = self.pool.sockets[0].getsockname()[1]
        logger.info(
            "supervisor %d: %d workers on http://%s:%d", self.pool.pid, config.workers, host, port
        )

    def _tick(self, wake: socket.socket) -> None:
        for key, _ in self.selector.select(_TICK):
            if key.fileobj is wake:
                wake.recv(4096)
            elif self.pool.read(key.data):
                self._ready(key.data)
        self._handle_signals()
        for exit_ in self.pool.reap():
            self._exited(exit_)
        if self.stopping:
            if time.monotonic() > self.stop_deadline:
                logger.warning("workers still running after the grace period: killing them")
                self.pool.kill_all()
            return
        self._start_due()
        self._reload_step()

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.popleft()
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                if self.stopping or self.reload_active:
                    logger.warning("received SIGHUP while %s: ignored", self._busy())
                    continue
                logger.info("received SIGHUP: replacing the workers one at a time")
                self.reloading.extend(range(self.config.workers))
                self.reload_active = True
            elif self.stopping:
                logger.warning("received %s again: stopping the workers now", name)
                self.pool.stop_all_now()
            else:
                logger.info("received %s: stopping the workers", name)
                self.stop()

    def _busy(self) -> str:
        return "stopping" if self.stopping else "replacing the workers already"

    def stop(self) -> None:
        self.stopping = True
        self.stop_deadline = time.monotonic() + _stop_grace(self.config)
        self.reloading.clear()
        self.due.clear()
        self.pool.stop_all()

    def _ready(self, worker: Worker) -> None:
        logger.info("worker %d serving (slot %d)", worker.pid, worker.slot)
        self.failures = 0
        old, worker.replacing = worker.replacing, None
        if worker is self.replacement:
            self.replacement = None
            if old is not None and old.pid in self.pool.workers:
                self.retiring = old
                self.pool.stop(old)

    def _exited(self, exit_: Exit) -> None:
        worker = exit_.worker
        if worker.state is WorkerState.STOPPING or self.stopping:
            logger.info("worker %d stopped (%s)", worker.pid, exit_.how)
            return
        if worker is self.replacement:  # a SIGHUP replacement that did not start
            logger.error(
                "worker %d failed to start (%s); keeping the old workers", worker.pid, exit_.reason
            )
            self.replacement = None
            self.reloading.clear()
            self.reload_active = False
            return
        if worker.state is WorkerState.STARTING:
            self.failures += 1
            if self.failures >= STARTUP_FAILURES:
                self.failure = (
                    f"workers failed to start {self.failures} times in a row; "
                    f"the last one: {exit_.reason}"
                )
                self.stop()
                return
        if self.pool.in_slot(worker.slot) is not None:
            return  # its SIGHUP replacement is already there
        delay = self._next_delay(worker.slot, exit_.lived)
        logger.warning(
            "worker %d exited (%s); starting another in %.2fs", worker.pid, exit_.reason, delay
        )
        self.due[worker.slot] = time.monotonic() + delay

    def _next_delay(self, slot: int, lived: float) -> float:
        if lived >= STABLE_SECONDS:
            self.delays.pop(slot, None)
        delay = self.delays.get(slot, 0.0)
        self.delays[slot] = min(MAX_DELAY, max(0.25, delay * 2))
        return delay

    def _start_due(self) -> None:
        now = time.monotonic()
        for slot, when in list(self.due.items()):
            if when <= now:
                del self.due[slot]
                self.pool.spawn(slot)

    def _reload_step(self) -> None:
        """SIGHUP: start the next slot's new worker once the previous old one is gone."""
        if self.replacement is not None:
            return
        if self.retiring is not None:
            if self.retiring.pid in self.pool.workers:
                return
            self.retiring = None
        while self.reloading:
            slot = self.reloading.popleft()
            old = self.pool.in_slot(slot)
            if old is not None:  # an empty slot gets a fresh worker anyway
                self.replacement = self.pool.spawn(slot, replacing=old)
                return
        if self.reload_active:
            self.reload_active = False
            logger.info("SIGHUP: every worker replaced")


def _stop_grace(config: Config) -> float:
    """How long workers get to stop before they are killed."""
    return config.shutdown_timeout + config.ws_close_timeout + 5.0
