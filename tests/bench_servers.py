"""A tiny raw asyncio WebSocket server for the bench's own tests, in a thread.

It answers every upgrade with a 101 (or a 403 when told to), echoes the
client's close frame and closes: no framework, so its timing is its own.
``stall`` makes it freeze — the whole event loop blocked, as in a long GC
pause — for that many seconds once per ``period``, which is what the open
model (``--rate``) must not hide.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tinyws.rfc6455 import accept_key

KEY = re.compile(rb"\r\nsec-websocket-key:[ \t]*([A-Za-z0-9+/=]+)", re.IGNORECASE)
CLOSE_1000 = b"\x88\x02\x03\xe8"
REJECT = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"


class _Upgrade(asyncio.Protocol):
    reject = False

    def __init__(self) -> None:
        self.buf = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if self.upgraded:
            if len(self.buf) >= 6:  # the client's masked close frame, code only
                self.transport.write(CLOSE_1000)
                self.transport.close()
            return
        if b"\r\n\r\n" not in self.buf:
            return
        match = KEY.search(self.buf)
        if self.reject or match is None:
            self.transport.write(REJECT)
            self.transport.close()
            return
        self.upgraded, self.buf = True, self.buf.partition(b"\r\n\r\n")[2]
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(match.group(1)) + b"\r\n\r\n"
        )


class _Reject(_Upgrade):
    reject = True


@dataclass
class RawServer:
    port: int
    stalls: list[float]  # when each stall began (time.monotonic)

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


@contextmanager
def raw_server(
    stall: float = 0.0, period: float = 1.0, reject: bool = False
) -> Iterator[RawServer]:
    """Run the server on a free loopback port until the block ends."""
    loop = asyncio.new_event_loop()
    factory = _Reject if reject else _Upgrade
    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0, backlog=2048))
    running = RawServer(server.sockets[0].getsockname()[1], [])

    def freeze() -> None:
        running.stalls.append(time.monotonic())
        time.sleep(stall)  # blocks the loop: nothing is accepted or answered meanwhile
        loop.call_later(period - stall, freeze)

    if stall:
        loop.call_later(period - stall, freeze)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
