"""`Server`: bind, run lifespan, accept, shut down gracefully; and `serve()`.

Order of a run: lifespan startup (connections are not accepted before it
completes), bind and listen, serve until `shutdown()` is called (or, under
`serve()`, until SIGINT/SIGTERM), then stop accepting, close WebSockets with
1001, give in-flight HTTP responses `shutdown_timeout` seconds, cancel what
is left, and run lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.abc

from tinyws.server.acceptor import Acceptor
from tinyws.server.config import Config
from tinyws.server.lifespan_runner import LifespanRunner
from tinyws.types import ASGIApp

logger = logging.getLogger("tinyws.server")


class Server:
    """The built-in server, for use inside an anyio task group.

    >>> server = Server(app, Config(port=0))
    >>> port = await task_group.start(server.run)   # listening once this returns
    >>> server.shutdown()                            # graceful stop
    """

    def __init__(self, app: ASGIApp, config: Config | None = None, **options: Any) -> None:
        self.app = app
        self.config = config.replace(**options) if config else Config(**options)
        self.port = 0
        self._stop: anyio.Event | None = None
        self._stop_requested = False
        self._acceptor: Acceptor | None = None

    def shutdown(self) -> None:
        """Ask the server to stop (graceful); `run()` returns when it has."""
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    async def run(
        self,
        *,
        task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until `shutdown()`; reports the bound port through `task_status`.

        Raises `LifespanError` when the app's lifespan startup fails.
        """
        config = self.config
        self._stop = anyio.Event()
        if self._stop_requested:
            self._stop.set()
        lifespan = LifespanRunner(self.app, config.lifespan, config.shutdown_timeout)
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            if config.lifespan != "off":
                tg.start_soon(lifespan.main)
            try:
                await lifespan.startup()
                await self._listen_and_serve(lifespan, task_status)
                await lifespan.shutdown()
            except Exception as exc:  # raised plainly below, not as an ExceptionGroup
                error = exc
            tg.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _listen_and_serve(
        self, lifespan: LifespanRunner, task_status: anyio.abc.TaskStatus[int]
    ) -> None:
        config = self.config
        listener = _listen(config)
        try:
            state = lifespan.state if lifespan.supported else None
            self._acceptor = Acceptor(self.app, config, state)
            self.port = listener.getsockname()[1]
            logger.info(
                "serving on %s://%s:%d (%s)",
                "https" if config.ssl else "http",
                _show(config.host),
                self.port,
                running_loop(),
            )
            task_status.started(self.port)
            await self._serve(listener, self._acceptor)
        finally:
            listener.close()

    async def _serve(self, listener: socket.socket, acceptor: Acceptor) -> None:
        try:
            async with anyio.create_task_group() as conns:
                async with anyio.create_task_group() as service:
                    service.start_soon(acceptor.accept_loop, listener, conns)
                    service.start_soon(acceptor.reaper, _tick(self.config))
                    conns.start_soon(acceptor.watcher.run)
                    assert self._stop is not None
                    await self._stop.wait()
                    service.cancel_scope.cancel()
                logger.info("shutting down")
                acceptor.stop()
                with anyio.move_on_after(self.config.shutdown_timeout):
                    await acceptor.idle.wait()
                conns.cancel_scope.cancel()
                acceptor.cancel_all()
                with anyio.move_on_after(1.0):  # let cancelled connections clean up
                    await acceptor.idle.wait()
        finally:
            acceptor.cancel_all()  # also when run() itself is cancelled
            acceptor.close_leftovers()

    async def run_until_signal(self) -> None:
        """`run()`, stopped gracefully by the first SIGINT/SIGTERM."""
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_signals, tg.cancel_scope)
            try:
                await self.run()
            except Exception as exc:  # raised plainly below, not as an ExceptionGroup
                error = exc
            tg.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _watch_signals(self, scope: anyio.CancelScope) -> None:
        signums = (signal.SIGINT, signal.SIGTERM)
        previous = [signal.getsignal(signum) for signum in signums]
        try:
            with anyio.open_signal_receiver(*signums) as signals:
                async for signum in signals:
                    if self._stop_requested:
                        logger.warning("second signal: stopping now")
                        scope.cancel()
                        return
                    logger.info("received %s", signal.Signals(signum).name)
                    self.shutdown()
        finally:
            # asyncio resets the handlers to the defaults rather than to what
            # was there before; put the previous ones back.
            for signum, handler in zip(signums, previous, strict=True):
                signal.signal(signum, handler)


def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Run `app` until SIGINT/SIGTERM (blocking). Options: see `Config`
    (such as `ssl=` an `ssl.SSLContext`, `proxy_headers=True`).

    Raises `LifespanError` when the app's lifespan startup fails.
    """
    config = Config(host=host, port=port, **options)
    configure_logging(config.log_level, config.access_log)
    server = Server(app, config)
    loop = config.event_loop()
    options = {"use_uvloop": True} if loop == "uvloop" else {}
    with _signals_ignored_outside_the_loop():
        anyio.run(server.run_until_signal, backend=config.backend, backend_options=options)


@contextlib.contextmanager
def _signals_ignored_outside_the_loop() -> Iterator[None]:
    """While `serve()` runs, a SIGINT/SIGTERM that lands outside the signal
    receiver (just before it opens, or after it closed while the server winds
    down) is dropped instead of killing the process half-way through shutdown.
    """
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.getsignal(signum) for signum in signums]
    for signum in signums:
        signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in zip(signums, previous, strict=True):
            signal.signal(signum, handler)


def running_loop() -> str:
    """What runs this server: "asyncio", "asyncio + uvloop" or "trio"."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "asyncio + uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def configure_logging(level: str, access_log: bool = False) -> None:
    """Give the tinyws loggers a stderr handler unless the host app set one up."""
    package = logging.getLogger("tinyws")
    package.setLevel(level.upper())
    if not package.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        package.addHandler(handler)
    if access_log:
        logging.getLogger("tinyws.access").setLevel(logging.INFO)


def _listen(config: Config) -> socket.socket:
    if config.fd is not None:  # a worker: the supervisor bound it (workers.py)
        sock = socket.socket(fileno=config.fd)
        sock.setblocking(False)
        return sock
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.create_server((config.host, config.port), family=family, backlog=config.backlog)
    sock.setblocking(False)
    return sock


def _show(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _tick(config: Config) -> float:
    """How often the reaper looks: fine enough for the shortest timeout, and at
    least twice a second (it also starts reading WebSockets whose app neither
    receives nor sends, so that their close frames are answered within 1 s)."""
    shortest = min(
        config.head_timeout,
        config.keepalive_timeout,
        config.ws_ping_timeout,
        config.ws_close_timeout,
        config.ws_ping_interval or 60.0,
    )
    return max(0.05, min(0.5, shortest / 4))
