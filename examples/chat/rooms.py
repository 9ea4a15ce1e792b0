"""Chat rooms on the broadcast hub: a channel per room, and who is in each.

Each room is one channel of the app's ``tinyws.broadcast`` hub
(``chat:<room>``). A member's handler joins it with ``hub.join``, which
forwards every event of the room to that member from a task of its own,
through a bounded queue: a member that reads slowly is closed with 1013
instead of delaying the room, and a member that has gone is dropped without
disturbing the sender. With ``memory://`` a room spans this process; with
``redis://`` it spans every process on that Redis (``--workers N``, several
servers), and the code is the same.

The hub carries messages, not state, so the welcome's list of who is here
comes from a ``Roster``: each process follows every room's channel and
counts the ``joined`` and ``left`` events it sees. It knows whoever joined
since the process started (Redis Pub/Sub keeps no history): a worker that
starts later, or one that was cut off from Redis, lists only those who
joined after.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import anyio.abc

from tinyws.broadcast import Broadcast, SlowSubscriber

logger = logging.getLogger("examples.chat")


def channel_of(room: str) -> str:
    return f"chat:{room}"


def encode(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


class Roster:
    """Who is in each room, as this process has heard it on the rooms' channels."""

    def __init__(self, rooms: tuple[str, ...]) -> None:
        self._rooms: dict[str, Counter[str]] = {room: Counter() for room in rooms}

    def names(self, room: str) -> list[str]:
        """The names in ``room``, in joining order, once per member."""
        return list(self._rooms[room].elements())

    def note(self, room: str, message: str | bytes) -> None:
        """Count one event of the room's channel."""
        event = json.loads(message)
        here = self._rooms[room]
        if event["type"] == "joined":
            here[event["name"]] += 1
        elif event["type"] == "left":
            here[event["name"]] -= 1
            if here[event["name"]] <= 0:
                del here[event["name"]]

    async def follow(
        self,
        hub: Broadcast,
        room: str,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Count the room's events until cancelled (start it with ``task_group.start``)."""
        started = False
        while True:
            try:
                async with hub.subscribe(channel_of(room)) as events:
                    if not started:
                        started = True
                        task_status.started()
                    async for message in events:
                        self.note(room, message)
            except SlowSubscriber:  # a burst: the counts may be off, go on counting
                logger.warning("roster of %r fell behind; some joins may be missed", room)
