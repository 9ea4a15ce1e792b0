"""Every exception tinyws raises on purpose, in one flat module.

Errors carry their reply: an ``HTTPError`` knows the status, headers and body
it turns into, whether that reply is an HTTP response, a handshake denial or,
after ``accept()``, a close frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]


def reason_phrase(status: int) -> str:
    """The standard phrase for ``status``, or ``""`` for an unregistered code."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def check_status(status: object) -> None:
    """Refuse a status that cannot be a final response (1xx) or is no status at all."""
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ValueError(f"status must be an int in 200..599, got {status!r}")


class HTTPError(Exception):
    """Raised to refuse a request or handshake with an HTTP status.

    Before ``accept()`` it becomes a response (or denial) with a JSON body
    carrying ``title`` and ``description``; after ``accept()`` it closes the
    WebSocket with code ``4000 + status`` and the title as reason.
    """

    def __init__(
        self,
        status: int,
        title: str | None = None,
        description: str | None = None,
        headers: HeadersLike | None = None,
    ) -> None:
        check_status(status)
        self.status = status
        self.title = title if title is not None else (reason_phrase(status) or str(status))
        self.description = description
        self.headers = headers
        super().__init__(f"{status} {self.title}")


class WebSocketDisconnect(ConnectionError):
    """Raised by ``receive*()`` when the peer has closed the WebSocket.

    ``code`` is the close code the peer sent (1005 when it sent none) and
    ``reason`` its close reason.
    """

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))


class ClientDisconnect(ConnectionError):
    """Raised when the client has gone away before the app was done with it.

    ``await req.body()`` raises it when the body was cut short; servers (the
    built-in one and the test client) raise it from the ASGI ``send`` once the
    client is gone, which ASGI asks to be an ``OSError``.
    """


class WebSocketStateError(RuntimeError):
    """Raised when a WebSocket method is called in a state that forbids it.

    For example ``send()`` before ``accept()``, ``accept()`` twice, or
    ``receive()`` after the connection closed; the message names the state
    the call expected.
    """


class LifespanError(RuntimeError):
    """Raised when the app's lifespan startup or shutdown failed; the message is the app's."""


class ASGIProtocolError(RuntimeError):
    """Raised at the app's ``send`` when it sends a message the connection's state forbids."""


class BroadcastError(ConnectionError):
    """Raised when the hub cannot reach its backend.

    ``async with hub`` raises it when Redis cannot be reached at start-up (the
    message names the URL, password hidden), and ``publish()`` raises it while
    the connection to Redis is down.
    """


class SlowSubscriber(Exception):
    """Raised from a subscription's iteration once it fell ``max_queue`` messages behind.

    The hub dropped the subscription at that moment and freed its queue:
    publishers and the other subscribers never wait for a slow one.
    """


__all__ = [
    "ASGIProtocolError",
    "BroadcastError",
    "ClientDisconnect",
    "HTTPError",
    "LifespanError",
    "SlowSubscriber",
    "WebSocketDisconnect",
    "WebSocketStateError",
    "check_status",
    "reason_phrase",
]
