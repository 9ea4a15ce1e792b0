"""The fastest WebSocket handshake server we can write in Python: the floor.

No ASGI, no HTTP parser, no framework: an asyncio Protocol that finds the
key in the upgrade request, answers 101 from a pre-built template (or a 403
with ``--reject``), echoes the client's close frame and closes. It validates
almost nothing, so it is only fit for one job: driving ``tinyws bench`` as
hard as possible, to measure how many handshakes per second the client
itself can run.

    python benchmarks/floor_server.py --port 8765 [--reject] [--no-uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import re
from typing import cast

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = re.compile(rb"\r\nsec-websocket-key:[ \t]*([A-Za-z0-9+/=]+)", re.IGNORECASE)
ACCEPT = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
)
REJECT = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: close\r\n\r\nForbidden"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
CLOSE_1000 = b"\x88\x02\x03\xe8"


class Handshake(asyncio.Protocol):
    reject = False

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only look-alikes.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        if self.upgraded:
            # A masked frame from the client: whatever it is, a close is all we expect.
            if len(self.buf) >= 2 and self.buf[0] & 0x0F == 0x8:
                self.transport.write(CLOSE_1000)
                self.transport.close()
            return
        if b"\r\n\r\n" not in self.buf:
            return
        match = KEY.search(self.buf)
        if self.reject or match is None:
            self.transport.write(REJECT if match else BAD_REQUEST)
            self.transport.close()
            return
        accept = base64.b64encode(hashlib.sha1(match.group(1) + GUID).digest())
        self.transport.write(ACCEPT % accept)
        self.buf = b""
        self.upgraded = True


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Handshake, host, port, backlog=1024, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reject", action="store_true", help="answer 403 to every upgrade")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    Handshake.reject = args.reject
    run = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            run = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
