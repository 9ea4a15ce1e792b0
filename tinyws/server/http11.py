"""One HTTP/1.1 request/response cycle: h11 events in, ASGI messages out.

h11 does the framing (Content-Length, chunked, keep-alive rules, 100-continue
bookkeeping); this module only translates. The response head is held back
until the first body message: when that message is the whole body, the
response gets a Content-Length instead of chunked framing.
"""

from __future__ import annotations

import h11

from tinyws.errors import ASGIProtocolError, ClientDisconnect
from tinyws.server.responses import REASONS, RawHeaders, asgi_headers, http_date
from tinyws.types import Message

_DISCONNECT: Message = {"type": "http.disconnect"}


def status_allows_body(status: int) -> bool:
    return status not in (204, 304)


class HTTPCycle:
    """The request body going in and the response coming out, for one request."""

    __slots__ = (
        "_h11",
        "_head_only",
        "_max_body",
        "_pending",
        "body_seen",
        "disconnected",
        "done",
        "malformed",
        "started",
        "status",
        "too_large",
    )

    def __init__(self, conn: h11.Connection, method: bytes, max_body: int | None) -> None:
        self._h11 = conn
        self._head_only = method == b"HEAD"
        self._max_body = max_body
        self._pending: tuple[int, RawHeaders] | None = None
        self.body_seen = 0
        self.status = 0
        self.started = False  # http.response.start received from the app
        self.done = False  # the whole response has been produced
        self.too_large = False
        self.malformed = False  # the body's framing was broken (or the client left mid-body)
        self.disconnected = False

    # -- request body ---------------------------------------------------

    def receive(self) -> tuple[Message | None, bytes]:
        """Next ASGI message for the app, or None when more bytes are needed.

        Also returns bytes to write first (an interim 100 Continue).
        """
        if self.disconnected or self.done:
            return _DISCONNECT, b""
        out = b""
        if self._h11.they_are_waiting_for_100_continue:
            out = self._h11.send(h11.InformationalResponse(status_code=100, headers=[]))
        if self._h11.their_state is not h11.SEND_BODY:
            return None, out  # body complete: wait for a disconnect
        try:
            event = self._h11.next_event()
        except h11.RemoteProtocolError:  # bad chunk framing, or EOF mid-body
            self.malformed = True
            event = h11.ConnectionClosed()
        if event is h11.NEED_DATA:
            return self._stalled(), out
        if isinstance(event, h11.Data):
            self.body_seen += len(event.data)
            if self._max_body is not None and self.body_seen > self._max_body:
                self.too_large = self.disconnected = True
                return _DISCONNECT, out
            return {"type": "http.request", "body": bytes(event.data), "more_body": True}, out
        if isinstance(event, h11.EndOfMessage):
            return {"type": "http.request", "body": b"", "more_body": False}, out
        # ConnectionClosed or PAUSED before the end of the body.
        self.disconnected = True
        return _DISCONNECT, out

    def _stalled(self) -> Message | None:
        """h11 waits for more of a chunked body: refuse at once what can never
        become valid (a bare LF where a chunk line must end in CRLF, a chunk
        size over 2**63) or over the limit, instead of waiting for bytes that
        will not fix it."""
        pending = self._h11.trailing_data[0]
        if b"\n" in pending and any(not line.endswith(b"\r") for line in pending.split(b"\n")[:-1]):
            self.malformed = self.disconnected = True
            return _DISCONNECT
        declared = getattr(getattr(self._h11, "_reader", None), "_bytes_in_chunk", 0)
        if isinstance(declared, int) and declared:
            if declared >= 1 << 63:
                self.malformed = self.disconnected = True
                return _DISCONNECT
            if self._max_body is not None and self.body_seen + declared > self._max_body:
                self.too_large = self.disconnected = True
                return _DISCONNECT
        return None

    def skip_unread_body(self) -> None:
        """Consume a request body the app did not read, if it is all here already.

        Apps often answer a GET without calling receive(); the connection can
        still be reused once h11 has seen the (usually empty) body end.
        """
        while self._h11.their_state is h11.SEND_BODY:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                return
            if not isinstance(event, h11.Data | h11.EndOfMessage):
                return

    # -- response ---------------------------------------------------------

    def send(self, message: Message) -> bytes:
        """Bytes to write for one ASGI message from the app."""
        kind = message["type"]
        if kind == "http.response.start" and not self.started:
            # Checked before anything is marked started: an invalid start
            # raises in the app, and the server can still answer 500.
            status = message["status"]
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise ValueError(f"invalid response status {status!r}")
            headers = asgi_headers(message)
            self.started = True
            self.status = status
            self._pending = (status, headers)
            return b""
        if kind == "http.response.body" and self.started and not self.done:
            if self.disconnected:
                raise ClientDisconnect("the client closed the connection")
            return self._body(bytes(message.get("body", b"")), bool(message.get("more_body")))
        expected = "http.response.body" if self.started else "http.response.start"
        if self.done:
            expected = "nothing (the response is complete)"
        raise ASGIProtocolError(f"expected {expected}, got {kind!r}")

    def _body(self, body: bytes, more: bool) -> bytes:
        out = b""
        if self._pending is not None:
            status, headers = self._pending
            self._pending = None
            bodiless = status in (204, 304)  # these never carry a length or a body
            if (
                not more
                and not bodiless
                and not any(n in (b"content-length", b"transfer-encoding") for n, _ in headers)
            ):
                headers.append((b"content-length", b"%d" % len(body)))
            headers.append((b"date", http_date()))
            out = self._h11.send(
                h11.Response(status_code=status, headers=headers, reason=REASONS.get(status, b""))
            )
        if body and not self._head_only and status_allows_body(self.status):
            out += self._h11.send(h11.Data(data=body))
        if not more:
            self.done = True
            out += self._h11.send(h11.EndOfMessage())
        return out

    @property
    def head_sent(self) -> bool:
        """True once response bytes exist: after that, no error response can replace it."""
        return self.started and self._pending is None

    def error_response(self, status: int) -> bytes:
        """A whole error response, when the app has not started one."""
        body = REASONS.get(status, b"Error") + b"\n"
        self._pending = (
            status,
            [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        )
        self.started = True
        self.status = status
        return self._body(body, more=False)
