"""What a hub connects to, and what a channel may be called: checked up front.

Both checks run before any I/O so that a typo fails at the line that made it,
not at the first publish.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import SplitResult, unquote, urlsplit

MAX_CHANNEL_BYTES = 1024
_SCHEMES = ("memory", "redis", "rediss")


def check_channel(channel: object) -> str:
    """``channel`` itself when it is a non-empty ``str`` of at most 1024 UTF-8 bytes."""
    if not isinstance(channel, str):
        raise ValueError(f"a channel is a str, got {type(channel).__name__}")
    try:
        size = len(channel.encode())
    except UnicodeEncodeError:
        raise ValueError("a channel must be encodable as UTF-8") from None
    if not 0 < size <= MAX_CHANNEL_BYTES:
        raise ValueError(f"a channel is 1 to {MAX_CHANNEL_BYTES} UTF-8 bytes long, got {size}")
    return channel


@dataclasses.dataclass(frozen=True)
class RedisAddress:
    """A parsed hub URL: ``memory://`` or a Redis server."""

    scheme: str
    host: str = ""
    port: int = 0
    db: int = 0
    username: str | None = None
    password: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    def __str__(self) -> str:
        """The URL for messages: the password never appears in a log line."""
        if self.scheme == "memory":
            return "memory://"
        credentials = ""
        if self.password is not None:
            credentials = f"{self.username or ''}:***@"
        elif self.username is not None:
            credentials = f"{self.username}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{credentials}{host}:{self.port}/{self.db}"


def parse_url(url: object) -> RedisAddress:
    """The ``RedisAddress`` of ``url``; ``ValueError`` for anything but the URLs SPEC §11 lists."""
    if not isinstance(url, str):
        raise ValueError(f"the broadcast URL is a str, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not url.startswith(f"{parts.scheme}://"):
        raise ValueError(
            f"unsupported broadcast URL {_hide_password(url)!r}: "
            "use memory://, redis://host[:port][/db] or rediss://host[:port][/db]"
        )
    if parts.query or parts.fragment:
        raise ValueError("a broadcast URL takes no query string or fragment")
    if parts.scheme == "memory":
        if parts.netloc or parts.path:
            raise ValueError(f"memory:// takes no host or path, got {url!r}")
        return RedisAddress("memory")
    return _redis_address(parts)


def _redis_address(parts: SplitResult) -> RedisAddress:
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError("the Redis port must be a number in 0..65535") from None
    path = parts.path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        raise ValueError(f"the Redis database is a number, got {path!r}")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    host = parts.hostname or "localhost"
    return RedisAddress(parts.scheme, host, port, int(path or 0), username, password)


def _hide_password(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"


__all__ = ["MAX_CHANNEL_BYTES", "RedisAddress", "check_channel", "parse_url"]
