"""Readiness callbacks: run a function when a socket can be read or written,
with no task per socket, on both anyio backends.

After the 101 the server reads every WebSocket whether or not the app is in
`receive()` (to answer pings and close frames, and to notice a vanished
client), and it flushes what `send()` left unsent whether or not the app is
sending. A task per connection doing that costs memory and a wakeup per
event; a callback costs neither. asyncio loops (uvloop included) have the
callbacks built in (`add_reader` / `add_writer`). trio has none, so one task
per server waits on a `selectors` object of its own (epoll, kqueue ...),
whose file descriptor trio can wait on like any other, and calls the
callbacks of the sockets that are ready.

A callback must consume the readiness it is given (read, write, or stop
watching): registrations are level-triggered. Sockets are named by their file
descriptor, so that on asyncio the watcher's methods are the loop's own.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Protocol

Callback = Callable[[], object]


class Watcher(Protocol):
    @property
    def watch_read(self) -> Callable[[int, Callback], object]: ...
    @property
    def unwatch_read(self) -> Callable[[int], object]: ...
    @property
    def watch_write(self) -> Callable[[int, Callback], object]: ...
    @property
    def unwatch_write(self) -> Callable[[int], object]: ...
    def waker(self) -> tuple[Awaitable[object], Callback]: ...
    async def run(self) -> None: ...


def make_watcher() -> Watcher:
    """The watcher for the running loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return TrioWatcher()
    return AsyncioWatcher(loop)


class AsyncioWatcher:
    """The loop's own `add_reader` / `add_writer`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.watch_read = loop.add_reader
        self.unwatch_read = loop.remove_reader
        self.watch_write = loop.add_writer
        self.unwatch_write = loop.remove_writer

    def waker(self) -> tuple[Awaitable[object], Callback]:
        """Something to await once, and the callback that ends the wait."""
        future: asyncio.Future[None] = self._loop.create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        return future, wake

    async def run(self) -> None:
        await asyncio.Future()  # nothing to do: the loop calls back itself


class TrioWatcher:
    """One task waits on a selector's fd and calls back the ready sockets."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        # fd -> [read callback, write callback]
        self._callbacks: dict[int, list[Callback | None]] = {}
        self._closed = False

    def _set(self, fd: int, slot: int, callback: Callback | None) -> None:
        if self._closed or fd < 0:
            return  # the server is gone (or the socket is): nothing to call back
        entry = self._callbacks.get(fd)
        if entry is None:
            if callback is None:
                return
            entry = self._callbacks[fd] = [None, None]
            entry[slot] = callback
            self._selector.register(fd, _mask(entry))
            return
        entry[slot] = callback
        mask = _mask(entry)
        if mask:
            self._selector.modify(fd, mask)
        else:
            del self._callbacks[fd]
            self._selector.unregister(fd)

    def watch_read(self, fd: int, callback: Callback) -> None:
        self._set(fd, 0, callback)

    def unwatch_read(self, fd: int) -> None:
        self._set(fd, 0, None)

    def watch_write(self, fd: int, callback: Callback) -> None:
        self._set(fd, 1, callback)

    def unwatch_write(self, fd: int) -> None:
        self._set(fd, 1, None)

    def waker(self) -> tuple[Awaitable[object], Callback]:
        import trio

        event = trio.Event()
        return event.wait(), event.set

    async def run(self) -> None:
        import trio

        selector = self._selector
        try:
            while True:
                await trio.lowlevel.wait_readable(selector.fileno())
                for key, events in selector.select(0):
                    entry = self._callbacks.get(key.fd)
                    if entry is None:
                        continue  # unwatched by an earlier callback of this round
                    reader, writer = entry
                    if events & selectors.EVENT_READ and reader is not None:
                        reader()
                    if events & selectors.EVENT_WRITE and writer is not None and entry[1]:
                        writer()
                await trio.lowlevel.checkpoint()
        finally:
            self._closed = True  # connections still winding down unwatch into nothing
            selector.close()


def _mask(entry: list[Callback | None]) -> int:
    return (selectors.EVENT_READ if entry[0] else 0) | (selectors.EVENT_WRITE if entry[1] else 0)
