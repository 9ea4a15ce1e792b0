"""The ``memory://`` backend: publishing is delivering, in this process only."""

from __future__ import annotations

from collections.abc import Callable

import anyio.abc

from tinyws.broadcast.inbox import Message


class MemoryBackend:
    """Hands each published message straight to this process's subscribers."""

    def __init__(self, deliver: Callable[[str, Message], None]) -> None:
        self._deliver = deliver

    async def connect(self) -> None:
        pass

    def start(self, task_group: anyio.abc.TaskGroup) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def publish(self, channel: str, message: Message) -> None:
        self._deliver(channel, message)
        # A publisher in a tight loop must let the subscribers run, or each of
        # them would see its queue overflow through no fault of its own.
        await anyio.lowlevel.checkpoint()

    async def listen(self, channel: str) -> None:
        pass

    def release(self, channel: str) -> None:
        pass


__all__ = ["MemoryBackend"]
