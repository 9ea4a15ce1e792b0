"""Who may open the chat's socket: a session token and the page's origin.

Sessions: ``POST /login`` with a name issues a random token, kept in memory
beside that name. A browser gets it as an ``HttpOnly`` cookie, which it then
sends on the WebSocket handshake by itself; other clients read it from the
JSON answer and send it as ``Authorization: Bearer`` or ``?token=``. There are
no passwords: anyone may take any name. What the example shows is how a
browser carries a token to a guarded socket, not an identity system.

Origins: a browser names the page that opens a socket in ``Origin``, so the
guard accepts the chat's own page and refuses pages of other sites
(cross-site WebSocket hijacking: they would ride on the user's cookie).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

from tinyws import HTTPError, Request
from tinyws.guards import Guard, allow_origins

# Set to a comma-separated list (``https://chat.example,http://10.0.0.5:8000``)
# when the page is reached under a name the server cannot know: a DNS name,
# a LAN address while bound to 0.0.0.0, a reverse proxy.
ORIGINS_VARIABLE = "CHAT_ORIGINS"
MAX_NAME = 32
MAX_SESSIONS = 10_000

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_LOCAL = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})
_DEFAULT_PORT = {"http": 80, "https": 443}


class Sessions:
    """Tokens issued by ``POST /login``, each standing for a name, in memory.

    They vanish when the server restarts: a page that then reconnects with
    its old cookie is refused with 4401, as it would be with any wrong token.
    """

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def issue(self, name: str) -> str:
        if len(self._names) >= MAX_SESSIONS:  # forget the oldest, so memory stays bounded
            del self._names[next(iter(self._names))]
        token = secrets.token_urlsafe(18)
        self._names[token] = name
        return token

    def verify(self, token: str) -> str | None:
        """The name behind ``token``; the guard denies 401 on ``None``."""
        return self._names.get(token)


def checked_name(name: object) -> str:
    """A display name: 1 to 32 printable characters once trimmed, else 400."""
    if isinstance(name, str):
        name = name.strip()
        if 0 < len(name) <= MAX_NAME and name.isprintable():
            return name
    raise HTTPError(400, "Bad name", f"a name is 1 to {MAX_NAME} printable characters")


def origin_guard(origins: Sequence[str] | None = None) -> Guard:
    """``allow_origins`` for the listed origins, or else the address actually served.

    With no list (neither argument nor ``CHAT_ORIGINS``) the allowed origins
    follow the address the server listens on, read from the ASGI scope's
    ``server`` (the socket, not the client's ``Host`` header): served on
    127.0.0.1:8000 they are ``http://127.0.0.1:8000`` and
    ``http://localhost:8000``; on another port or address, that one.
    """
    if origins is None:
        listed = os.environ.get(ORIGINS_VARIABLE, "")
        origins = [origin.strip() for origin in listed.split(",") if origin.strip()]
    if origins:
        return allow_origins(origins)
    guards: dict[tuple[str, object], Guard] = {}  # one per listening address: a handful

    def same_server(req: Request) -> None:
        key = (req.scheme, req.scope.get("server"))
        guard = guards.get(key)
        if guard is None:
            guard = guards[key] = allow_origins(served_origins(req.scheme, req.scope.get("server")))
        guard(req)

    return same_server


def served_origins(scheme: str, server: object) -> list[str]:
    """The origins of pages served from ``server`` (an ASGI ``(host, port)`` pair)."""
    page_scheme = "https" if scheme in ("wss", "https") else "http"
    if not isinstance(server, tuple | list) or len(server) != 2:
        return []  # the server does not say where it listens: only Origin-less clients pass
    host, port = str(server[0]), server[1]
    if not isinstance(port, int):
        return []  # a Unix socket: its pages come through a proxy that CHAT_ORIGINS names
    # Bound to loopback or to every address: a browser on this machine uses a loopback name.
    names = _LOOPBACK if host in _LOCAL else (f"[{host}]" if ":" in host else host,)
    suffix = "" if port == _DEFAULT_PORT[page_scheme] else f":{port}"
    return [f"{page_scheme}://{name}{suffix}" for name in names]
