"""From the command line's URL, headers and TLS options to a :class:`Target`.

``ws://`` and ``wss://`` URLs. For ``wss://`` the SSL context is the stdlib's
default client context (certificate and host name verified against the
system's CAs), or against ``--cacert PEM`` only, or with verification off
(``--insecure``); session tickets are not reused, so every handshake pays
for a full TLS handshake, as a new client does.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from tinyws.bench.client_handshake import Target

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
DEFAULT_PORTS = {"ws": 80, "wss": 443}


class UsageError(Exception):
    """Raised when the arguments cannot describe a benchmark."""


class UnreachableError(Exception):
    """Raised when the target cannot be reached before any handshake (its name does not resolve)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    request_target: str
    host_header: str
    secure: bool = False


def parse_url(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise UsageError(f"expected a ws://host[:port]/path or wss:// URL, got {url!r}")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise UsageError(f"bad port in {url!r}") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.rpartition("@")[2]
    return Endpoint(parts.hostname, port, target, host_header, parts.scheme == "wss")


def parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
        raise UsageError(f"expected -H 'Name: value', got {text!r}")
    if name.lower() == "sec-websocket-key":
        raise UsageError("Sec-WebSocket-Key is generated afresh for every handshake")
    return name, value


def parse_subprotocols(values: list[str]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    for name in names:
        if not TOKEN.fullmatch(name):
            raise UsageError(f"bad subprotocol name {name!r}")
    return names


def tls_context(cacert: str | None, insecure: bool) -> ssl.SSLContext:
    """Return the client context for ``wss://``; UsageError for a bad ``--cacert``."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cacert is not None:
        try:
            context = ssl.create_default_context(cafile=cacert)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load --cacert {cacert!r}: {exc}") from exc
    else:
        context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def build_target(
    endpoint: Endpoint,
    headers: list[str],
    subprotocols: list[str],
    context: ssl.SSLContext | None = None,
) -> Target:
    fields = {
        "host": ("Host", endpoint.host_header),
        "upgrade": ("Upgrade", "websocket"),
        "connection": ("Connection", "Upgrade"),
        "sec-websocket-version": ("Sec-WebSocket-Version", "13"),
    }
    offered = set(subprotocols)
    if subprotocols:
        fields["sec-websocket-protocol"] = ("Sec-WebSocket-Protocol", ", ".join(subprotocols))
    for text in headers:
        name, value = parse_header(text)
        fields[name.lower()] = (name, value)  # a given header replaces the default
        if name.lower() == "sec-websocket-protocol":
            offered.update(parse_subprotocols([value]))
    lines = [f"GET {endpoint.request_target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in fields.values()]
    head = ("\r\n".join(lines) + "\r\nSec-WebSocket-Key: ").encode("latin-1")
    family, address = resolve(endpoint.host, endpoint.port)
    hostname = endpoint.host if context is not None and context.check_hostname else None
    return Target(family, address, head, b"\r\n\r\n", frozenset(offered), context, hostname)


def resolve(host: str, port: int) -> tuple[int, tuple[object, ...]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnreachableError(f"dns: cannot resolve {host!r}: {exc}") from exc
    family, _, _, _, address = infos[0]
    return family, address
