"""Every response the server writes itself, each with a `Date` header.

The 101 that accepts a WebSocket, the app's WebSocket denials, and the
server's own refusals (400, 403, 413, 426, 431, 500, 503, 505 ...) are
written here directly, without h11. RFC 9110 §6.6.1 wants a `Date` on them
from any server with a clock. As in uvicorn, the runtime keeps the value
current: `refresh_date()` formats it when the second changes, and the server
calls it on every timer tick (at most half a second apart), so a response
reads a module global instead of the clock. A response that never changes
(`Canned`) is re-encoded only when the date does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from tinyws.rfc6455 import accept_key

RawHeaders = list[tuple[bytes, bytes]]

REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
#: The bytes of a token (RFC 9110 §5.6.2), the only ones a field name may hold.
TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: What a field value may hold (RFC 9110 §5.5): HTAB, SP, visible ASCII, obs-text.
FIELD_CHARS = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
_FRAMING = (b"content-length", b"transfer-encoding", b"connection")
_ACCEPT_HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: "
)


class _Date:
    """The Date header's value and the second it names."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = 0
        self.value = b""


def refresh_date() -> bytes:
    """Bring the Date value up to the current second and return it.

    The same bytes object stays current until the second changes, so callers
    may cache on its identity.
    """
    now = int(time.time())
    if now != _DATE.second:
        _DATE.second = now
        _DATE.value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
    return _DATE.value


def http_date() -> bytes:
    """The Date header value as of the last `refresh_date()`."""
    return _DATE.value


def accept_response(
    key: bytes, subprotocol: str | None, extension: str | None, headers: RawHeaders
) -> bytes:
    """The 101 that accepts a WebSocket."""
    parts = [_ACCEPT_HEAD, accept_key(key), b"\r\n"]
    if not headers or b"date" not in [n for n, _ in headers]:  # the app's own Date wins
        parts += [b"date: ", _DATE.value, b"\r\n"]
    if subprotocol is not None:
        parts += [b"sec-websocket-protocol: ", subprotocol.encode("ascii"), b"\r\n"]
    if extension is not None:
        parts += [b"sec-websocket-extensions: ", extension.encode("ascii"), b"\r\n"]
    for name, value in headers:
        parts += [name, b": ", value, b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)


def response_head(status: int, headers: RawHeaders) -> bytes:
    """A status line, the headers and a `Date`, then the blank line."""
    reason = REASONS.get(status, b"Unknown")
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in headers]
    lines.append(b"date: %s\r\n\r\n" % _DATE.value)
    return b"".join(lines)


def error_response(
    status: int, detail: bytes | None = None, extra: RawHeaders | None = None
) -> bytes:
    """A complete plain-text error response that ends the connection."""
    body = (detail or REASONS.get(status, b"Error")) + b"\n"
    return response_head(status, _error_headers(body, extra)) + body


def denial_response(status: int, headers: RawHeaders, body: bytes) -> bytes:
    """A WebSocket denial: the app's response, framed by the server.

    The whole body is known, so the server sets an exact Content-Length
    (replacing any the app gave) and closes the connection afterwards.
    """
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Unknown"))]
    dated = True
    for name, value in headers:
        if name not in _FRAMING:
            parts += [name, b": ", value, b"\r\n"]
            dated = dated and name != b"date"  # the app's own Date wins
    parts.append(b"content-length: %d\r\nconnection: close\r\n" % len(body))
    if dated:
        parts += [b"date: ", _DATE.value, b"\r\n"]
    parts += [b"\r\n", body]
    return b"".join(parts)


class Canned:
    """A fixed error response: encoded once, its `Date` line renewed each second."""

    __slots__ = ("_after", "_before", "_date", "_encoded")

    def __init__(self, status: int, detail: bytes | None = None, extra: RawHeaders | None = None):
        body = (detail or REASONS.get(status, b"Error")) + b"\n"
        whole = response_head(status, _error_headers(body, extra))
        date_at = whole.rindex(b"date: ")
        self._before = whole[:date_at] + b"date: "
        self._after = b"\r\n\r\n" + body
        self._date = b""
        self._encoded = b""

    def __call__(self) -> bytes:
        date = _DATE.value
        if date is not self._date:
            self._date = date
            self._encoded = self._before + date + self._after
        return self._encoded


def asgi_headers(message: Mapping[str, Any]) -> RawHeaders:
    """The `headers` of an ASGI message: lowercase names, checked against splitting."""
    if not message.get("headers"):
        return []
    headers = []
    for raw_name, raw_value in message["headers"]:
        # bytes() refuses a str (TypeError), as ASGI's byte-string headers want.
        name, value = bytes(raw_name).lower(), bytes(raw_value)
        check_header(name, value)
        headers.append((name, value))
    return headers


def check_header(name: bytes, value: bytes) -> None:
    """Refuse header names and values that could split the response."""
    if not name or name.translate(None, TOKEN_CHARS) or value.translate(None, FIELD_CHARS):
        raise ValueError(f"invalid response header {name!r}: {value!r}")


def _error_headers(body: bytes, extra: RawHeaders | None) -> RawHeaders:
    return [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
        *(extra or []),
    ]


_DATE = _Date()
refresh_date()
VERSION_REFUSAL = Canned(426, b"Unsupported WebSocket version", [(b"sec-websocket-version", b"13")])
FORBIDDEN = Canned(403)
SERVER_ERROR = Canned(500)
OVERLOADED = Canned(503)
