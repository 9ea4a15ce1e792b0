"""The ``redis://`` backend: Redis Pub/Sub, one subscription per channel per process.

Two connections per hub. The *publisher* sends ``PUBLISH`` and reads its
reply; one lock keeps one publisher's messages in the order it sent them.
The *listener* is subscribed to every channel that has a local subscriber,
once, however many there are: Redis pushes a message once to this process
and the fanout copies it to each local inbox.

Subscribing waits for Redis's confirmation, so a message published right
after ``subscribe()`` returns is seen. Redis answers SUBSCRIBE and UNSUBSCRIBE
in the order it received them, one push per channel, so counting pushes
(``_acked``) against the commands sent (``_sent_seq``) tells when a given
SUBSCRIBE has taken effect. Unsubscribing must work from a cancelled
handler, so it only marks the channel and wakes ``_sync``, which sends it.

When the listener's connection fails (or stays silent through a PING), an
outage begins: one warning is logged, ``publish`` raises ``BroadcastError``,
and the listener reconnects with growing, jittered delays, then subscribes
again to every channel that still has a local subscriber.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

import anyio
import anyio.abc
import hiredis

from tinyws.broadcast.address import RedisAddress
from tinyws.broadcast.inbox import Fanout, Message
from tinyws.broadcast.resp import CONNECTION_ERRORS, RedisReplyError, Reply, RespConnection
from tinyws.errors import BroadcastError

logger = logging.getLogger("tinyws.broadcast")

CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 5.0
# The listener PINGs after this long without a byte from Redis, and gives the
# connection up after as long again without an answer.
IDLE_INTERVAL = 10.0
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 2.0

# A message's first byte says its type, so str and bytes arrive as they left.
_TEXT, _BINARY = b"\x01", b"\x02"


def encode_message(message: Message) -> bytes:
    return _TEXT + message.encode() if isinstance(message, str) else _BINARY + message


def decode_message(payload: bytes) -> Message:
    """The message as published; a foreign payload is text when it is UTF-8."""
    marker, body = payload[:1], payload[1:]
    if marker == _BINARY:
        return body
    if marker == _TEXT:
        return body.decode()
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return payload


class RedisBackend:
    def __init__(
        self, address: RedisAddress, fanout: Fanout, deliver: Callable[[str, Message], None]
    ) -> None:
        self._address = address
        self._fanout = fanout
        self._deliver = deliver
        self._publisher: RespConnection | None = None
        self._publish_lock = anyio.Lock()
        self._listener: RespConnection | None = None  # None during an outage
        self._generation = 0  # one per listener connection
        self._sent_seq: dict[str, int] = {}  # channel → number of its SUBSCRIBE
        self._seq = self._acked = 0
        self._acks = anyio.Event()
        self._dirty = anyio.Event()
        self._write_lock = anyio.Lock()  # the listener's commands, in order

    # -- lifetime --------------------------------------------------------------

    async def connect(self) -> None:
        try:
            self._publisher = await RespConnection.open(self._address, CONNECT_TIMEOUT)
            self._listener = await RespConnection.open(self._address, CONNECT_TIMEOUT)
        except CONNECTION_ERRORS as exc:
            await self.stop()
            raise BroadcastError(
                f"cannot reach Redis at {self._address}: {_describe(exc)}"
            ) from exc

    def start(self, task_group: anyio.abc.TaskGroup) -> None:
        task_group.start_soon(self._listen)
        task_group.start_soon(self._sync)

    async def stop(self) -> None:
        listener = self._listener
        self._new_connection(None)
        if listener is not None:
            await listener.aclose()
        await self._drop_publisher()

    # -- publishing ------------------------------------------------------------

    async def publish(self, channel: str, message: Message) -> None:
        payload = encode_message(message)
        async with self._publish_lock:
            if self._listener is None:
                raise BroadcastError(f"Redis at {self._address} is unreachable: not published")
            try:
                with anyio.fail_after(COMMAND_TIMEOUT):
                    if self._publisher is None:
                        self._publisher = await RespConnection.open(self._address, CONNECT_TIMEOUT)
                    await self._publisher.call("PUBLISH", channel, payload)
            except CONNECTION_ERRORS as exc:
                await self._drop_publisher()
                raise BroadcastError(
                    f"publishing to Redis at {self._address} failed: {_describe(exc)}"
                ) from exc

    async def _drop_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.aclose()

    # -- subscribing -----------------------------------------------------------

    async def listen(self, channel: str) -> None:
        listener, generation = self._listener, self._generation
        if listener is None:
            return  # an outage: the reconnection subscribes to it
        try:
            target = await self._subscribe(listener, channel)
        except CONNECTION_ERRORS:
            return  # the listener sees the failure too, and resubscribes
        while self._acked < target and self._generation == generation:
            await self._acks.wait()

    async def _subscribe(self, listener: RespConnection, channel: str) -> int:
        """The number of the SUBSCRIBE that covers ``channel``, sent now if need be."""
        if channel not in self._sent_seq:
            async with self._write_lock:  # numbered in the order Redis receives them
                if channel not in self._sent_seq and listener is self._listener:
                    self._seq += 1
                    self._sent_seq[channel] = self._seq
                    await listener.send("SUBSCRIBE", channel)
        return self._sent_seq.get(channel, 0)

    def release(self, channel: str) -> None:
        self._dirty.set()

    async def _sync(self) -> None:
        """Unsubscribe from the channels whose last local subscriber left."""
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            try:
                async with self._write_lock:
                    await self._unsubscribe_stale()
            except CONNECTION_ERRORS:
                pass  # the listener sees it too; a new connection starts unsubscribed

    async def _unsubscribe_stale(self) -> None:
        listener = self._listener
        stale = [channel for channel in self._sent_seq if channel not in self._fanout]
        if listener is None or not stale:
            return
        for channel in stale:
            del self._sent_seq[channel]
        self._seq += len(stale)
        await listener.send("UNSUBSCRIBE", *stale)

    # -- the listener ------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            listener = self._listener
            assert listener is not None
            try:
                await self._pump(listener)
            except CONNECTION_ERRORS as exc:
                reason = _describe(exc)
            lost = time.monotonic()
            logger.warning(
                "lost the connection to Redis at %s (%s): reconnecting; "
                "messages published meanwhile will not arrive",
                self._address,
                reason,
            )
            self._new_connection(None)
            await listener.aclose()
            await self._drop_publisher()
            await self._reconnect()
            logger.info(
                "reconnected to Redis at %s after %.1f s, subscribed to %d channels",
                self._address,
                time.monotonic() - lost,
                len(self._sent_seq),
            )

    async def _pump(self, listener: RespConnection) -> None:
        """Hand what Redis pushes to the fanout until the connection fails."""
        pinged = False
        while True:
            with anyio.move_on_after(IDLE_INTERVAL) as idle:
                replies = await listener.receive()
            if idle.cancelled_caught:
                if pinged:
                    raise TimeoutError(f"no answer to PING in {IDLE_INTERVAL:g} s")
                pinged = True
                async with self._write_lock:
                    await listener.send("PING")
                continue
            pinged = False
            self._dispatch(replies)

    def _dispatch(self, replies: Sequence[Reply]) -> None:
        acked = self._acked
        for reply in replies:
            if isinstance(reply, list) and len(reply) == 3:
                kind, channel, payload = reply
                if kind == b"message":
                    self._deliver(channel.decode(), decode_message(payload))
                elif kind in (b"subscribe", b"unsubscribe"):
                    self._acked += 1
            elif isinstance(reply, hiredis.ReplyError):
                raise RedisReplyError(f"Redis answered with an error: {reply}")
        if self._acked != acked:
            self._acks.set()
            self._acks = anyio.Event()

    async def _reconnect(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            await anyio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)
            try:
                listener = await RespConnection.open(self._address, CONNECT_TIMEOUT)
            except CONNECTION_ERRORS as exc:
                logger.debug("Redis at %s still unreachable: %s", self._address, _describe(exc))
                continue
            self._new_connection(listener)
            channels = sorted(self._fanout.channels)
            try:
                for channel in channels:
                    await self._subscribe(listener, channel)
            except CONNECTION_ERRORS:
                self._new_connection(None)
                await listener.aclose()
                continue
            return

    def _new_connection(self, listener: RespConnection | None) -> None:
        """Start over with ``listener``: nothing subscribed yet, waiters released."""
        self._listener = listener
        self._generation += 1
        self._sent_seq.clear()
        self._seq = self._acked = 0
        self._acks.set()
        self._acks = anyio.Event()


def _describe(exc: BaseException) -> str:
    """The root cause: "Connect call failed", not anyio's "All connection attempts failed"."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


__all__ = ["RedisBackend", "decode_message", "encode_message"]
