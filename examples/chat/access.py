"""Who may open the chat's socket: a session token and the page's origin.

Sessions: ``POST /login`` with a name issues a token: the name and an expiry,
signed with the chat's key (HMAC-SHA256), so any process that has the key
verifies it without shared storage. With ``--workers N`` the login and the
socket may land on different workers: set ``CHAT_SECRET`` so that they all
have the same key. A browser gets the token as an ``HttpOnly`` cookie, which
it then sends on the WebSocket handshake by itself; other clients read it
from the JSON answer and send it as ``Authorization: Bearer`` or ``?token=``.
There are no passwords: anyone may take any name. What the example shows is
how a browser carries a token to a guarded socket, not an identity system.

Origins: a browser names the page that opens a socket in ``Origin``, so the
guard accepts the chat's own page and refuses pages of other sites
(cross-site WebSocket hijacking: they would ride on the user's cookie).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Sequence

from tinyws import HTTPError, Request
from tinyws.guards import Guard, allow_origins

# Set to a comma-separated list (``https://chat.example,http://10.0.0.5:8000``)
# when the page is reached under a name the server cannot know: a DNS name,
# a LAN address while bound to 0.0.0.0, a reverse proxy.
ORIGINS_VARIABLE = "CHAT_ORIGINS"
# The key that signs session tokens: the same in every process that serves the chat.
SECRET_VARIABLE = "CHAT_SECRET"
MAX_NAME = 32
SESSION_SECONDS = 12 * 3600

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_LOCAL = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})
_DEFAULT_PORT = {"http": 80, "https": 443}


class Sessions:
    """Tokens issued by ``POST /login``: a name and an expiry, signed.

    The key is ``CHAT_SECRET`` when set. Without it each process draws a
    random key: its tokens are refused by other processes, and after a
    restart a page that reconnects with its old cookie gets 4401, as it
    would with any wrong token.
    """

    def __init__(self, secret: str | None = None) -> None:
        secret = secret or os.environ.get(SECRET_VARIABLE) or secrets.token_urlsafe(32)
        self._key = secret.encode()

    def issue(self, name: str) -> str:
        nonce = secrets.token_urlsafe(6)  # one token per login, even within a second
        claims = json.dumps([name, int(time.time()) + SESSION_SECONDS, nonce]).encode()
        body = base64.urlsafe_b64encode(claims).decode().rstrip("=")
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> str | None:
        """The name behind ``token``; the guard denies 401 on ``None``."""
        body, _, signature = token.partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        name, expires, _ = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return name if isinstance(name, str) and expires > time.time() else None

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


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
