"""What a test sees of the app: HTTP responses, denials and WebSocket sessions."""

from __future__ import annotations

import contextlib
import json as jsonlib
from types import TracebackType
from typing import Any

from tinyws.datastructures import Headers
from tinyws.errors import WebSocketDisconnect, WebSocketStateError
from tinyws.testing.app_runner import WebSocketTask
from tinyws.types import Message


class _Reply:
    """Status, headers and body as a client receives them."""

    status: int
    headers: Headers
    body: bytes

    @property
    def status_code(self) -> int:
        """The same as ``status``, under the name Starlette users know."""
        return self.status

    @property
    def text(self) -> str:
        content_type = self.headers.get("content-type", "")
        _, found, charset = content_type.partition("charset=")
        return self.body.decode(charset.split(";")[0].strip().strip('"') if found else "utf-8")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


class TestResponse(_Reply):
    """An HTTP response: ``status``, ``headers`` (case-insensitive), ``body``, ``text``."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<TestResponse {self.status}>"


class WebSocketDenied(_Reply, Exception):
    """Raised by ``websocket_connect`` when the server refused the handshake.

    Carries the HTTP response the client received: ``status``, ``headers``,
    ``body``, ``text``, ``json()``. There is no close code: none reaches a
    client whose handshake was refused.
    """

    def __init__(self, status: int, headers: Headers | None = None, body: bytes = b"") -> None:
        self.status = status
        self.headers = headers if headers is not None else Headers()
        self.body = body
        super().__init__(f"WebSocket handshake denied with HTTP {status}")


def internal_error() -> tuple[int, Headers, bytes]:
    body = b"Internal Server Error"
    headers = [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body)))]
    return 500, Headers.from_pairs(headers), body


class WebSocketTestSession:
    """An accepted WebSocket; a context manager that closes the connection on exit.

    ``subprotocol`` and ``headers`` are what the app's ``websocket.accept`` carried.
    """

    __test__ = False

    def __init__(
        self, task: WebSocketTask, accept: Message, raise_errors: bool, stack: contextlib.ExitStack
    ) -> None:
        self.subprotocol: str | None = accept.get("subprotocol")
        self.headers = Headers((bytes(k), bytes(v)) for k, v in accept.get("headers", []))
        self._task = task
        self._raise_errors = raise_errors
        self._stack = stack
        self._closed_with: tuple[int, str] | None = None  # the app's close code and reason

    def __enter__(self) -> WebSocketTestSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._disconnect(1000, "")
        # An error in the test body wins; otherwise report what the app did wrong.
        if exc_type is None:
            self._raise_app_error()

    def send_text(self, data: str) -> None:
        self._send({"type": "websocket.receive", "text": data})

    def send_bytes(self, data: bytes) -> None:
        self._send({"type": "websocket.receive", "bytes": data})

    def send_json(self, data: Any) -> None:
        self.send_text(jsonlib.dumps(data, separators=(",", ":")))

    def receive(self) -> str | bytes:
        """The app's next message; ``WebSocketDisconnect`` once the app has closed."""
        self._check_open()
        if self._closed_with is None:
            message = self._task.get()
            if message is not None and message["type"] == "websocket.send":
                text = message.get("text")
                return text if text is not None else bytes(message["bytes"])
            self._closed_with = self._close_of(message)
        raise WebSocketDisconnect(*self._closed_with)

    def receive_text(self) -> str:
        data = self.receive()
        if not isinstance(data, str):
            raise TypeError(f"expected a text message, the app sent bytes: {data[:40]!r}")
        return data

    def receive_bytes(self) -> bytes:
        data = self.receive()
        if not isinstance(data, bytes):
            raise TypeError(f"expected a bytes message, the app sent text: {data[:40]!r}")
        return data

    def receive_json(self) -> Any:
        return jsonlib.loads(self.receive())

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client's side and wait for the app to return.

        The app receives ``websocket.disconnect`` with ``code`` and ``reason``;
        an exception the app raised is raised here, as on every session call.
        """
        self._disconnect(code, reason)
        self._raise_app_error()

    def _disconnect(self, code: int, reason: str) -> None:
        if self._task.client_closed:
            return
        self._task.close_from_client(code, reason)
        try:
            self._task.finish()
        finally:
            self._stack.close()

    def _check_open(self) -> None:
        self._raise_app_error()
        if self._task.client_closed:
            raise WebSocketStateError("the test closed this WebSocket; it cannot be used any more")

    def _send(self, message: Message) -> None:
        self._check_open()
        self._task.put(message)

    def _close_of(self, message: Message | None) -> tuple[int, str]:
        if message is None:  # the app returned or raised without closing
            self._raise_app_error()
            return (1011 if self._task.exception is not None else 1000), ""
        return message.get("code") or 1000, message.get("reason") or ""

    def _raise_app_error(self) -> None:
        error = self._task.take_error(self._raise_errors)
        if error is not None:
            raise error


__all__ = ["TestResponse", "WebSocketDenied", "WebSocketTestSession", "internal_error"]
