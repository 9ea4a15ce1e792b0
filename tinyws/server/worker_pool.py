"""The supervisor's side of its workers: processes, states and channels.

A worker moves through three states, driven by two events:

    STARTING ──ready──▶ SERVING
        │                  │
        └──stop──▶ STOPPING ◀──stop──┘

READY is the worker's `R` on its channel (lifespan done, serving). STOP is
the supervisor's `S`. A worker told to stop while starting may still report
ready afterwards; that changes nothing. Exiting is not a state: the pool
forgets a worker once its process has exited, and reports how (`Exit`).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import selectors
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field

from tinyws.server.worker import ENV, FAILED, READY, STOP, STOP_NOW

logger = logging.getLogger("tinyws.server")


class WorkerState(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"


class Order(enum.Enum):
    READY = "the worker said it serves"
    STOP = "the supervisor told it to stop"


_MOVES: dict[WorkerState, dict[Order, WorkerState]] = {
    WorkerState.STARTING: {Order.READY: WorkerState.SERVING, Order.STOP: WorkerState.STOPPING},
    WorkerState.SERVING: {Order.STOP: WorkerState.STOPPING},
    WorkerState.STOPPING: {Order.READY: WorkerState.STOPPING, Order.STOP: WorkerState.STOPPING},
}


@dataclass(eq=False)
class Worker:
    """One worker process and the supervisor's end of its channel."""

    slot: int
    process: subprocess.Popen[bytes]
    channel: socket.socket
    started: float
    #: The worker this one replaces (SIGHUP), told to stop once this one serves.
    replacing: Worker | None = None
    state: WorkerState = WorkerState.STARTING
    #: Why it could not start, as the worker itself said.
    reason: str = ""
    buffer: bytes = field(default=b"", repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def move(self, order: Order) -> None:
        moves = _MOVES[self.state]
        if order not in moves:
            raise RuntimeError(f"worker {self.pid}: {order.value} while {self.state.value}")
        self.state = moves[order]


@dataclass(frozen=True)
class Exit:
    """A worker that has exited: how, and after how long."""

    worker: Worker
    how: str
    lived: float

    @property
    def reason(self) -> str:
        return self.worker.reason or self.how


class Pool:
    """Starts workers on the slots' sockets, reads their channels, reaps them."""

    def __init__(
        self, command: list[str], sockets: list[socket.socket], selector: selectors.BaseSelector
    ) -> None:
        self.command = command
        self.sockets = sockets
        self.selector = selector
        self.workers: dict[int, Worker] = {}  # by PID
        self.pid = os.getpid()

    def spawn(self, slot: int, replacing: Worker | None = None) -> Worker:
        listener = self.sockets[slot]
        ours, theirs = socket.socketpair()
        fds = (listener.fileno(), theirs.fileno())
        env = {**os.environ, ENV: f"{fds[0]},{fds[1]}"}
        try:
            process = subprocess.Popen(
                self.command, env=env, pass_fds=fds, stdin=subprocess.DEVNULL
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        worker = Worker(slot, process, ours, time.monotonic(), replacing)
        self.workers[worker.pid] = worker
        self.selector.register(ours, selectors.EVENT_READ, worker)
        logger.info("worker %d starting (slot %d)", worker.pid, slot)
        return worker

    def read(self, worker: Worker) -> bool:
        """Read the worker's channel; True when it has just said it serves."""
        try:
            data = worker.channel.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:  # the process is exiting; `reap` will tell
            self.selector.unregister(worker.channel)
            return False
        *lines, worker.buffer = (worker.buffer + data).split(b"\n")
        ready = False
        for line in lines:
            if line == READY and worker.state is WorkerState.STARTING:
                worker.move(Order.READY)
                ready = True
            elif line.startswith(FAILED):
                worker.reason = line[1:].decode(errors="replace")
        return ready

    def reap(self) -> list[Exit]:
        """The workers that have exited since the last call, forgotten."""
        exits = []
        for worker in list(self.workers.values()):
            status = worker.process.poll()
            if status is None:
                continue
            del self.workers[worker.pid]
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.channel)
            worker.channel.close()
            exits.append(Exit(worker, _how(status), time.monotonic() - worker.started))
        return exits

    def in_slot(self, slot: int) -> Worker | None:
        """The worker of `slot` that is not stopping, if there is one."""
        for worker in self.workers.values():
            if worker.slot == slot and worker.state is not WorkerState.STOPPING:
                return worker
        return None

    def stop(self, worker: Worker) -> None:
        """Tell the worker to stop gracefully (it finishes what it serves)."""
        if worker.state is WorkerState.STOPPING:
            return
        worker.move(Order.STOP)
        logger.info("stopping worker %d", worker.pid)
        with contextlib.suppress(OSError):  # already gone: `reap` will tell
            worker.channel.send(STOP + b"\n")

    def stop_all(self) -> None:
        for worker in list(self.workers.values()):
            self.stop(worker)

    def stop_all_now(self) -> None:
        """Tell every worker to stop at once (WebSockets and requests cut off)."""
        for worker in list(self.workers.values()):
            with contextlib.suppress(OSError):
                worker.channel.send(STOP_NOW + b"\n")

    def signal_all(self, signum: int) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill_all(self) -> None:
        """SIGKILL whatever is left, and wait for it (the last resort)."""
        self.signal_all(signal.SIGKILL)
        for worker in list(self.workers.values()):
            worker.process.wait()
        self.reap()


def _how(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"
