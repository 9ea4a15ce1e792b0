"""What all connections share: the listening socket, the live set, the timers.

One task accepts (in batches: one wakeup may carry many pending connections)
and starts a `Peer` task per connection; one reaper task walks the live set
every tick and fires the deadlines that have passed. Shutdown walks the same
set.

At the connection cap a new client evicts the connection that has waited
longest for its request head (a slowloris holds exactly those; dropping one
loses no work); when none is waiting, the new client gets a 503, sent and
then drained like any refusal, so that it reads the 503 rather than a reset.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, cast

import anyio
import anyio.abc

from tinyws.readiness import native_waiters
from tinyws.server.config import Config
from tinyws.server.connection import ServerConnection
from tinyws.server.peer import Peer
from tinyws.server.responses import OVERLOADED, refresh_date
from tinyws.server.tls import TLSLayer
from tinyws.server.watcher import make_watcher
from tinyws.types import ASGIApp

logger = logging.getLogger("tinyws.server")


class Acceptor:
    """What all connections share: the app, the config and the live set."""

    def __init__(self, app: ASGIApp, config: Config, state: dict[str, object] | None) -> None:
        self.app = app
        self.config = config
        self.state = state
        self.limits = config.limits()
        self.peers: set[Peer] = set()
        self.stopping = False
        self.idle = anyio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.wait_readable, self.wait_writable = native_waiters()
        self.watcher = make_watcher()
        #: Peers waiting for a request head, oldest first (the eviction order).
        self.heads: dict[Peer, None] = {}
        #: Refused sockets being drained, with the time they are closed anyway.
        self.refused: dict[socket.socket, float] = {}
        #: Evicted peers whose task has not ended yet (it closes their socket).
        self.evicted: set[Peer] = set()

    def cancel_all(self) -> None:
        """Cancel the connection tasks that are not in a task group (asyncio)."""
        for task in self._tasks:
            task.cancel()

    def forget(self, peer: Peer) -> None:
        self.peers.discard(peer)
        self.heads.pop(peer, None)
        self.evicted.discard(peer)
        if self.stopping and not self.peers:
            self.idle.set()

    def stop(self) -> None:
        self.stopping = True
        for peer in list(self.peers):
            peer.stop()
        if not self.peers:
            self.idle.set()

    async def accept_loop(self, listener: socket.socket, tg: anyio.abc.TaskGroup) -> None:
        """Accept in batches: one wakeup may carry many pending connections."""
        server = listener.getsockname()[:2]
        spawn = self._spawner(tg)
        # socket.accept() turns the listener's family and type into enums on
        # every call (eight Python calls); its C half, `_accept` (absent from
        # the type stubs), and a wrap with the values read once do the same.
        family, kind, proto = listener.family, listener.type, listener.proto
        accept_fd: Callable[[], tuple[int, Any]] = cast("Any", listener)._accept
        while True:
            await self.wait_readable(listener)
            for _ in range(64):
                try:
                    fd, address = accept_fd()
                    sock = socket.socket(family, kind, proto, fd)
                except BlockingIOError:
                    break
                except OSError as exc:  # EMFILE and friends: back off a little
                    logger.warning("accept failed: %s", exc)
                    await anyio.sleep(0.1)
                    break
                if len(self.peers) >= self.config.max_connections and not self._evict():
                    self._refuse(sock)
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client = (address[0], address[1]) if address else None
                core = ServerConnection(self.limits, client, server, self.state)
                tls = TLSLayer(self.config.ssl) if self.config.ssl is not None else None
                peer = Peer(self, sock, core, tls)
                self.peers.add(peer)
                self.heads[peer] = None
                spawn(peer)

    def _spawner(self, tg: anyio.abc.TaskGroup) -> Callable[[Peer], None]:
        """How connection tasks start.

        Through the task group on trio. On asyncio, a bare loop task: measured
        here, a task-group child costs about 20 µs and 2.7 KiB more per
        connection, and these tasks need none of that machinery (`Peer.run`
        never raises; `cancel_all` reaches them at shutdown).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio

            def start(peer: Peer) -> None:
                tg.start_soon(peer.run)

            return start
        tasks = self._tasks

        def spawn(peer: Peer) -> None:
            task = loop.create_task(peer.run())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        return spawn

    async def reaper(self, tick: float) -> None:
        """One task for every timeout of every connection (and the Date header's clock)."""
        while True:
            refresh_date()
            await anyio.sleep(tick)
            now = time.monotonic()
            for peer in list(self.peers):
                if peer.core.deadline <= now:
                    peer.expire(now)
                elif peer.unwatched():  # an app neither receiving nor sending
                    peer.watch_reads()
            for sock, until in list(self.refused.items()):
                if until <= now:
                    self._close_refused(sock)

    def _evict(self) -> bool:
        """Drop the connection waiting longest for its head, or else one whose
        request body comes in under the minimum rate; False if there is none."""
        # An evicted peer leaves the live set at once: its task may take a
        # moment to end, and must not count against the cap meanwhile.
        victim = next(iter(self.heads), None)
        if victim is None:
            now = time.monotonic()
            victim = next((p for p in self.peers if p.core.slow_body(now)), None)
            if victim is None:
                return False
        self.forget(victim)
        self.evicted.add(victim)
        victim.abort()
        return True

    def close_leftovers(self) -> None:
        """At the very end: sockets no task will close any more."""
        for sock in list(self.refused):
            self._close_refused(sock)
        for peer in self.evicted:
            peer.sock.close()

    def _refuse(self, sock: socket.socket) -> None:
        """503, then read and drop what the client sends until it closes (bounded)."""
        if self.config.ssl is not None:  # a plain 503 means nothing to a TLS client
            sock.close()
            return
        try:
            sock.setblocking(False)
            sock.send(OVERLOADED())
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self.refused[sock] = time.monotonic() + _REFUSED_LINGER
        self.watcher.watch_read(sock.fileno(), lambda: self._drain_refused(sock))

    def _drain_refused(self, sock: socket.socket) -> None:
        try:
            if sock.recv(4096):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self._close_refused(sock)

    def _close_refused(self, sock: socket.socket) -> None:
        if self.refused.pop(sock, None) is not None:
            try:
                self.watcher.unwatch_read(sock.fileno())
            finally:
                sock.close()


_REFUSED_LINGER = 2.0  # seconds a refused client may keep sending before the close
