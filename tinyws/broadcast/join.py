"""``hub.join(channel, ws)``: one WebSocket as a member of a channel.

Each member gets its own inbox and its own forwarding task, which takes the
next message and awaits ``ws.send()``. A member whose client reads slowly
therefore blocks only its own task; the fanout keeps appending to its inbox
without waiting, and when the inbox overflows the member is evicted:

1. the WebSocket is closed with 1013 ("Try Again Later"), from a task of its
   own, bounded in time, while a ``send()`` may still be in flight: the close
   frame queues behind what the server already holds, the stream stays whole;
2. the body of the ``async with hub.join(...)`` block is cancelled, so the
   handler's ``async for message in ws`` ends on every ASGI server, even one
   that would only report the disconnect once the client answers the close.

A member whose client has gone (``send()`` raises ``WebSocketDisconnect``, or
the handler saw the close first) just stops being forwarded to: that is the
ordinary end of a WebSocket, not an error.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

import anyio

from tinyws.broadcast.inbox import Inbox
from tinyws.errors import SlowSubscriber, WebSocketDisconnect, WebSocketStateError

if TYPE_CHECKING:
    from tinyws.broadcast.hub import Broadcast

logger = logging.getLogger("tinyws.broadcast")

SLOW_CLOSE_CODE = 1013
SLOW_CLOSE_REASON = "too slow to keep up with the channel"
# How long an eviction may wait for a server that applies backpressure to close().
CLOSE_TIMEOUT = 5.0


class Member(Protocol):
    """What ``join`` needs of a WebSocket (``tinyws.WebSocket`` has it)."""

    async def send(self, data: str | bytes) -> None: ...
    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Standing(enum.Enum):
    """Where a membership is; the forwarder and the block's exit both read it."""

    MEMBER = "member"  # forwarding
    EVICTED = "evicted"  # fell max_queue behind: closed with 1013
    GONE = "gone"  # the client left, or the block was left


class Membership:
    """The async context manager ``hub.join()`` returns."""

    def __init__(self, hub: Broadcast, channel: str, ws: Member) -> None:
        self._hub = hub
        self._ws = ws
        self._inbox = Inbox(channel, hub.max_queue, on_drop=self._evict)
        self._body = anyio.CancelScope()
        self.standing = Standing.MEMBER
        self._failure: BaseException | None = None
        self._entered = False

    @property
    def channel(self) -> str:
        return self._inbox.channel

    async def __aenter__(self) -> Membership:
        if self._entered:
            raise RuntimeError("a membership can be entered only once")
        self._entered = True
        await self._hub.attach(self._inbox)
        self._hub.spawn(self.forward)
        self._body.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        swallowed = self._body.__exit__(exc_type, exc, traceback)
        if self.standing is Standing.MEMBER:
            self.standing = Standing.GONE
        self._hub.detach(self._inbox)
        if self._failure is not None and (exc is None or swallowed):
            raise self._failure
        return bool(swallowed)

    async def forward(self) -> None:
        """The member's own task: inbox → ``ws.send()`` until either side ends."""
        ws, inbox = self._ws, self._inbox
        try:
            while (message := await inbox.get()) is not None:
                await ws.send(message)
        except SlowSubscriber:
            pass  # _evict closes the socket
        except (WebSocketDisconnect, WebSocketStateError):
            pass  # the client left, or the handler closed the socket
        except Exception as exc:  # a bug or a server error: the handler raises it
            self._failure = exc
            self._body.cancel()
        finally:
            if self.standing is Standing.MEMBER:
                self.standing = Standing.GONE
            self._hub.detach(inbox)

    def _evict(self) -> None:
        # Called by the fanout while it delivers: no awaiting here.
        if self.standing is Standing.MEMBER:
            self.standing = Standing.EVICTED
            self._hub.spawn(self._close_slow)

    async def _close_slow(self) -> None:
        logger.info(
            "closing a WebSocket that fell %d messages behind on %r with %d",
            self._hub.max_queue,
            self.channel,
            SLOW_CLOSE_CODE,
        )
        # Gone meanwhile (OSError): nothing left to close.
        with anyio.move_on_after(CLOSE_TIMEOUT), contextlib.suppress(OSError):
            await self._ws.close(SLOW_CLOSE_CODE, SLOW_CLOSE_REASON)
        self._body.cancel()


__all__ = ["CLOSE_TIMEOUT", "SLOW_CLOSE_CODE", "Member", "Membership", "Standing"]
