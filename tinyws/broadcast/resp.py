"""A Redis connection that speaks just enough RESP2 for Pub/Sub.

Commands are encoded here (a RESP array of bulk strings); replies are parsed
by hiredis's ``Reader``, which is sans-IO: bytes in, replies out. The anyio
stream around it is the only I/O, so the same code runs on asyncio and trio,
over TCP or TLS (``rediss://``).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import anyio
import anyio.abc
import hiredis

from tinyws.broadcast.address import RedisAddress

Reply = object
# Errors that mean "this connection is gone": the caller reconnects or gives up.
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    hiredis.ProtocolError,
    ssl.SSLError,
)
_RECEIVE_SIZE = 65536


class RedisReplyError(ConnectionError):
    """Redis answered a command with an error (wrong password, unknown database ...)."""


def encode_command(*args: str | bytes) -> bytes:
    """``args`` as a RESP array of bulk strings, the form Redis accepts for every command."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespConnection:
    """One connection to Redis: send commands, receive replies in order."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self._reader = hiredis.Reader()

    @classmethod
    async def open(cls, address: RedisAddress, timeout: float) -> RespConnection:
        """Connect, authenticate and select the database, within ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            stream: anyio.abc.ByteStream
            if address.tls:
                stream = await anyio.connect_tcp(
                    address.host,
                    address.port,
                    ssl_context=ssl.create_default_context(),
                    tls_standard_compatible=False,
                )
            else:
                stream = await anyio.connect_tcp(address.host, address.port)
            connection = cls(stream)
            try:
                await connection._handshake(address)
            except BaseException:
                await anyio.aclose_forcefully(stream)
                raise
        return connection

    async def _handshake(self, address: RedisAddress) -> None:
        if address.password is not None:
            user = (address.username,) if address.username else ()
            await self.call("AUTH", *user, address.password)
        if address.db:
            await self.call("SELECT", str(address.db))
        await self.call("PING")  # proves it is Redis speaking, whatever the options

    async def send(self, *args: str | bytes) -> None:
        """Send one command; the caller keeps sends from two tasks apart."""
        await self._stream.send(encode_command(*args))

    async def receive(self) -> Sequence[Reply]:
        """The replies that are complete after one read from the socket (at least one)."""
        reader = self._reader
        replies: list[Reply] = []
        while not replies:
            data = await self._stream.receive(_RECEIVE_SIZE)
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                replies.append(reply)
        return replies

    async def call(self, command: str, *args: str | bytes) -> Reply:
        """Send one command and return its reply (for connections with one caller at a time)."""
        await self.send(command, *args)
        (reply,) = await self.receive()
        if isinstance(reply, hiredis.ReplyError):
            raise RedisReplyError(f"Redis answered {command}: {reply}")
        return reply

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self._stream)


__all__ = ["CONNECTION_ERRORS", "RedisReplyError", "Reply", "RespConnection", "encode_command"]
