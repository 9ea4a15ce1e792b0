"""Publish/subscribe for WebSocket apps: rooms within a process (``memory://``)
or across every process connected to one Redis (``redis://``, ``rediss://``).

See SPEC §11 and docs/broadcast.md.
"""

from tinyws.broadcast.hub import Broadcast, Subscription
from tinyws.broadcast.join import Membership
from tinyws.errors import BroadcastError, SlowSubscriber

__all__ = ["Broadcast", "BroadcastError", "Membership", "SlowSubscriber", "Subscription"]
