"""The thin anyio runtime around the sans-IO core: one `Peer` per connection.

Measured on this kind of machine, anyio's stream layer, a reader task per
connection, memory streams and per-connection cancel scopes together cost
more than everything else in a handshake. So anyio is the runtime (tasks,
cancellation, signals, both backends), but each connection talks to a raw
non-blocking socket: `recv`/`send` are tried first and readiness is awaited
only when the kernel says EAGAIN (`tinyws.readiness`).

Until a WebSocket is accepted the connection's task reads what the core
needs (request heads, bodies). After the 101, reading is done by a readiness
callback (`watcher.py`, `ws_link.py`) whether or not the app is receiving.
Writes go out at once; what the kernel does not take waits in `pending` and
is flushed by a writability callback, and the app's `send()` waits only
while `pending` is over the high-water mark.

Timeouts are not cancel scopes: the core keeps the connection's deadline
and a single reaper task (in `acceptor.py`) checks them all every tick,
calling `expire()`; the core decides what a passed deadline means.
"""

from __future__ import annotations

import contextlib
import logging
import socket

import anyio
from anyio.lowlevel import checkpoint

from tinyws.errors import ClientDisconnect
from tinyws.server.connection import Phase
from tinyws.server.tls import TLSState
from tinyws.server.tls_link import address
from tinyws.server.ws_link import WebSocketLink, client_of, target_of
from tinyws.types import Message, Scope

logger = logging.getLogger("tinyws.server")
access_logger = logging.getLogger("tinyws.access")

_RECV_SIZE = 65536
_LINGER_SECONDS = 2.0  # how long a refused client may keep sending before the reset
_FAIRNESS = 16  # reads served without waiting before yielding to other tasks


class Peer(WebSocketLink):
    """One client connection: a socket, its protocol core, its pending output."""

    __slots__ = ()

    async def run(self) -> None:
        try:
            await self._serve()
        except ClientDisconnect:
            pass
        except Exception:
            logger.exception("connection handler failed")
        finally:
            self.acceptor.forget(self)
            try:
                self.detach()
            finally:
                self.sock.close()

    async def _serve(self) -> None:
        core = self.core
        while True:
            scope = core.next_request()
            if scope is None:
                if core.phase is Phase.CLOSED:
                    break
                await self._fill()
                continue
            self.acceptor.heads.pop(self, None)  # no longer a slowloris suspect
            if scope["type"] == "http":
                await self._http(scope)
            else:
                await self.websocket(scope)
            if core.phase is not Phase.IDLE or self.acceptor.stopping:
                break
            self.acceptor.heads[self] = None  # waiting for the next head
        await self.flush()
        if self.tls is not None:
            self.end_tls()
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
        self.feed(data)

    # -- HTTP ----------------------------------------------------------------

    async def _http(self, scope: Scope) -> None:
        path = scope["path"]
        failed = False
        try:
            await self.app(scope, self._http_receive, self._http_send)
        except ClientDisconnect:
            failed = True
        except Exception:
            failed = True
            if not self.core.client_left():  # an app's error about a vanished client: noise
                logger.exception(
                    "exception in ASGI app (HTTP %s %s)", scope["method"], scope["path"]
                )
        if self.core.client_left():
            logger.debug("client left during HTTP %s %s", scope["method"], path)
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
            await self._fill()

    async def _http_send(self, message: Message) -> None:
        self.core.http_send(message)
        if self.core.output:
            await self.send_output(None)

    async def _flush_or_eof(self) -> None:
        try:
            await self.flush()
        except ClientDisconnect:
            self.core.receive_data(b"")

    def _log_access(self, scope: Scope, status: int) -> None:
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            client_of(scope),
            scope["method"],
            target_of(scope),
            scope["http_version"],
            status,
        )

    # -- timers (called by the reaper) -------------------------------------------

    def expire(self, now: float) -> None:
        """The deadline passed: the core pings, or the connection is dropped."""
        if self.tls is not None and self.tls.state is TLSState.HANDSHAKE:
            logger.info("%s - TLS handshake failed: timed out", address(self.core))
        if self.core.expire(now):
            self.abort()
        elif self.core.output:
            self.queue_write(self.core.take_output())

    def stop(self) -> None:
        """Server shutdown: close WebSockets with 1001, drop idle keep-alives."""
        core = self.core
        core.keep_alive = False
        if core.phase is Phase.OPEN:
            core.ws_shutdown()
            self.queue_write(core.take_output())
        elif core.phase is Phase.IDLE:
            self.abort()
