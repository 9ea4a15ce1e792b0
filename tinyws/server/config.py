"""Server settings: where to listen, how to run, and the limits that keep a
misbehaving client from holding resources.

Every limit has a default that is safe on a public port and can be changed
from `serve()` keyword arguments or the command line. A limit of `None`
(where allowed) switches that check off.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from ssl import SSLContext

from tinyws.server.proxy import TrustedProxies
from tinyws.server.scope import PLAIN, ScopeSource

BACKENDS = ("asyncio", "trio")
LOOPS = ("auto", "asyncio", "uvloop")
LIFESPAN_MODES = ("auto", "on", "off")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


@dataclass(frozen=True)
class Config:
    """Everything the server needs to know, validated once at construction."""

    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "asyncio"
    #: The event loop under the asyncio backend: "uvloop", asyncio's own
    #: ("asyncio"), or "auto": uvloop when it is installed.
    loop: str = "auto"
    lifespan: str = "auto"
    log_level: str = "info"
    root_path: str = ""
    access_log: bool = True
    backlog: int = 1024
    #: Worker processes serving the port (`tinyws serve --workers N`, see
    #: `workers.py`); `serve()` and `Server` are one process whatever it says.
    workers: int = 1
    #: A listening socket (file descriptor) to serve instead of binding
    #: host:port: how a worker receives its socket from the supervisor.
    fd: int | None = None

    #: Read `X-Forwarded-For`/`-Proto` and `Forwarded` from the peers in
    #: `forwarded_allow_ips` into the scope's client and scheme (`proxy.py`).
    proxy_headers: bool = False
    #: Comma-separated addresses and CIDR networks of trusted proxies; "*": any.
    forwarded_allow_ips: str = "127.0.0.1"
    #: Serve TLS (https/wss) with this context (see `tls.build_ssl_context`).
    ssl: SSLContext | None = None

    #: Connections served at once; further clients get 503 and are closed.
    max_connections: int = 1000
    #: Bytes in a request head (request line + headers); over it: 431.
    max_header_bytes: int = 16 * 1024
    #: Seconds to receive a complete request head; over it the socket is
    #: closed. This is what defeats slowloris (heads trickled byte by byte).
    head_timeout: float = 10.0
    #: Seconds an idle keep-alive connection is kept between requests.
    keepalive_timeout: float = 5.0
    #: Bytes in an HTTP request body; over it: 413. None: no limit.
    max_body_bytes: int | None = 1024 * 1024
    #: Bytes in one WebSocket message, after reassembly and decompression;
    #: over it the connection is closed with 1009.
    ws_max_message_bytes: int = 16 * 1024 * 1024
    #: Seconds of silence from the client before the server sends a ping;
    #: None: never ping.
    ws_ping_interval: float | None = 20.0
    #: Seconds to wait for any data (such as the pong) after a ping before
    #: the connection is dropped.
    ws_ping_timeout: float = 20.0
    #: Seconds to wait for the client's close frame after the server closed.
    ws_close_timeout: float = 5.0
    #: Negotiate permessage-deflate when the client offers it.
    ws_per_message_deflate: bool = True
    #: Incoming WebSocket messages queued while the app is not receiving;
    #: when full (or holding `ws_max_message_bytes`), the server stops reading
    #: that socket until the app catches up (TCP backpressure).
    ws_max_queue: int = 32
    #: Unsent bytes of one WebSocket above which the app's `send()` waits
    #: for the socket to drain.
    ws_write_high_water: int = 64 * 1024
    #: Bytes per second a request body must average after a 5 s grace
    #: (Kestrel's rule); slower bodies are cut off. None: no minimum.
    min_data_rate: float | None = 240.0
    #: Seconds in-flight HTTP responses get to finish on shutdown.
    shutdown_timeout: float = 10.0

    def __post_init__(self) -> None:
        _choice("backend", self.backend, BACKENDS)
        _check_loop(self.loop, self.backend)
        _choice("lifespan", self.lifespan, LIFESPAN_MODES)
        _choice("log_level", self.log_level, LOG_LEVELS)
        if self.root_path.endswith("/"):
            raise ValueError("root_path must not end with '/'")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        TrustedProxies(self.forwarded_allow_ips)  # raises ValueError naming a bad entry
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        for field in (
            "max_connections",
            "max_header_bytes",
            "ws_max_message_bytes",
            "ws_max_queue",
            "ws_write_high_water",
        ):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1")
        if self.max_body_bytes is not None and self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")
        for field in ("head_timeout", "keepalive_timeout", "ws_ping_timeout", "ws_close_timeout"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive")
        for field in ("ws_ping_interval", "min_data_rate"):
            if getattr(self, field) is not None and getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive or None")
        if self.shutdown_timeout < 0:
            raise ValueError("shutdown_timeout must not be negative")

    def replace(self, **changes: object) -> Config:
        """A copy with some fields changed (validated again)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return Config(**{**fields, **changes})

    def event_loop(self) -> str:
        """The loop `serve()` runs: "uvloop", "asyncio" or "trio"."""
        if self.backend == "trio":
            return "trio"
        if self.loop == "auto":
            return "uvloop" if uvloop_installed() else "asyncio"
        return self.loop

    def limits(self) -> Limits:
        """The part of the settings the sans-IO connection core needs."""
        return Limits(
            self.max_header_bytes,
            self.max_body_bytes,
            self.ws_max_message_bytes,
            self.ws_per_message_deflate,
            self.root_path,
            head_timeout=self.head_timeout,
            keepalive_timeout=self.keepalive_timeout,
            min_data_rate=self.min_data_rate,
            ping_interval=self.ws_ping_interval,
            ping_timeout=self.ws_ping_timeout,
            close_timeout=self.ws_close_timeout,
            max_queue=self.ws_max_queue,
            source=ScopeSource(
                secure=self.ssl is not None,
                proxies=TrustedProxies(self.forwarded_allow_ips) if self.proxy_headers else None,
            ),
        )


class Limits:
    """The per-connection limits and timeouts the connection core enforces (see `Config`)."""

    __slots__ = (
        "close_timeout",
        "deflate",
        "head_timeout",
        "keepalive_timeout",
        "max_body",
        "max_header",
        "max_message",
        "max_queue",
        "min_data_rate",
        "ping_interval",
        "ping_timeout",
        "root_path",
        "source",
    )

    def __init__(
        self,
        max_header: int = 16384,
        max_body: int | None = 1 << 20,
        max_message: int = 16 << 20,
        deflate: bool = True,
        root_path: str = "",
        *,
        head_timeout: float = 10.0,
        keepalive_timeout: float = 5.0,
        min_data_rate: float | None = 240.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 20.0,
        close_timeout: float = 5.0,
        max_queue: int = 32,
        source: ScopeSource = PLAIN,
    ) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self.max_message = max_message
        self.deflate = deflate
        self.root_path = root_path
        self.head_timeout = head_timeout
        self.keepalive_timeout = keepalive_timeout
        self.min_data_rate = min_data_rate
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.max_queue = max_queue
        #: TLS on the port, and the proxies trusted with forwarding headers.
        self.source = source


def uvloop_installed() -> bool:
    """True when uvloop imports (it is an optional extra, never required)."""
    try:
        importlib.import_module("uvloop")
    except ImportError:
        return False
    return True


def _check_loop(loop: str, backend: str) -> None:
    _choice("loop", loop, LOOPS)
    if loop == "uvloop":
        if backend != "asyncio":
            raise ValueError(f"loop 'uvloop' needs the asyncio backend, not {backend}")
        if not uvloop_installed():
            raise ValueError("loop 'uvloop' needs uvloop: pip install 'tinyws[fast]'")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
