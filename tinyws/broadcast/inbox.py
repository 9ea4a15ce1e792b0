"""Bounded per-subscriber queues and the table of who listens to what.

Delivery never waits: ``Fanout.deliver`` appends to each inbox of the channel
and moves on. An inbox that is already ``max_queue`` messages long when one
more arrives is *dropped* on the spot: it leaves the table, its queue is freed
and its owner is told (``on_drop``). So memory per subscriber is bounded, and
the publisher and the other subscribers never wait for a slow one.

An inbox has three states; only OPEN accepts messages::

    OPEN --overflow--> DROPPED      (the reader sees SlowSubscriber)
      |
      +--close()-----> CLOSED       (the reader sees the end)
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable

import anyio

from tinyws.errors import SlowSubscriber

Message = str | bytes


class InboxState(enum.Enum):
    OPEN = "open"
    DROPPED = "dropped"
    CLOSED = "closed"


class Inbox:
    """One subscriber's queue of at most ``limit`` messages."""

    __slots__ = ("_items", "_limit", "_wakeup", "channel", "on_drop", "state")

    def __init__(self, channel: str, limit: int, on_drop: Callable[[], None] | None = None) -> None:
        self.channel = channel
        self._items: deque[Message] = deque()
        self._limit = limit
        self._wakeup: anyio.Event | None = None
        self.on_drop = on_drop
        self.state = InboxState.OPEN

    def put(self, message: Message) -> bool:
        """Queue ``message``; False (and the inbox dropped) when it is full."""
        if len(self._items) >= self._limit:
            self._end(InboxState.DROPPED)
            if self.on_drop is not None:
                self.on_drop()
            return False
        self._items.append(message)
        if self._wakeup is not None:
            self._wakeup.set()
        return True

    def close(self) -> None:
        if self.state is InboxState.OPEN:
            self._end(InboxState.CLOSED)

    def _end(self, state: InboxState) -> None:
        self.state = state
        self._items.clear()
        if self._wakeup is not None:
            self._wakeup.set()

    async def get(self) -> Message | None:
        """The next message; None once closed; ``SlowSubscriber`` once dropped."""
        while not self._items:
            if self.state is InboxState.DROPPED:
                raise SlowSubscriber(
                    f"the subscriber of {self.channel!r} fell {self._limit} messages behind"
                )
            if self.state is InboxState.CLOSED:
                return None
            self._wakeup = anyio.Event()
            try:
                await self._wakeup.wait()
            finally:
                self._wakeup = None
        return self._items.popleft()


class Fanout:
    """Channel name → the inboxes of this process that listen to it."""

    def __init__(self) -> None:
        self._inboxes: dict[str, set[Inbox]] = {}

    @property
    def channels(self) -> set[str]:
        return set(self._inboxes)

    def __contains__(self, channel: str) -> bool:
        return channel in self._inboxes

    def add(self, inbox: Inbox) -> None:
        self._inboxes.setdefault(inbox.channel, set()).add(inbox)

    def remove(self, inbox: Inbox) -> bool:
        """Forget ``inbox``; True when it was the channel's last one."""
        members = self._inboxes.get(inbox.channel)
        if members is None or inbox not in members:
            return False
        members.discard(inbox)
        if members:
            return False
        del self._inboxes[inbox.channel]
        return True

    def deliver(self, channel: str, message: Message) -> list[Inbox]:
        """Hand ``message`` to every inbox of ``channel``; the ones dropped on the way."""
        members = self._inboxes.get(channel)
        if not members:
            return []
        # A copy: a drop calls back into code that may leave the channel.
        dropped = [inbox for inbox in tuple(members) if not inbox.put(message)]
        for inbox in dropped:
            members.discard(inbox)
        if not members:
            self._inboxes.pop(channel, None)
        return dropped

    def close(self) -> None:
        for members in self._inboxes.values():
            for inbox in members:
                inbox.close()
        self._inboxes.clear()


__all__ = ["Fanout", "Inbox", "InboxState", "Message"]
