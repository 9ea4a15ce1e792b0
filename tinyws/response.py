"""``Response``: one type for HTTP responses and handshake denials.

A response is plain data (status, headers, body) until it is sent; the
framing it needs (``content-length``, a ``content-type``) is derived at that
moment, so middleware may still change the body in ``process_response``.
Every header is checked when it is set: a CR or LF could split the response
in two on a server that writes header bytes as given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tinyws.datastructures import Headers
from tinyws.errors import HeadersLike, check_status
from tinyws.types import Send

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
NO_BODY = (204, 304)

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
BINARY = "application/octet-stream"


def encode_header(name: str, value: str) -> tuple[bytes, bytes]:
    """Check one header and encode it as ASGI wants: lowercase name, latin-1."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"header names and values must be str, got {name!r}: {value!r}")
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}")
    if _BAD_VALUE.search(value):
        raise ValueError(f"header {name!r} has CR, LF or NUL in its value {value!r}")
    try:
        return name.lower().encode("ascii"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"header {name!r} has a value that is not latin-1: {value!r}") from None


def encode_headers(headers: HeadersLike | None) -> list[tuple[bytes, bytes]]:
    if headers is None:
        return []
    pairs: Iterable[tuple[str, str]] = headers.items() if isinstance(headers, Mapping) else headers
    return [encode_header(name, value) for name, value in pairs]


class MutableHeaders(Headers):
    """Response headers: case-insensitive, validated on every change."""

    __slots__ = ()

    def __setitem__(self, name: str, value: str) -> None:
        encoded = encode_header(name, value)
        self._raw = [pair for pair in self._raw if pair[0] != encoded[0]]
        self._raw.append(encoded)

    def __delitem__(self, name: str) -> None:
        key = name.lower().encode("latin-1")
        self._raw = [pair for pair in self._raw if pair[0] != key]

    def append(self, name: str, value: str) -> None:
        """Add a value without replacing the others (``set-cookie``, ``vary``)."""
        self._raw.append(encode_header(name, value))

    def setdefault(self, name: str, value: str) -> str:
        if name in self:
            return self[name]
        self.append(name, value)
        return value


class Response:
    """An HTTP response, also used as a WebSocket handshake denial.

    ``body`` is bytes or str (str is sent as UTF-8). Without ``content_type``
    a str body is ``text/plain; charset=utf-8`` and bytes are
    ``application/octet-stream``. ``status`` must be 200..599: a 1xx can never
    be a final response, and a denial must be one.
    """

    __slots__ = ("_body", "_status", "complete", "headers")

    def __init__(
        self,
        body: bytes | str = b"",
        status: int = 200,
        headers: HeadersLike | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.headers = MutableHeaders(encode_headers(headers))
        self.body = body
        if content_type is not None:
            self.headers["content-type"] = content_type
        # Set by middleware to skip routing and the handler (Falcon's resp.complete).
        self.complete = False

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: HeadersLike | None = None) -> Response:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        return cls(body, status, headers, JSON)

    @classmethod
    def text(cls, text: str, status: int = 200, headers: HeadersLike | None = None) -> Response:
        return cls(text.encode(), status, headers, TEXT)

    @property
    def status(self) -> int:
        return self._status

    @status.setter
    def status(self, status: int) -> None:
        check_status(status)
        self._status = status

    @property
    def body(self) -> bytes:
        return self._body

    @body.setter
    def body(self, body: bytes | str) -> None:
        if isinstance(body, str):
            self._body = body.encode()
            self.headers.setdefault("content-type", TEXT)
        elif isinstance(body, bytes | bytearray | memoryview):
            self._body = bytes(body)
        else:
            raise TypeError(f"a Response body is bytes or str, got {type(body).__name__}")

    def replace_with(self, other: Response) -> None:
        """Take another response's status, headers and body (a handler's return)."""
        self._status = other._status
        self.headers = other.headers
        self._body = other._body

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers as sent: explicit type and length, except on 204 and 304."""
        raw = [pair for pair in self.headers._raw if pair[0] != b"content-length"]
        if self._status in NO_BODY:
            return [pair for pair in raw if pair[0] != b"content-type"]
        if not any(name == b"content-type" for name, _ in raw):
            raw.append((b"content-type", BINARY.encode()))
        raw.append((b"content-length", str(len(self._body)).encode()))
        return raw

    async def send_http(self, send: Send, *, head_only: bool = False) -> None:
        await send(
            {"type": "http.response.start", "status": self._status, "headers": self.raw_headers()}
        )
        body = b"" if head_only or self._status in NO_BODY else self._body
        await send({"type": "http.response.body", "body": body})

    def __repr__(self) -> str:
        return f"<Response {self._status} {len(self._body)} bytes>"


__all__ = ["NO_BODY", "MutableHeaders", "Response", "encode_header", "encode_headers"]
