"""The ``wss://`` driver: the raw-socket driver with TLS in memory between it and the handshake.

The stdlib's ``ssl.SSLObject`` works on two ``MemoryBIO`` buffers, never on
the socket: ciphertext read from the socket is written into ``incoming``,
whatever TLS wants to send is taken out of ``outgoing``. So the handshake's
protocol code (``client_handshake.py``) stays sans-IO, the socket stays a
plain non-blocking one waited on with the loop's own primitives (as in
``socket_driver.py``), and the same code runs on asyncio, uvloop and trio.

Every handshake makes a full TLS handshake (no session resumption): each
benchmarked connection is a new client. Time points, from the socket's
creation: ``connected_ns`` when TCP is up, ``secured_ns`` when the TLS
handshake is done, then the WebSocket upgrade as over ``ws://``.
A certificate that fails verification is the error kind ``tls-verify``; any
other TLS failure is ``tls``.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import time

from tinyws.bench.client_handshake import (
    Attempt,
    ClientHandshake,
    HandshakeError,
    Target,
    os_error,
    receive_timed,
)
from tinyws.readiness import Wait

RECV_SIZE = 65536


class _Link:
    """One TLS connection: the socket, the TLS object and its two buffers."""

    __slots__ = ("incoming", "outgoing", "readable", "sock", "tls", "writable")

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        host: str | None,
        readable: Wait,
        writable: Wait,
    ) -> None:
        self.sock, self.readable, self.writable = sock, readable, writable
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.flush()
                await self.fill()
        await self.flush()  # the client's Finished

    async def send(self, data: bytes) -> None:
        self.tls.write(data)
        await self.flush()

    async def recv(self) -> bytes:
        """Return the next plaintext bytes, or b"" at the end of the stream."""
        while True:
            try:
                return self.tls.read(RECV_SIZE)
            except ssl.SSLWantReadError:
                await self.flush()  # e.g. a key update's answer
                await self.fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                # close_notify, or TCP closed without one: both end the stream here.
                return b""

    async def flush(self) -> None:
        if self.outgoing.pending:
            await _send_all(self.sock, self.outgoing.read(), self.writable)

    async def fill(self) -> None:
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                await self.readable(self.sock)
                continue
            if data:
                self.incoming.write(data)
            else:
                self.incoming.write_eof()
            return


async def _send_all(sock: socket.socket, data: bytes, writable: Wait) -> None:
    while data:
        try:
            data = data[sock.send(data) :]
        except BlockingIOError:
            await writable(sock)


async def _connect(sock: socket.socket, address: tuple[object, ...], writable: Wait) -> None:
    # Unlike over ws://, the first send is TLS's, so wait for the connection here.
    err = sock.connect_ex(address)
    if err in (errno.EINPROGRESS, errno.EAGAIN):
        await writable(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


async def handshake(target: Target, attempt: Attempt, *, readable: Wait, writable: Wait) -> None:
    """Run one handshake over TLS, noting status, latency and phases in ``attempt``."""
    assert target.tls is not None, "a wss:// target carries its SSL context"
    client = ClientHandshake(target)
    attempt.status = attempt.latency_ns = attempt.connected_ns = attempt.secured_ns = 0
    start = time.perf_counter_ns()
    try:
        with socket.socket(target.family, socket.SOCK_STREAM) as sock:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await _connect(sock, target.address, writable)
            attempt.connected_ns = time.perf_counter_ns() - start
            link = _Link(sock, target.tls, target.server_hostname, readable, writable)
            await link.handshake()
            attempt.secured_ns = time.perf_counter_ns() - start
            if attempt.tls is None:
                cipher = link.tls.cipher()
                attempt.tls = (link.tls.version() or "?", cipher[0] if cipher else "?")
            await _exchange(link, client, attempt, start)
    except ssl.SSLCertVerificationError as exc:
        raise HandshakeError("tls-verify", exc.verify_message or str(exc)) from None
    except ssl.SSLError as exc:
        raise HandshakeError("tls", exc.reason or str(exc)) from None
    except OSError as exc:
        raise os_error(exc) from None


async def _exchange(link: _Link, client: ClientHandshake, attempt: Attempt, start: int) -> None:
    await link.send(client.request)
    while not client.done:
        data = await link.recv()
        if not data:
            client.receive_eof()
            continue
        if attempt.status:
            reply = client.receive(data)
        else:
            reply = receive_timed(client, data, attempt, time.perf_counter_ns() - start)
        if reply:
            await link.send(reply)
