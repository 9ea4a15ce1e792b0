"""The thin anyio runtime around the sans-IO core: one `Peer` per connection.

Measured on this kind of machine, anyio's stream layer, a reader task per
connection, memory streams and per-connection cancel scopes together cost
more than everything else in a handshake. So anyio is the runtime (tasks,
cancellation, signals, both backends), but each connection talks to a raw
non-blocking socket: `recv`/`send` are tried first and readiness is awaited
only when the kernel says EAGAIN (`readiness.py`). The
app's `receive()` reads the socket itself; `send()` writes without an extra
yield. Timeouts are not cancel scopes: each connection keeps one deadline
and a single reaper task checks them all every `tick` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import time
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.lowlevel import checkpoint

from tinyws.errors import ClientDisconnect
from tinyws.server.connection import Phase, ServerConnection
from tinyws.types import Message, Scope

if TYPE_CHECKING:
    from tinyws.server.acceptor import Acceptor

logger = logging.getLogger("tinyws.server")
access_logger = logging.getLogger("tinyws.access")

_RECV_SIZE = 65536
# With permessage-deflate every byte read may inflate about a thousandfold
# before the message size check sees it; smaller reads bound that burst.
_RECV_SIZE_DEFLATE = 4096
_LINGER_SECONDS = 2.0  # how long a refused client may keep sending before the reset
_FAIRNESS = 16  # reads served without waiting before yielding to other tasks


class Peer:
    """One client connection: a socket, its protocol core and its deadline."""

    __slots__ = (
        "acceptor",
        "active",
        "app",
        "core",
        "deadline",
        "idle",
        "pending",
        "ping_sent",
        "receiving",
        "recv_size",
        "sock",
        "streak",
        "writing",
    )

    def __init__(self, acceptor: Acceptor, sock: socket.socket, core: ServerConnection) -> None:
        self.acceptor = acceptor
        self.app = acceptor.app
        self.sock = sock
        self.core = core
        self.deadline = time.monotonic() + acceptor.config.head_timeout
        self.active = False  # bytes arrived since the reaper last looked
        self.ping_sent = False
        self.receiving = False
        self.writing = False
        self.pending = bytearray()
        self.streak = 0
        self.recv_size = _RECV_SIZE
        self.idle = False  # between keep-alive requests, no byte of the next yet

    async def run(self) -> None:
        try:
            await self._serve()
        except ClientDisconnect:
            pass
        except Exception:
            logger.exception("connection handler failed")
        finally:
            self.acceptor.forget(self)
            self.sock.close()

    async def _serve(self) -> None:
        core = self.core
        while True:
            scope = core.next_request()
            if scope is None:
                if core.phase is Phase.CLOSED:
                    break
                await self._fill()
                if self.idle and core.has_buffered_data():  # a new head has started
                    self.idle = False
                    self.deadline = time.monotonic() + self.acceptor.config.head_timeout
                continue
            self.deadline = math.inf
            if scope["type"] == "http":
                await self._http(scope)
            else:
                await self._websocket(scope)
            if core.phase is not Phase.IDLE or self.acceptor.stopping:
                break
            self._idle()
        await self.flush()
        if core.linger:
            await self._linger()

    async def _linger(self) -> None:
        """Half-close, then read and drop until the client closes (bounded)."""
        sock = self.sock
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        with anyio.move_on_after(_LINGER_SECONDS):
            while True:
                try:
                    if not sock.recv(_RECV_SIZE):
                        return
                except BlockingIOError:
                    await self.acceptor.wait_readable(sock)
                except OSError:
                    return

    def _idle(self) -> None:
        """Between requests: the keep-alive timer runs."""
        self.idle = not self.core.has_buffered_data()
        self.deadline = time.monotonic() + self.acceptor.config.keepalive_timeout

    async def _fill(self) -> None:
        """Read once from the socket into the core (b"" at EOF)."""
        sock = self.sock
        while True:
            try:
                data = sock.recv(self.recv_size)
            except BlockingIOError:
                self.streak = 0
                await self.acceptor.wait_readable(sock)
                continue
            except OSError:
                data = b""
            break
        self.streak += 1
        if self.streak >= _FAIRNESS:
            self.streak = 0
            await checkpoint()  # a flooding client must not starve the others
        self.active = True
        self.core.receive_data(data)

    # -- writing -------------------------------------------------------------

    async def flush(self) -> None:
        if self.core.output:
            await self.write(self.core.take_output())

    async def write(self, data: bytes) -> None:
        if self.writing:  # another task is blocked writing: queue behind it
            self.pending += data
            return
        self.writing = True
        try:
            await self._send_all(data)
            while self.pending:
                data = bytes(self.pending)
                self.pending.clear()
                await self._send_all(data)
        finally:
            self.writing = False

    def write_nowait(self, data: bytes) -> None:
        """Best-effort write from the reaper (pings, 1001 closes)."""
        if self.writing:
            self.pending += data
            return
        try:
            sent = self.sock.send(data)
        except OSError:
            return
        self.pending += data[sent:]

    async def _send_all(self, data: bytes) -> None:
        sock = self.sock
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise ClientDisconnect(str(exc)) from None
        view = memoryview(data)[sent:]
        while view:
            await self.acceptor.wait_writable(sock)
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ClientDisconnect(str(exc)) from None

    # -- HTTP ----------------------------------------------------------------

    async def _http(self, scope: Scope) -> None:
        failed = False
        try:
            await self.app(scope, self._http_receive, self._http_send)
        except ClientDisconnect:
            failed = True
        except Exception:
            failed = True
            logger.exception("exception in ASGI app (HTTP %s %s)", scope["method"], scope["path"])
        status = self.core.response_status
        self.core.http_finish(failed)
        if self.acceptor.config.access_log:
            self._log_access(scope, status)
        await self.flush()
        if self.core.has_buffered_data():
            await checkpoint()  # pipelined requests: let other connections run

    async def _http_receive(self) -> Message:
        core = self.core
        while True:
            message = core.http_receive()
            if core.output:
                await self._flush_or_eof()
            if message is not None:
                return message
            if core.reading_paused():
                await anyio.sleep_forever()
            if core.awaiting_body():
                # A body that stalls is slowloris again: the head timeout also
                # bounds each pause. (Waiting for a disconnect has no limit.)
                self.deadline = time.monotonic() + self.acceptor.config.head_timeout
                await self._fill()
                self.deadline = math.inf
            else:
                await self._fill()

    async def _http_send(self, message: Message) -> None:
        self.core.http_send(message)
        if self.core.output:
            await self.write(self.core.take_output())

    async def _flush_or_eof(self) -> None:
        try:
            await self.flush()
        except ClientDisconnect:
            self.core.receive_data(b"")

    def _log_access(self, scope: Scope, status: int) -> None:
        client = scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else "-"
        query = scope["query_string"]
        target = scope["path"] + ("?" + query.decode("latin-1") if query else "")
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d', where, scope["method"], target, scope["http_version"], status
        )

    # -- WebSocket -------------------------------------------------------------

    async def _websocket(self, scope: Scope) -> None:
        core = self.core
        failed = False
        try:
            await self.app(scope, self._ws_receive, self._ws_send)
        except ClientDisconnect:
            pass
        except Exception:
            failed = True
            logger.exception("exception in ASGI app (WebSocket %s)", scope["path"])
        core.ws_finish(failed)
        await self._flush_or_eof()
        if core.phase is Phase.CLOSING:  # wait (bounded) for the client's close frame
            self.deadline = time.monotonic() + self.acceptor.config.ws_close_timeout
            while core.phase is Phase.CLOSING:
                if core.ws_receive() is None:
                    await self._fill()
            await self._flush_or_eof()

    async def _ws_receive(self) -> Message:
        core = self.core
        self.receiving = True
        try:
            while True:
                message = core.ws_receive()
                if core.output:
                    await self._flush_or_eof()
                if message is not None:
                    return message
                await self._fill()
        finally:
            self.receiving = False

    async def _ws_send(self, message: Message) -> None:
        core = self.core
        core.ws_send(message)
        if core.phase is Phase.OPEN and message["type"] == "websocket.accept":
            self._opened()
        if core.output:
            await self.write(core.take_output())

    def _opened(self) -> None:
        channel = self.core.channel
        if channel is not None and channel.compressed:
            self.recv_size = _RECV_SIZE_DEFLATE
        interval = self.acceptor.config.ws_ping_interval
        self.deadline = math.inf if interval is None else time.monotonic() + interval
        if self.acceptor.stopping:
            self.core.ws_shutdown()

    # -- timers (called by the reaper) -------------------------------------------

    def expire(self, now: float) -> None:
        """The deadline passed: ping, or give up on the connection."""
        core = self.core
        if core.phase is Phase.OPEN:
            if not self.receiving:
                self._pump()
            if self.active:  # alive: push the next ping further out
                self.active = self.ping_sent = False
                self.deadline = now + (self.acceptor.config.ws_ping_interval or math.inf)
                return
            if not self.ping_sent and core.channel is not None:
                self.ping_sent = True
                core.channel.ping()
                self.write_nowait(core.take_output())
                self.deadline = now + self.acceptor.config.ws_ping_timeout
                return
        self.abort()

    def _pump(self) -> None:
        """Read what is waiting while the app is not reading, to see the pong."""
        try:
            data = self.sock.recv(self.recv_size)
        except OSError:
            return
        self.active = True
        self.core.receive_data(data)

    def abort(self) -> None:
        """Shut the socket down; whoever waits on it wakes up and cleans up."""
        self.deadline = math.inf
        with contextlib.suppress(OSError):  # already gone: nothing to wake
            self.sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Server shutdown: close WebSockets with 1001, drop idle keep-alives."""
        core = self.core
        core.keep_alive = False
        if core.phase is Phase.OPEN:
            core.ws_shutdown()
            self.write_nowait(core.take_output())
            self.deadline = time.monotonic() + self.acceptor.config.ws_close_timeout
        elif core.phase is Phase.IDLE:
            self.abort()
