"""A connection's output and its WebSocket after the 101 (the base of `Peer`).

Output: `queue_write` sends at once what the kernel takes and keeps the rest
in `pending`, flushed by a writability callback; `send_output` is what the
app's `send()` awaits: it returns while `pending` is under the high-water
mark and otherwise waits for the socket to drain (bounded by the ping
timeout: a client that takes nothing for that long is dropped).

Input after the 101: `_on_readable` (called by the watcher whenever the socket
is readable, whatever the app does) feeds the core, which answers pings and
closes and queues messages; no watching while that queue is full, or after.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from tinyws.errors import ClientDisconnect
from tinyws.server.connection import Phase, ServerConnection
from tinyws.server.tls import TLSLayer
from tinyws.server.tls_link import TLSLink
from tinyws.types import Message, Scope

if TYPE_CHECKING:
    from tinyws.server.acceptor import Acceptor

logger = logging.getLogger("tinyws.server")
access_logger = logging.getLogger("tinyws.access")

# With permessage-deflate every byte read may inflate about a thousandfold
# before the message size check sees it; smaller reads bound that burst.
_RECV_SIZE_DEFLATE = 4096
_RECV_SIZE = 65536


class WebSocketLink(TLSLink):
    """Output buffering and the WebSocket read path of one connection."""

    __slots__ = (
        "_input_wake",
        "_output_wake",
        "_watching",
        "acceptor",
        "app",
        "broken",
        "core",
        "fd",
        "pending",
        "recv_size",
        "scope",
        "sock",
        "streak",
        "tls",
    )

    def __init__(
        self, acceptor: Acceptor, sock: socket.socket, core: ServerConnection, tls: TLSLayer | None
    ) -> None:
        self.acceptor = acceptor
        self.app = acceptor.app
        #: The TLS session between the socket and the core (None: plain TCP).
        self.tls = tls
        self.sock = sock
        self.fd = sock.fileno()  # kept: the watcher is told after the socket closed too
        self.core = core
        self.pending = bytearray()
        self.recv_size = _RECV_SIZE
        self.streak = 0  # reads in a row without waiting
        self.broken = False  # the socket failed on a write: output is dropped
        self._watching = 0  # 1: reads watched, 2: writes watched (bits)
        self._input_wake: Callable[[], object] | None = None
        self._output_wake: Callable[[], object] | None = None

    # -- output ----------------------------------------------------------------

    def write_raw(self, data: bytes) -> None:
        """Send what the kernel takes now; keep the rest for the write callback."""
        if self.pending or self.broken:
            if not self.broken:
                self.pending += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.broken = True
            return
        if sent < len(data):
            self.pending += data[sent:]
            self._watching |= 2
            self.acceptor.watcher.watch_write(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        try:
            sent = self.sock.send(self.pending)
        except BlockingIOError:
            return
        except OSError:
            self.broken = True
            self.pending.clear()
            sent = 0
        del self.pending[:sent]
        if not self.pending:
            self._watching &= ~2
            self.acceptor.watcher.unwatch_write(self.fd)
        if self._output_wake is not None:
            self._output_wake()

    async def send_output(self, timeout: float | None) -> None:
        """Queue the core's output; wait while too much of it is unsent."""
        self.queue_write(self.core.take_output())
        if self.pending or self.broken:
            await self._drain(self.acceptor.config.ws_write_high_water, timeout)

    async def flush(self, timeout: float | None = None) -> None:
        """Write everything (the connection is about to end or be reused)."""
        if self.core.output:
            self.queue_write(self.core.take_output())
        if self.pending or self.broken:
            await self._drain(0, timeout)

    async def _drain(self, limit: int, timeout: float | None) -> None:
        while len(self.pending) > limit:
            wait, self._output_wake = self.acceptor.watcher.waker()
            try:
                with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
                    await wait
            finally:
                self._output_wake = None
            if scope.cancelled_caught:  # nothing taken for the whole timeout
                self.abort()
                raise ClientDisconnect("the client stopped reading")
        if self.broken:
            raise ClientDisconnect("the connection is broken")

    def abort(self) -> None:
        """Shut the socket down; whoever waits on it wakes up and cleans up."""
        self.core.deadline = math.inf
        self.broken = True  # nothing more goes out (and it is not evicted twice)
        with contextlib.suppress(OSError):  # already gone: nothing to wake
            self.sock.shutdown(socket.SHUT_RDWR)

    def detach(self) -> None:
        """Stop every callback before the socket is closed."""
        watcher = self.acceptor.watcher
        if self._watching & 1:
            watcher.unwatch_read(self.fd)
        if self._watching & 2:
            watcher.unwatch_write(self.fd)
        self._watching = 0

    # -- WebSocket ---------------------------------------------------------------

    async def websocket(self, scope: Scope) -> None:
        core = self.core
        failed = False
        self.scope = scope
        logged = self.acceptor.config.access_log
        start = time.monotonic() if logged else 0.0
        try:
            await self.app(scope, self._ws_receive, self._ws_send)
        except ClientDisconnect:
            pass
        except Exception:
            failed = True
            logger.exception("exception in ASGI app (WebSocket %s)", scope["path"])
        core.ws_finish(failed)
        if logged and core.ws_status not in (0, 101):
            self._log(scope, "%d", core.ws_status)
        if core.phase is Phase.CLOSING and not self._watching & 1:
            self.watch_reads()  # the queue was full; the close reply is behind it
        if core.output or self.pending:
            with contextlib.suppress(ClientDisconnect):
                await self.flush(self.acceptor.config.ws_close_timeout)
        while core.phase is Phase.CLOSING:  # bounded by the core's close timeout
            await self._input()
        if self._watching & 1:
            self._watching &= ~1
            self.acceptor.watcher.unwatch_read(self.fd)
        if logged and core.channel is not None:
            elapsed = time.monotonic() - start
            self._log(scope, "closed %d after %.3fs", core.channel.close_code or 1006, elapsed)

    async def _ws_receive(self) -> Message:
        core = self.core
        if core.channel is None:  # before the 101: this task reads
            while True:
                message = core.ws_receive()
                if core.output:
                    with contextlib.suppress(ClientDisconnect):
                        await self.flush()
                if message is not None:
                    return message
                await self._fill()
        while True:
            message = core.ws_receive()
            if core.output:  # a failure's close frame, held until now
                self.queue_write(core.take_output())
            if message is not None:
                return message
            if not self._watching & 1:  # read what is there; watch only if nothing is
                if self._on_readable(inline=True):
                    continue
                self.watch_reads()
            await self._input()

    async def _fill(self) -> None:
        raise NotImplementedError  # Peer's

    async def _input(self) -> None:
        """Wait until the read callback has something for the app."""
        wait, self._input_wake = self.acceptor.watcher.waker()
        try:
            await wait
        finally:
            self._input_wake = None

    async def _ws_send(self, message: Message) -> None:
        core = self.core
        core.ws_send(message)
        if core.phase is Phase.OPEN:
            if message["type"] == "websocket.accept":
                self._opened()
            elif not self._watching & 1 and not core.ws_paused():
                self.watch_reads()  # a handler that sends: read in the background from now
        if core.output:
            await self.send_output(self.acceptor.config.ws_ping_timeout)

    def _opened(self) -> None:
        # Reads are watched lazily: from the app's first receive() that finds
        # nothing, its first send() or the reaper's next tick. Watching from
        # the 101 on measured 13 % more instructions per accepted handshake.
        core = self.core
        channel = core.channel
        if channel is not None and channel.compressed:
            self.recv_size = _RECV_SIZE_DEFLATE
        if self.acceptor.stopping:
            core.ws_shutdown()
        if self.acceptor.config.access_log:
            self._log(self.scope, "101")

    def unwatched(self) -> bool:
        """True for an open WebSocket nobody reads (and whose queue has room)."""
        core = self.core
        return not self._watching & 1 and core.phase is Phase.OPEN and not core.ws_paused()

    def watch_reads(self) -> None:
        self._watching |= 1
        self.acceptor.watcher.watch_read(self.fd, self._on_readable)

    def _on_readable(self, inline: bool = False) -> bool:
        """Read once: the core answers pings and closes and queues messages.
        False when there was nothing to read."""
        core = self.core
        try:
            data = self.sock.recv(self.recv_size)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        self.feed(data)
        if core.output:
            self.queue_write(core.take_output())
        if core.phase is Phase.CLOSED:
            if not data or not core.linger:  # lingering: drain until the client's EOF
                self._watching &= ~1
                self.acceptor.watcher.unwatch_read(self.fd)
                self.end_tls()
                if self._input_wake is None and not inline and not self.pending:
                    with contextlib.suppress(OSError):  # the app is busy: end TCP now
                        self.sock.shutdown(socket.SHUT_WR)
        elif core.ws_paused():
            self._watching &= ~1
            self.acceptor.watcher.unwatch_read(self.fd)
        if self._input_wake is not None and (core.phase is Phase.CLOSED or core.ws_queued()):
            self._input_wake()
        return True

    def _log(self, scope: Scope, what: str, *args: object) -> None:
        access_logger.info('%s - "WebSocket %s" ' + what, client_of(scope), target_of(scope), *args)


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def target_of(scope: Scope) -> str:
    query = scope["query_string"]
    return str(scope["path"]) + ("?" + query.decode("latin-1") if query else "")
