"""The client half of the test client: turn a test's request into the scope a server would build.

The scopes follow ASGI 3 / spec 2.4 as servers fill them in: header names
lowercased, ``path`` percent-decoded beside the ``raw_path`` sent on the wire,
``host`` first among the headers, ``server`` and ``client`` as address pairs.
"""

from __future__ import annotations

import base64
import json as jsonlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from tinyws.types import Scope

HeaderInput = Mapping[str, str] | Sequence[tuple[str, str]]
ParamsInput = Mapping[str, Any] | Sequence[tuple[str, Any]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
# What may stay unescaped in a request target (RFC 3986 pchar plus "/"); "%" keeps escapes.
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"


@dataclass(frozen=True)
class _Target:
    """Where a request goes, split into the pieces an ASGI scope needs."""

    scheme: str
    netloc: str
    host: str
    port: int
    raw_path: str
    query_string: str


def header_pairs(source: HeaderInput | None) -> list[tuple[str, str]]:
    """Headers as a list of pairs; a mapping with several values per name keeps them all."""
    if source is None:
        return []
    return list(source.items()) if isinstance(source, Mapping) else list(source)


def _override(base: list[tuple[str, str]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``base`` with every header that ``extra`` names replaced by extra's values."""
    names = {name.lower() for name, _ in extra}
    return [(k, v) for k, v in base if k.lower() not in names] + extra


def encode_body(
    content: bytes | str | None, data: Mapping[str, Any] | bytes | str | None, json: Any
) -> tuple[bytes, str | None]:
    """The request body and the content type it implies, if any."""
    if json is not None:
        return jsonlib.dumps(json, separators=(",", ":")).encode(), "application/json"
    if isinstance(data, Mapping):
        return urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
    raw = content if content is not None else data
    return (raw.encode() if isinstance(raw, str) else raw or b""), None


class ScopeBuilder:
    """Builds http and websocket scopes for one client: its base URL, address and headers."""

    def __init__(
        self,
        base_url: str,
        client: tuple[str, int] | None,
        headers: HeaderInput | None,
        root_path: str = "",
    ) -> None:
        if root_path.endswith("/") or (root_path and not root_path.startswith("/")):
            raise ValueError(
                f"root_path must start with '/' and not end with it, got {root_path!r}"
            )
        self.base_url = base_url
        self.client = client
        self.headers = header_pairs(headers)
        self.root_path = root_path

    def http(
        self,
        method: str,
        url: str,
        *,
        params: ParamsInput | None,
        headers: list[tuple[str, str]],
        body: bytes,
        content_type: str | None,
    ) -> Scope:
        extra = [("accept", "*/*"), ("user-agent", "testclient")]
        if body or method in ("POST", "PUT", "PATCH"):
            extra.append(("content-length", str(len(body))))
        if content_type is not None:
            extra.append(("content-type", content_type))
        scope = self._scope("http", self._target(url, params, websocket=False), extra, headers)
        scope["method"] = method
        return scope

    def websocket(
        self,
        url: str,
        params: ParamsInput | None,
        headers: list[tuple[str, str]],
        subprotocols: Sequence[str],
    ) -> Scope:
        extra = [
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", base64.b64encode(os.urandom(16)).decode()),
            ("sec-websocket-version", "13"),
            ("user-agent", "testclient"),
        ]
        if subprotocols:
            extra.append(("sec-websocket-protocol", ", ".join(subprotocols)))
        scope = self._scope("websocket", self._target(url, params, websocket=True), extra, headers)
        scope["subprotocols"] = list(subprotocols)
        return scope

    def _target(self, url: str, params: ParamsInput | None, *, websocket: bool) -> _Target:
        # A bare path goes to the base URL; a full URL brings its own scheme and host.
        base, parts = urlsplit(self.base_url), urlsplit(url)
        scheme = parts.scheme or base.scheme
        if websocket:
            scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
        location = parts if parts.netloc else base
        path = parts.path if parts.netloc else base.path.rstrip("/") + parts.path
        query = parts.query
        if params:
            query = "&".join(q for q in (query, urlencode(params, doseq=True)) if q)
        port = location.port or _DEFAULT_PORTS.get(scheme, 80)
        raw_path = quote(path or "/", safe=_PATH_SAFE)
        return _Target(scheme, location.netloc, location.hostname or "", port, raw_path, query)

    def _scope(
        self,
        kind: str,
        target: _Target,
        extra: list[tuple[str, str]],
        headers: list[tuple[str, str]],
    ) -> Scope:
        pairs = _override(_override([("host", target.netloc), *extra], self.headers), headers)
        return {
            "type": kind,
            "asgi": dict(ASGI_VERSION),
            "http_version": "1.1",
            "scheme": target.scheme,
            # As servers do (uvicorn --root-path, tinyws serve): the mount point
            # goes in front of the path the client asked for.
            "path": self.root_path + unquote(target.raw_path),
            "raw_path": (self.root_path + target.raw_path).encode("ascii"),
            "query_string": quote(target.query_string, safe=_PATH_SAFE + "?").encode("ascii"),
            "root_path": self.root_path,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs],
            "client": self.client,
            "server": (target.host, target.port),
            "extensions": {},
        }
