"""encode/broadcaster + Starlette for benchmarks/fanout.py (the same two
routes as fanout_tinyws.py), written as broadcaster's README does it: one
subscription per WebSocket, a task that forwards it, one that reads the
client until it leaves (plus the work-around in ``lifespan``)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator

import anyio
from broadcaster import Broadcast
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

CHANNEL = "fanout"
SIZE = 64

broadcast = Broadcast(os.environ.get("FANOUT_BROADCAST", "memory://"))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Two work-arounds for broadcaster 0.3.1 races, with its public API only.

    1. ``subscribe()`` awaits the backend before it records the channel's
       first queue, so members that arrive meanwhile each start a new set of
       queues and all sets but the last are lost (those members never receive
       anything). A subscription held from start-up makes every member a later one.
    2. Its Redis listener starts reading as soon as the first ``subscribe()``
       begins, finds redis-py's pubsub not subscribed yet (redis-py records the
       channel after sending SUBSCRIBE), stops, and waits for the next first
       subscribe. A second channel subscribed afterwards wakes it for good.
    """
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(broadcast)
        keeper = await stack.enter_async_context(broadcast.subscribe(CHANNEL))
        await stack.enter_async_context(broadcast.subscribe(f"{CHANNEL}.wake"))
        async with anyio.create_task_group() as tg:

            async def drain() -> None:
                while True:
                    await keeper.get()

            tg.start_soon(drain)
            yield
            tg.cancel_scope.cancel()


def stamped(seq: int) -> str:
    """64 characters: the sequence number and the CLOCK_MONOTONIC publish time."""
    return f"{seq:08d} {time.monotonic_ns():020d} ".ljust(SIZE, "x")


async def member(ws: WebSocket) -> None:
    await ws.accept()
    async with broadcast.subscribe(CHANNEL) as subscriber, anyio.create_task_group() as tg:

        async def forward() -> None:
            while True:  # ends by cancellation when the client leaves
                await ws.send_text((await subscriber.get()).message)

        async def read() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    await ws.receive_text()
            tg.cancel_scope.cancel()

        await ws.send_text("joined")
        tg.start_soon(forward)
        tg.start_soon(read)


async def publisher(ws: WebSocket) -> None:
    await ws.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            count, rate = (float(word) for word in (await ws.receive_text()).split())
            start = time.monotonic()
            for seq in range(int(count)):
                await anyio.sleep(max(0.0, start + seq / rate - time.monotonic()))
                await broadcast.publish(CHANNEL, stamped(seq))
            await ws.send_text("done")


app = Starlette(
    routes=[WebSocketRoute("/members", member), WebSocketRoute("/publish", publisher)],
    lifespan=lifespan,
)
