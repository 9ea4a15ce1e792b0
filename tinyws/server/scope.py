"""ASGI scopes for HTTP requests and WebSocket handshakes (ASGI spec 2.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from tinyws.server.heads import RequestHead
from tinyws.server.proxy import TrustedProxies, resolve
from tinyws.types import Scope


@dataclass(frozen=True, slots=True)
class ScopeSource:
    """Where a scope's client and scheme come from besides the socket's peer:
    TLS on the port (https/wss), and with `--proxy-headers` the proxies whose
    forwarding headers are believed (`proxy.py`)."""

    secure: bool = False
    proxies: TrustedProxies | None = None


PLAIN = ScopeSource()
_SCHEMES = {
    ("http", False): "http",
    ("http", True): "https",
    ("websocket", False): "ws",
    ("websocket", True): "wss",
}


def build_scope(
    kind: str,
    head: RequestHead,
    *,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    root_path: str,
    state: dict[str, Any] | None,
    source: ScopeSource = PLAIN,
) -> Scope:
    """The scope for one request; `state` is shallow-copied, as ASGI asks."""
    raw_path, query = split_target(head.target)
    scheme = _SCHEMES[kind, source.secure]
    if source.proxies is not None:
        client, scheme = resolve(client, head.headers, scheme, source.proxies)
    scope: Scope = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": head.http_version.decode("ascii"),
        "scheme": scheme,
        # root_path is part of path and raw_path, as ASGI (and uvicorn) have it.
        "path": root_path + decode_path(raw_path),
        "raw_path": root_path.encode() + raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": head.headers,
        "client": client,
        "server": server,
    }
    if kind == "http":
        scope["method"] = head.method.decode("ascii")
    else:
        # A new dict per scope: an app may write into its extensions.
        scope["extensions"] = {"websocket.http.response": {}}
    if state is not None:
        scope["state"] = dict(state)
    return scope


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(raw path, query string); an absolute-form target loses its scheme and host."""
    if not target.startswith(b"/") and b"://" in target:
        target = target[target.index(b"://") + 3 :]
        slash = target.find(b"/")
        target = target[slash:] if slash >= 0 else b"/"
    raw_path, _, query = target.partition(b"?")
    return raw_path, query


def decode_path(raw_path: bytes) -> str:
    """Percent-decoded UTF-8 (undecodable bytes become U+FFFD)."""
    if raw_path.isascii() and b"%" not in raw_path:
        return raw_path.decode("ascii")  # the common case, without the decoder
    return unquote_to_bytes(raw_path).decode("utf-8", "replace")
