"""How a refusal reaches the client.

Before ``accept()`` a refusal is a *denial*. In ``"http"`` mode it is a real
HTTP response sent through the ASGI "websocket.http.response" extension; a
server that does not list the extension only understands ``websocket.close``,
which it answers with a bare 403. In ``"close"`` mode the handshake is
accepted and then closed with ``4000 + status``: the only part of a refusal
that a browser's WebSocket API can read. ``"auto"`` picks ``"close"`` for
browsers, recognised by their ``Origin`` header.
"""

from __future__ import annotations

import functools
from typing import Literal

from tinyws.errors import HTTPError, reason_phrase
from tinyws.response import NO_BODY, Response

DenialMode = Literal["http", "close", "auto"]
MODES = ("http", "close", "auto")
EXTENSION = "websocket.http.response"
MAX_REASON = 123  # a close frame's payload is at most 125 bytes, two of them the code


def check_mode(mode: object) -> DenialMode:
    if mode not in MODES:
        raise ValueError(f"denial must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return mode  # type: ignore[return-value]


def error_response(exc: HTTPError) -> Response:
    """The JSON response an ``HTTPError`` stands for (``description`` only when given)."""
    data = {"title": exc.title}
    if exc.description is not None:
        data["description"] = exc.description
    return Response.json(data, exc.status, exc.headers)


def error_denial(exc: HTTPError) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body ``error_response(exc)`` is sent with as a denial.

    Refusals without extra headers are few and repeat on every refused
    handshake (a guard's 403, a 404), so their bytes are made once.
    """
    if exc.headers is None:
        return _plain_denial(exc.status, exc.title, exc.description)
    return _encoded(error_response(exc))


@functools.lru_cache(maxsize=256)
def _plain_denial(
    status: int, title: str, description: str | None
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    return _encoded(error_response(HTTPError(status, title, description)))


def _encoded(response: Response) -> tuple[list[tuple[bytes, bytes]], bytes]:
    return response.raw_headers(), b"" if response.status in NO_BODY else response.body


def internal_error() -> Response:
    """What a crash looks like on the wire: nothing about the crash itself."""
    return Response.json({"title": "Internal Server Error"}, 500)


def close_code(status: int) -> int:
    return 4000 + status


def close_reason(text: str) -> str:
    """``text`` cut to 123 bytes of UTF-8 without splitting a character.

    A lone surrogate cannot be sent as UTF-8; it becomes ``?`` rather than
    stopping the close.
    """
    data = text.encode("utf-8", "replace")
    if len(data) <= MAX_REASON:
        return data.decode()
    return data[:MAX_REASON].decode("utf-8", "ignore")


def denial_reason(response: Response) -> str:
    return reason_phrase(response.status)


__all__ = [
    "EXTENSION",
    "MODES",
    "DenialMode",
    "check_mode",
    "close_code",
    "close_reason",
    "denial_reason",
    "error_denial",
    "error_response",
    "internal_error",
]
