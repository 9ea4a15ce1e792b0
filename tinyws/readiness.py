"""Waiting for a socket to become readable or writable, as cheaply as the loop allows.

Shared by the built-in server and the bench's raw-socket driver, which both
try ``recv``/``send`` on non-blocking sockets first and wait only on EAGAIN.
``anyio.wait_readable`` finds the running backend on every call and keeps
per-task bookkeeping to refuse two waiters on one socket. A handshake waits
two or three times, so that lookup is paid tens of thousands of times a
second; picking the running loop's own primitive once per run measured
10-20 % less client CPU per handshake (more on asyncio than on trio). Where
the loop has no such primitive (asyncio's proactor loop on Windows), anyio's
portable functions are used.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import anyio

Wait = Callable[[socket.socket], Awaitable[None]]


class Waiters(NamedTuple):
    readable: Wait
    writable: Wait


def native_waiters() -> Waiters:
    """Return the waiting functions of the event loop running this task."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _trio_waiters()
    if sys.platform == "win32":
        return Waiters(anyio.wait_readable, anyio.wait_writable)
    return _asyncio_waiters(loop)


def _trio_waiters() -> Waiters:
    import trio  # not a dependency: only reached when the run is on trio

    return Waiters(trio.lowlevel.wait_readable, trio.lowlevel.wait_writable)


def _asyncio_waiters(loop: asyncio.AbstractEventLoop) -> Waiters:
    # The callback unregisters the socket itself: left registered until the
    # task resumes, a readable socket would fire once more in the meantime.
    def woken_reading(fd: int, future: asyncio.Future[None]) -> None:
        loop.remove_reader(fd)
        if not future.done():  # cancelled already
            future.set_result(None)

    def woken_writing(fd: int, future: asyncio.Future[None]) -> None:
        loop.remove_writer(fd)
        if not future.done():
            future.set_result(None)

    async def readable(sock: socket.socket) -> None:
        fd = sock.fileno()
        future = loop.create_future()
        loop.add_reader(fd, woken_reading, fd, future)
        try:
            await future
        except BaseException:  # cancelled by a timeout: the callback never ran
            loop.remove_reader(fd)
            raise

    async def writable(sock: socket.socket) -> None:
        fd = sock.fileno()
        future = loop.create_future()
        loop.add_writer(fd, woken_writing, fd, future)
        try:
            await future
        except BaseException:
            loop.remove_writer(fd)
            raise

    return Waiters(readable, writable)
