"""Drive one handshake (see ``client_handshake.py``) over the network, as cheaply as possible.

Latency is timed from just before the socket is created to the arrival of the
bytes that complete the response head.

A benchmark client written the obvious way (anyio streams) costs more CPU per
handshake than a fast server does, and ends up measuring itself. So there are
two drivers, and :func:`pick_driver` takes the cheaper one for the running
loop, as measured (client CPU per handshake against the floor server):

- on uvloop, ``aio.py``: a ``Protocol`` per connection, uvloop's transport
  doing the reads and writes in C — a third less CPU per accepted handshake
  and a fifth less per refused one than the socket driver on uvloop;
- elsewhere (asyncio's own loop, trio), :func:`handshake` below: a raw
  non-blocking socket whose every call is tried first, the loop being asked
  to wait only on ``EAGAIN`` — except right after a send, when the server
  cannot have answered yet and a ``recv`` would be wasted. On asyncio's own
  loop this beats its protocols, whose connection set-up is Python code.

Timeouts are the runner's business: it cancels the waiting task, and the
drivers close the connection on the way out.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import Awaitable, Callable
from functools import partial

from tinyws.bench import protocol_driver
from tinyws.bench.client_handshake import Attempt, ClientHandshake, Target, os_error, receive_timed
from tinyws.bench.tls_driver import handshake as tls_handshake
from tinyws.readiness import Wait, native_waiters

RECV_SIZE = 65536

Driver = Callable[[Target, Attempt], Awaitable[None]]


def pick_driver(tls: bool = False) -> Driver:
    """Return the cheapest handshake driver for the event loop running this task.

    ``wss://`` handshakes (``tls``) all go through ``tls_driver``, on every loop.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    readable, writable = native_waiters()
    if tls:
        return partial(tls_handshake, readable=readable, writable=writable)
    if loop is not None and type(loop).__module__.startswith("uvloop"):
        return partial(protocol_driver.handshake, loop)
    return partial(handshake, readable=readable, writable=writable)


async def handshake(target: Target, attempt: Attempt, *, readable: Wait, writable: Wait) -> None:
    """Run one handshake over a raw socket, noting status and latency in ``attempt``."""
    client = ClientHandshake(target)
    attempt.status = attempt.latency_ns = attempt.connected_ns = 0
    start = time.perf_counter_ns()  # as in aio.py: the socket's creation is timed too
    try:
        with socket.socket(target.family, socket.SOCK_STREAM) as sock:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connect(sock, target.address)
            await send_all(sock, client.request, writable)
            # The request went out, so the connection is up: the connect phase
            # ends here (its send is a copy into the kernel, a microsecond).
            attempt.connected_ns = time.perf_counter_ns() - start
            await readable(sock)
            while not client.done:
                try:
                    data = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    await readable(sock)
                    continue
                if not data:
                    client.receive_eof()
                    continue
                if attempt.status:
                    reply = client.receive(data)
                else:
                    reply = receive_timed(client, data, attempt, time.perf_counter_ns() - start)
                if reply:
                    await send_all(sock, reply, writable)
                    await readable(sock)
    except OSError as exc:
        raise os_error(exc) from None


def connect(sock: socket.socket, address: tuple[object, ...]) -> None:
    # No wait for the connection here: the request's send does it. On loopback
    # the kernel completes the connection inside connect(), so the send goes
    # through at once; elsewhere it says EAGAIN until connected, or names the
    # reason the connection failed.
    err = sock.connect_ex(address)
    if err and err not in (errno.EINPROGRESS, errno.EAGAIN):
        raise OSError(err, os.strerror(err))


async def send_all(sock: socket.socket, data: bytes, writable: Wait) -> None:
    while data:
        try:
            sent = sock.send(data)
        except BlockingIOError:
            await writable(sock)
            continue
        data = data[sent:]
