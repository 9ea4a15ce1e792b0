"""Chat rooms in memory: who is in each room, and telling all of them.

Each member's own handler adds it on joining and removes it when its
connection ends. Between those two moments its socket can already be gone:
its peer closed, and its handler has not yet woken up to notice. Sending to
it then raises ``WebSocketDisconnect``, which is that member's departure, not
the sender's; so every send to a member is wrapped, and a member whose send
fails is dropped from the room while the sender goes on.

One room's sends run one after the other in the sender's task: a member
that reads slowly delays the others (a broadcast hub, with a queue and a
task per member, is the cure once that matters).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tinyws import WebSocketDisconnect
from tinyws.errors import WebSocketStateError

logger = logging.getLogger("examples.chat")


class Member(Protocol):
    """What a room needs of a member's socket (a ``tinyws.WebSocket``)."""

    async def send_json(self, data: Any) -> None: ...


class Room:
    """The members of one room, each with the name it joined as."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[Member, str] = {}

    def join(self, member: Member, name: str) -> None:
        self.members[member] = name

    def leave(self, member: Member) -> None:
        self.members.pop(member, None)

    def names(self) -> list[str]:
        return list(self.members.values())

    async def broadcast(self, event: dict[str, Any], skip: Member | None = None) -> None:
        """Send ``event`` to every member but ``skip``; drop those that have gone."""
        for member in list(self.members):
            if member is skip or member not in self.members:
                continue  # dropped meanwhile, by a broadcast running in another task
            try:
                await member.send_json(event)
            except (WebSocketDisconnect, WebSocketStateError):
                # Its socket is closed (WebSocketStateError: a send to it had already failed).
                name = self.members.pop(member, None)
                if name is not None:
                    logger.info("dropped %r from room %r: it has left", name, self.name)


def make_rooms(names: tuple[str, ...]) -> dict[str, Room]:
    return {name: Room(name) for name in names}
