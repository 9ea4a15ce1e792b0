"""The two exceptions of ``tinyws.broadcast``."""

from __future__ import annotations


class BroadcastError(ConnectionError):
    """Raised when the hub cannot reach its backend.

    ``async with hub`` raises it when Redis cannot be reached at start-up (the
    message names the URL, password hidden), and ``publish()`` raises it while
    the connection to Redis is down.
    """


class SlowSubscriber(Exception):
    """Raised from a subscription's iteration once it fell ``max_queue`` messages behind.

    The hub dropped the subscription at that moment and freed its queue:
    publishers and the other subscribers never wait for a slow one.
    """


__all__ = ["BroadcastError", "SlowSubscriber"]
