"""One worker process of `tinyws serve --workers N` (the supervisor is `workers.py`).

A worker is `tinyws serve` with the same options, started by the supervisor
with two inherited file descriptors named in the environment
(`TINYWS_WORKER_FDS="<listening socket>,<channel>"`): the listening socket of
its slot, already bound, and its end of a socket pair to the supervisor.

The channel carries one-line messages. The worker says `R` once it serves
(lifespan started, listening socket in use) or `F<reason>` when it could not
start; the supervisor says `S` (stop gracefully) or `N` (stop now). End of
file means the supervisor is gone: the worker stops gracefully rather than
serve on unsupervised.

Workers ignore SIGINT and SIGHUP: a Ctrl-C or a hang-up in a terminal
reaches the whole process group, and only the supervisor decides what it
means. A SIGTERM sent to a worker directly (a process manager signalling
the whole group) stops it gracefully, whether or not the supervisor's `S`
came first; a second SIGTERM stops it at once, as in a single process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from typing import Any

import anyio

from tinyws.errors import LifespanError
from tinyws.server.config import Config
from tinyws.server.server import Server, configure_logging
from tinyws.types import ASGIApp

ENV = "TINYWS_WORKER_FDS"

READY = b"R"
FAILED = b"F"
STOP = b"S"
STOP_NOW = b"N"


def worker_fds() -> tuple[int, int] | None:
    """The (listening socket, channel) this process got as a worker, else None."""
    value = os.environ.get(ENV)
    if not value:
        return None
    listen_fd, channel_fd = (int(fd) for fd in value.split(","))
    return listen_fd, channel_fd


def serve_worker(app: ASGIApp, **options: Any) -> None:
    """`serve()` for a worker: the supervisor's socket, its orders, its reports.

    Raises what `serve()` raises (`LifespanError` when the app fails to
    start), after telling the supervisor why.
    """
    fds = worker_fds()
    if fds is None:
        raise RuntimeError(f"{ENV} is not set: not started by a tinyws supervisor")
    os.environ.pop(ENV)  # not for the app's own subprocesses
    listen_fd, channel_fd = fds
    channel = socket.socket(fileno=channel_fd)
    channel.setblocking(False)
    config = Config(**{**options, "fd": listen_fd, "workers": 1})
    configure_logging(config.log_level, config.access_log)
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    backend_options = {"use_uvloop": True} if config.event_loop() == "uvloop" else {}
    try:
        anyio.run(
            _run,
            Server(app, config),
            channel,
            backend=config.backend,
            backend_options=backend_options,
        )
    except LifespanError as exc:
        _say(channel, FAILED + f"startup failed: {exc}".encode())
        raise
    except (OSError, ValueError) as exc:
        _say(channel, FAILED + str(exc).encode())
        raise
    finally:
        channel.close()


class _Ready:
    """The `task_status` given to `Server.run`: tells the supervisor when it serves."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel

    def started(self, value: object = None) -> None:
        _say(self.channel, READY)


class _Stopper:
    """Graceful on the first order; at once on `N` or on a second SIGTERM."""

    def __init__(self, server: Server, scope: anyio.CancelScope) -> None:
        self.server = server
        self.scope = scope
        self.requested = False
        self.signals = 0

    def graceful(self) -> None:
        if not self.requested:
            self.requested = True
            self.server.shutdown()

    def now(self) -> None:
        self.graceful()
        self.scope.cancel()

    def signal(self) -> None:
        self.signals += 1
        if self.signals > 1:
            self.now()
        self.graceful()


async def _run(server: Server, channel: socket.socket) -> None:
    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        stopper = _Stopper(server, tg.cancel_scope)
        tg.start_soon(_obey_signals, stopper)
        tg.start_soon(_obey_supervisor, stopper, channel)
        try:
            await server.run(task_status=_Ready(channel))
        except Exception as exc:  # raised plainly below, not as an ExceptionGroup
            error = exc
        tg.cancel_scope.cancel()
    if error is not None:
        raise error


async def _obey_signals(stopper: _Stopper) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for _ in signals:
                stopper.signal()
    finally:
        # asyncio leaves the default handler behind, which would kill a
        # worker that gets a late SIGTERM while it winds down.
        signal.signal(signal.SIGTERM, previous)


async def _obey_supervisor(stopper: _Stopper, channel: socket.socket) -> None:
    while True:
        await anyio.wait_readable(channel)
        try:
            data = channel.recv(64)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if STOP_NOW in data:
            stopper.now()
        elif not data or STOP in data:
            stopper.graceful()
        if not data:
            return


def _say(channel: socket.socket, message: bytes) -> None:
    with contextlib.suppress(OSError):  # the supervisor is gone: nobody to tell
        channel.send(message.replace(b"\n", b" ") + b"\n")
