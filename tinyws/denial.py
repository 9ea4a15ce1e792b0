"""How a refusal reaches the client: the one place that decides.

A handshake can be refused in many ways — a guard's ``False`` or
``Response``, an ``HTTPError`` from a hook, the router's 404, ``ws.deny()``,
``ws.close()`` before ``accept()``, a handler that returns without answering,
a crash — but it reaches the wire in only three, picked once per connection
from the denial mode and what the server offers (the connection's *way*):

``"http"``
    A real HTTP response, sent as ``websocket.http.response.start`` and one
    ``websocket.http.response.body`` (granian refuses a body in parts). Only
    when the server lists the "websocket.http.response" extension: daphne
    silently drops those messages and the client hangs.
``"fallback"``
    Mode ``"http"`` on a server without the extension: ``websocket.close``
    before accept, which every server answers with a bare 403.
``"close"``
    Accept, then close with ``4000 + status``: the only part of a refusal a
    browser's WebSocket API can read. Mode ``"auto"`` is ``"close"`` for
    browsers (recognised by their ``Origin`` header) and ``"http"`` otherwise.

After ``accept()`` there is no HTTP exchange left: every refusal is a close
frame (``4000 + status`` for an ``HTTPError``, 1011 for a crash, 1000 for a
handler that returns). Each function here sends the ASGI messages and returns
the ``Ending`` the client saw, which the WebSocket records as its state. The
ones that only pick a way (``refuse``, ``crash``, ``unanswered``, ``deny``) are
plain functions returning the awaitable of the one that sends: a coroutine
layer costs as much as a pipeline step.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Literal, cast

from tinyws.errors import HTTPError, reason_phrase
from tinyws.response import NO_BODY, Response
from tinyws.types import Message, Send

DenialMode = Literal["http", "close", "auto"]
Way = Literal["http", "close", "fallback"]
MODES = ("http", "close", "auto")
EXTENSION = "websocket.http.response"
MAX_REASON = 123  # a close frame's payload is at most 125 bytes, two of them the code
_ACCEPT = {"type": "websocket.accept"}
_FALLBACK = {"type": "websocket.close", "code": 1000, "reason": ""}


# What the client saw: the handshake's status, and the close code after a 101.
# A plain tuple: a NamedTuple costs a Python-level __new__ on every handshake.
Ending = tuple[int, int | None]


def check_mode(mode: object) -> DenialMode:
    if mode not in MODES:
        raise ValueError(f"denial must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return cast(DenialMode, mode)


def way_of(mode: DenialMode, extension: bool, browser: bool) -> Way:
    """How this connection's denials go out, from the mode and what the server offers."""
    if mode == "close" or (mode == "auto" and browser):
        return "close"
    return "http" if extension else "fallback"


# -- before accept(): denials ------------------------------------------------------


def deny(send: Send, way: Way, response: Response) -> Awaitable[Ending]:
    """Refuse with exactly ``response`` (``ws.deny()``, a guard's ``Response``)."""
    status = response.status
    body = b"" if status in NO_BODY else response.body
    return _deny(send, way, status, reason_phrase(status), response.raw_headers, body)


async def close_unaccepted(send: Send, way: Way, code: int, reason: str) -> Ending:
    """``ws.close()`` before ``accept()``: a 403 (as ASGI defines), or accept-then-close."""
    if way == "close":
        return await _accept_then_close(send, code, reason)
    await send({"type": "websocket.close", "code": code, "reason": close_reason(reason)})
    return 403, None


async def _deny(  # noqa: PLR0917 - positional: keywords cost on every refused handshake
    send: Send,
    way: Way,
    status: int,
    reason: str,
    headers: Callable[[], list[tuple[bytes, bytes]]],
    body: bytes,
) -> Ending:
    # ``headers`` is called only when a denial response is really sent.
    if way == "http":
        start = {"type": "websocket.http.response.start", "status": status, "headers": headers()}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": body})
        return status, None
    if way == "close":
        return await _accept_then_close(send, close_code(status), reason)
    await send(_FALLBACK)
    return 403, None


async def _accept_then_close(send: Send, code: int, reason: str) -> Ending:
    await send(_ACCEPT)
    await close_accepted(send, code, reason)
    return 101, code


def with_subprotocol(send: Send, subprotocol: str) -> Send:
    """``send``, with ``subprotocol`` chosen in the accept of a ``"close"``-way refusal.

    A browser that offered subprotocols fails a 101 that picks none (it sees
    1006, not the close code the refusal is for).
    """

    async def send_choosing(message: Message) -> None:
        if message["type"] == "websocket.accept":
            message = {**message, "subprotocol": subprotocol}
        await send(message)

    return send_choosing


def _no_headers() -> list[tuple[bytes, bytes]]:
    return []


# -- after accept(): close frames ----------------------------------------------------


async def close_accepted(send: Send, code: int, reason: str) -> None:
    await send({"type": "websocket.close", "code": code, "reason": close_reason(reason)})


async def close_quietly(send: Send, code: int, reason: str) -> Ending:
    """Close an accepted socket whose end the app did not choose; a gone peer is no error."""
    # try/except, not contextlib.suppress(): that builds an object per call.
    try:  # noqa: SIM105
        await send({"type": "websocket.close", "code": code, "reason": close_reason(reason)})
    except OSError:
        pass  # the client left first: the close is moot
    return 101, code


# -- the pipeline's endings: refusal, crash, a handler that returned ------------------


def refuse(
    send: Send, way: Way, accepted: bool, refusal: HTTPError | Response
) -> Awaitable[Ending]:
    """An ``HTTPError`` or a guard's ``Response``: a denial, or ``4000 + status`` after accept."""
    if accepted:
        reason = refusal.title if isinstance(refusal, HTTPError) else ""
        return close_quietly(send, close_code(refusal.status), reason)
    if isinstance(refusal, Response):
        return deny(send, way, refusal)
    if way != "http":  # the body would never be sent: don't build it
        return _deny(send, way, refusal.status, refusal.title, _no_headers, b"")
    headers, body = error_denial(refusal)
    return _deny(send, way, refusal.status, refusal.title, headers.copy, body)


def crash(send: Send, way: Way, accepted: bool) -> Awaitable[Ending]:
    """Nothing about the crash itself reaches the client: a plain 500, or 1011."""
    if accepted:
        return close_quietly(send, 1011, "")
    return deny(send, way, internal_error())


def unanswered(send: Send, way: Way, accepted: bool) -> Awaitable[Ending]:
    """The handler returned: deny 403 if it never answered, else close with 1000."""
    if accepted:
        return close_quietly(send, 1000, "")
    return refuse(send, way, False, FORBIDDEN)


# -- bytes ---------------------------------------------------------------------------


def error_response(exc: HTTPError) -> Response:
    """The JSON response an ``HTTPError`` stands for (``description`` only when given)."""
    data = {"title": exc.title}
    if exc.description is not None:
        data["description"] = exc.description
    return Response.json(data, exc.status, exc.headers)


def error_denial(exc: HTTPError) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body ``error_response(exc)`` is sent with as a denial.

    Refusals without extra headers are few and repeat on every refused
    handshake (a guard's 403, a 404), so their bytes are made once; callers
    send a copy of the headers, since a server may change the list it gets.
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


FORBIDDEN = HTTPError(403)
NOT_FOUND = HTTPError(404)

__all__ = [
    "EXTENSION",
    "FORBIDDEN",
    "MODES",
    "NOT_FOUND",
    "DenialMode",
    "Ending",
    "Way",
    "check_mode",
    "close_accepted",
    "close_code",
    "close_quietly",
    "close_reason",
    "close_unaccepted",
    "crash",
    "deny",
    "error_denial",
    "error_response",
    "internal_error",
    "refuse",
    "unanswered",
    "way_of",
    "with_subprotocol",
]
