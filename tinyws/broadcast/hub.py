"""``Broadcast``: publish to a channel, subscribe to it, or join a WebSocket to it.

The hub keeps one ``Fanout`` (channel → this process's inboxes) and one
backend. ``memory://`` delivers a published message straight to the fanout;
``redis://`` publishes it to Redis, and a listener task hands what Redis
pushes back to the fanout. Either way the fanout is the only place messages
are queued, so the slow-subscriber policy is the same for both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Protocol

import anyio
import anyio.abc

from tinyws.broadcast.address import RedisAddress, check_channel, parse_url
from tinyws.broadcast.inbox import Fanout, Inbox, Message
from tinyws.broadcast.join import Member, Membership
from tinyws.broadcast.memory import MemoryBackend


class Backend(Protocol):
    async def connect(self) -> None: ...
    def start(self, task_group: anyio.abc.TaskGroup) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, channel: str, message: Message) -> None: ...
    async def listen(self, channel: str) -> None: ...
    def release(self, channel: str) -> None: ...


class Broadcast:
    """A publish/subscribe hub for this process (``memory://``) or every process on a Redis."""

    def __init__(self, url: str = "memory://", *, max_queue: int = 1024) -> None:
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be an int of at least 1, got {max_queue!r}")
        self.address: RedisAddress = parse_url(url)
        self.max_queue = max_queue
        self._fanout = Fanout()
        self._backend: Backend = self._make_backend()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stack = contextlib.AsyncExitStack()

    def _make_backend(self) -> Backend:
        if self.address.scheme == "memory":
            return MemoryBackend(self._deliver)
        try:
            from tinyws.broadcast.redis_backend import RedisBackend
        except ModuleNotFoundError as exc:
            if exc.name != "hiredis":
                raise
            raise ImportError(
                f'{self.address.scheme}:// needs the "redis" extra: pip install "tinyws[redis]"',
                name=exc.name,
            ) from exc
        return RedisBackend(self.address, self._fanout, self._deliver)

    @property
    def url(self) -> str:
        """The hub's URL, password hidden."""
        return str(self.address)

    # -- lifetime --------------------------------------------------------------

    async def __aenter__(self) -> Broadcast:
        if self._task_group is not None:
            raise RuntimeError(f"{self!r} is already running")
        await self._backend.connect()  # outside the task group: its error stays unwrapped
        task_group = await self._stack.enter_async_context(anyio.create_task_group())
        self._backend.start(task_group)
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        assert task_group is not None
        self._fanout.close()
        try:
            task_group.cancel_scope.cancel()  # the listener first, or it would see an outage
            await self._stack.aclose()
        finally:
            self._stack = contextlib.AsyncExitStack()
            with anyio.CancelScope(shield=True):
                await self._backend.stop()

    def _running(self) -> anyio.abc.TaskGroup:
        if self._task_group is None:
            raise RuntimeError("use the Broadcast hub inside `async with hub:`")
        return self._task_group

    # -- the API ---------------------------------------------------------------

    async def publish(self, channel: str, message: str | bytes) -> None:
        """Send ``message`` to every subscriber of ``channel``, as the same type."""
        check_channel(channel)
        if isinstance(message, bytearray | memoryview):
            message = bytes(message)
        elif not isinstance(message, str | bytes):
            raise TypeError(f"publish() takes str or bytes, got {type(message).__name__}")
        self._running()
        await self._backend.publish(channel, message)

    def subscribe(self, channel: str) -> Subscription:
        """``async with hub.subscribe(channel) as sub: async for message in sub: ...``"""
        return Subscription(self, check_channel(channel))

    def join(self, channel: str, ws: Member) -> Membership:
        """``async with hub.join(channel, ws):`` forwards the channel's messages to ``ws``."""
        return Membership(self, check_channel(channel), ws)

    # -- used by subscriptions and memberships -----------------------------------

    async def attach(self, inbox: Inbox) -> None:
        self._running()
        self._fanout.add(inbox)
        try:
            await self._backend.listen(inbox.channel)
        except BaseException:
            self.detach(inbox)
            raise

    def detach(self, inbox: Inbox) -> None:
        inbox.close()
        if self._fanout.remove(inbox):
            self._backend.release(inbox.channel)

    def spawn(self, task: Callable[[], Coroutine[object, object, None]]) -> None:
        """Run ``task`` in the hub's task group, which outlives any one handler."""
        self._running().start_soon(task)

    def _deliver(self, channel: str, message: Message) -> None:
        if self._fanout.deliver(channel, message) and channel not in self._fanout:
            self._backend.release(channel)  # its last subscriber was dropped

    def __repr__(self) -> str:
        return f"<Broadcast {self.url}>"


class Subscription:
    """One subscriber's view of a channel: an async context manager and iterator."""

    def __init__(self, hub: Broadcast, channel: str) -> None:
        self._hub = hub
        self._inbox = Inbox(channel, hub.max_queue)
        self._entered = False

    @property
    def channel(self) -> str:
        return self._inbox.channel

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a subscription can be entered only once")
        self._entered = True
        await self._hub.attach(self._inbox)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._hub.detach(self._inbox)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        """The next message; ``SlowSubscriber`` once dropped; the end once the hub stops."""
        if not self._entered:
            raise RuntimeError("iterate a subscription inside `async with hub.subscribe(...)`")
        message = await self._inbox.get()
        if message is None:
            raise StopAsyncIteration
        return message


__all__ = ["Backend", "Broadcast", "Subscription"]
