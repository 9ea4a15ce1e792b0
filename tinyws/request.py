"""``Request``: what middleware, guards and handlers know about a request.

The same type describes an HTTP request and a WebSocket handshake. It is a
lazy view over the ASGI scope: nothing is parsed until it is asked for,
because most handshakes only ever look at a header or two.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple
from urllib.parse import unquote

from tinyws.datastructures import Headers, Namespace, QueryParams
from tinyws.errors import ClientDisconnect, HTTPError
from tinyws.types import Receive, Scope


class Address(NamedTuple):
    host: str
    port: int


class Request:
    """An HTTP request or a WebSocket handshake, read from an ASGI scope."""

    # Slots, and parts made on first use rather than functools.cached_property:
    # a handshake builds one Request, and these costs are a visible share of it.
    __slots__ = (
        "_body",
        "_context",
        "_cookies",
        "_headers",
        "_query",
        "_state",
        "_url",
        "params",
        "receive",
        "scope",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.params: dict[str, Any] = {}
        self._state: dict[str, Any] | Namespace | None = state
        self._context: Namespace | None = None
        self._headers: Headers | None = None
        self._query: QueryParams | None = None
        self._cookies: dict[str, str] | None = None
        self._url: str | None = None
        self._body: bytes | None = None

    @property
    def context(self) -> Namespace:
        """Per-request data for middleware, guards and handlers (Falcon's ``req.context``)."""
        if self._context is None:
            self._context = Namespace()
        return self._context

    @property
    def state(self) -> Namespace:
        """The lifespan state."""
        # Servers that keep lifespan state hand each request a copy in the
        # scope; on the others the app passes the dict it kept itself.
        state = self._state
        if not isinstance(state, Namespace):
            state = self._state = Namespace(self.scope.get("state", state))
        return state

    @property
    def method(self) -> str:
        method: str = self.scope.get("method", "GET")
        return method

    @property
    def path(self) -> str:
        """The routed path: below the mount point ``root_path`` (SPEC section 3).

        ASGI servers put the root path in front of ``path`` (uvicorn, tinyws);
        others leave it out. Either way this is the part the app routes on.
        """
        scope = self.scope
        path: str = scope["path"]
        root: str | None = scope.get("root_path")
        if not root:
            return path
        if path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
            return path[len(root) :]
        return path

    @property
    def scheme(self) -> str:
        scheme: str = self.scope.get("scheme") or (
            "ws" if self.scope["type"] == "websocket" else "http"
        )
        return scheme

    @property
    def query_string(self) -> str:
        raw: bytes = self.scope.get("query_string", b"")
        return raw.decode("latin-1")

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.scope.get("headers", ()))
        return self._headers

    @property
    def url(self) -> str:
        if self._url is None:
            host = self.headers.get("host")
            if host is None:
                server = self.scope.get("server")
                host = f"{server[0]}:{server[1]}" if server else "localhost"
            path = self.scope.get("root_path", "") + self.path
            query = self.query_string
            self._url = f"{self.scheme}://{host}{path}" + (f"?{query}" if query else "")
        return self._url

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = self._parse_cookies()
        return self._cookies

    def _parse_cookies(self) -> dict[str, str]:
        cookies: dict[str, str] = {}
        for header in self.headers.getall("cookie"):
            for chunk in header.split(";"):
                name, sep, value = chunk.partition("=")
                name, value = name.strip(), value.strip()
                if not sep or not name:
                    continue
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                cookies.setdefault(name, unquote(value))
        return cookies

    @property
    def client(self) -> Address | None:
        client = self.scope.get("client")
        return Address(client[0], client[1]) if client else None

    @property
    def subprotocols(self) -> list[str]:
        subprotocols: list[str] = list(self.scope.get("subprotocols", ()))
        return subprotocols

    async def body(self) -> bytes:
        """The whole request body (read once, then cached)."""
        if self._body is None:
            if self.scope["type"] != "http":
                raise RuntimeError("a WebSocket handshake has no body to read")
            chunks: list[bytes] = []
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect("the client disconnected before sending the body")
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON; malformed JSON is the client's error (400)."""
        body = await self.body()
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, "Malformed JSON", str(exc)) from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


__all__ = ["Address", "Request"]
