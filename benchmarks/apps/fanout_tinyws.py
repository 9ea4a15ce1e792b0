"""tinyws + tinyws.broadcast for benchmarks/fanout.py.

``/members``: a member of the one channel; its first message is ``joined``,
sent once the membership is in place (on Redis: once the process's
subscription is confirmed), then every message published to the channel.
``/publish``: the publisher; the client sends ``"<count> <per second>"``, the
handler publishes that many messages at that rate and answers ``done``.
``FANOUT_BROADCAST`` is the hub's URL (default ``memory://``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator

import anyio

from tinyws import App, WebSocket
from tinyws.broadcast import Broadcast

CHANNEL = "fanout"
SIZE = 64

hub = Broadcast(os.environ.get("FANOUT_BROADCAST", "memory://"))


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    async with hub:
        yield


app = App(lifespan=lifespan)


def stamped(seq: int) -> str:
    """64 characters: the sequence number and the CLOCK_MONOTONIC publish time."""
    return f"{seq:08d} {time.monotonic_ns():020d} ".ljust(SIZE, "x")


@app.websocket("/members")
async def member(ws: WebSocket) -> None:
    await ws.accept()
    async with hub.join(CHANNEL, ws):
        await ws.send("joined")
        async for _ in ws:
            pass


@app.websocket("/publish")
async def publisher(ws: WebSocket) -> None:
    await ws.accept()
    async for order in ws:
        count, rate = (float(word) for word in str(order).split())
        start = time.monotonic()
        for seq in range(int(count)):
            # A fixed schedule: a late publish does not push the next ones back.
            await anyio.sleep(max(0.0, start + seq / rate - time.monotonic()))
            await hub.publish(CHANNEL, stamped(seq))
        await ws.send("done")
