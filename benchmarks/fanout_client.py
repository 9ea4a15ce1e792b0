"""The client side of benchmarks/fanout.py: many member WebSockets and one
publisher, on raw asyncio transports with a minimal frame parser (no
WebSocket library in the measured path, so the client costs little per
message and measures the server, not itself).

A message is 64 characters: ``"<seq:08d> <publish time:020d> "`` and padding.
The publish time is CLOCK_MONOTONIC (``time.monotonic_ns()``), system-wide
on Linux, so a receive time read in this process gives the delivery latency.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

HOST = "127.0.0.1"
HANDSHAKES_AT_ONCE = 100  # connections opening together (well under any backlog)
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked frame (every client frame is masked, RFC 6455 §5.3)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode, 0x80 | n]) if n < 126 else bytes([0x80 | opcode, 0xFE])
    if n >= 126:
        head += n.to_bytes(2, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def handshake(path: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


@dataclass
class Tally:
    """What all members of one run received."""

    members: int
    messages: int
    joined: int = 0
    received: int = 0
    complete: int = 0  # members that got every message, in order
    out_of_order: int = 0  # members that saw a gap or a reordering
    closed: int = 0  # close frames or lost connections before the end
    first_publish_ns: int | None = None
    last_receive_ns: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    all_joined: asyncio.Event = field(default_factory=asyncio.Event)
    all_received: asyncio.Event = field(default_factory=asyncio.Event)


class Connection(asyncio.Protocol):
    """One WebSocket: the 101 response, then server frames (never masked)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = asyncio.Event()
        self.refusal: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_close()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buffer = self.buffer
        buffer += data
        if not self.upgraded.is_set():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101 "):
                self.refusal = bytes(buffer[:end]).decode(errors="replace").splitlines()[0]
                assert self.transport is not None
                self.transport.close()
                return
            del buffer[: end + 4]
            self.upgraded.set()
        while len(buffer) >= 2:
            n, start = buffer[1] & 0x7F, 2
            if n == 126:
                if len(buffer) < 4:
                    return
                n, start = int.from_bytes(buffer[2:4], "big"), 4
            elif n == 127:
                if len(buffer) < 10:
                    return
                n, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + n:
                return
            opcode, payload = buffer[0] & 0x0F, bytes(buffer[start : start + n])
            del buffer[: start + n]
            self.on_frame(opcode, payload, now)

    def on_frame(self, opcode: int, payload: bytes, now: int) -> None:
        if opcode == OP_PING and self.transport is not None:
            self.transport.write(client_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.on_close()

    def on_close(self) -> None:
        pass

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(OP_TEXT, text.encode()))


class Member(Connection):
    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally
        self.next_seq = 0
        self.broken = False
        self.ended = False

    def on_frame(self, opcode: int, payload: bytes, now: int) -> None:
        if opcode != OP_TEXT:
            return super().on_frame(opcode, payload, now)
        tally = self.tally
        if payload == b"joined":
            tally.joined += 1
            if tally.joined == tally.members:
                tally.all_joined.set()
            return
        seq, published = int(payload[:8]), int(payload[9:29])
        if seq != self.next_seq and not self.broken:
            self.broken = True
            tally.out_of_order += 1
        self.next_seq = seq + 1
        tally.received += 1
        tally.latencies_ns.append(now - published)
        tally.last_receive_ns = now
        if seq == 0 and (tally.first_publish_ns is None or published < tally.first_publish_ns):
            tally.first_publish_ns = published
        if seq == tally.messages - 1 and not self.broken:
            tally.complete += 1
        if tally.received == tally.members * tally.messages:
            tally.all_received.set()

    def on_close(self) -> None:
        if not self.ended:
            self.ended = True
            if self.next_seq < self.tally.messages:
                self.tally.closed += 1
                self.tally.all_received.set()  # no point waiting for the rest


class Publisher(Connection):
    def __init__(self) -> None:
        super().__init__()
        self.done = asyncio.Event()

    def on_frame(self, opcode: int, payload: bytes, now: int) -> None:
        if opcode == OP_TEXT and payload == b"done":
            self.done.set()
        else:
            super().on_frame(opcode, payload, now)


async def open_members(port: int, tally: Tally) -> list[Member]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    request = handshake("/members", port)

    async def one() -> Member:
        async with gate:
            _, member = await loop.create_connection(lambda: Member(tally), HOST, port)
            assert member.transport is not None
            member.transport.write(request)
            return member

    return list(await asyncio.gather(*(one() for _ in range(tally.members))))


async def fan_out(
    port: int, tally: Tally, rate: float, timeout: float, checkpoint: Callable[[], None]
) -> None:
    """Connect the members, wait until all joined, publish, wait for every delivery.

    ``checkpoint`` is called just before the publish order and just after the
    last delivery (or the timeout): the caller reads the servers' CPU time.
    """
    members = await open_members(port, tally)
    try:
        try:
            await asyncio.wait_for(tally.all_joined.wait(), timeout)
        except asyncio.TimeoutError:
            refused = {m.refusal for m in members if m.refusal}
            said = f"; the server answered {sorted(refused)}" if refused else ""
            raise RuntimeError(f"{tally.joined} of {tally.members} members joined{said}") from None
        await asyncio.sleep(0.2)  # the peers' subscribe() returns before Redis confirms
        loop = asyncio.get_running_loop()
        _, publisher = await loop.create_connection(Publisher, HOST, port)
        assert publisher.transport is not None
        publisher.transport.write(handshake("/publish", port))
        await asyncio.wait_for(publisher.upgraded.wait(), timeout)
        checkpoint()
        publisher.send_text(f"{tally.messages} {rate}")
        # A timeout leaves the tally short: the report says how short.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(tally.all_received.wait(), timeout)
        checkpoint()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(publisher.done.wait(), timeout)
        publisher.transport.close()
    finally:
        for member in members:
            member.ended = True
            if member.transport is not None:
                member.transport.close()
