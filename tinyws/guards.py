"""Guards: callables that decide whether a handshake may reach its handler.

A guard is called as ``guard(req)`` and answers with its return value:
``None`` or ``True`` lets the handshake go on, ``False`` denies it with 403,
a ``Response`` denies it with exactly that response, and an ``HTTPError``
raised denies it with that status. Anything else is a programming error.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from tinyws.concurrency import Hook, hook, inline
from tinyws.errors import HTTPError
from tinyws.request import Request
from tinyws.response import Response

Guard = Callable[[Request], Any]


# What a guard's ``False`` stands for; never raised, so it can be shared.
FORBIDDEN = HTTPError(403)


def resolve_guards(guard: Guard | Sequence[Guard] | None) -> tuple[Hook, ...]:
    if guard is None:
        return ()
    if callable(guard):
        guards = [guard]
    elif isinstance(guard, Iterable) and not isinstance(guard, str | bytes):
        guards = list(guard)
    else:
        raise TypeError(f"a guard must be callable (or guard= a list of them), got {guard!r}")
    for item in guards:
        if not callable(item):
            raise TypeError(f"a guard must be callable, got {item!r}")
    return tuple(hook(item) for item in guards)


def refusal(guard: Callable[..., Any], verdict: object) -> HTTPError | Response:
    """What a guard's answer other than ``None`` or ``True`` refuses the handshake with.

    ``False`` is returned as a refusal rather than raised: a denied handshake
    is the common case on a guarded endpoint, and raising costs more than the
    rest of the refusal.
    """
    if verdict is False:
        return FORBIDDEN
    if isinstance(verdict, Response):
        return verdict
    name = getattr(guard, "__qualname__", guard)
    if inspect.iscoroutine(verdict):
        verdict.close()  # never awaited: say why instead of a "never awaited" warning
        raise TypeError(f"guard {name!r} returned a coroutine; declare the guard itself async def")
    raise TypeError(
        f"guard {name!r} returned {verdict!r}; a guard returns None, True, False or a Response"
    )


def allow_origins(origins: Iterable[str]) -> Guard:
    """Deny 403 when the handshake's ``Origin`` header is present and not listed.

    This is the defence against cross-site WebSocket hijacking: a browser
    always sends ``Origin``, so a page from another site cannot open the
    socket with the user's cookies. No ``Origin`` means a non-browser client,
    which passes. Origins are exact (``"https://app.example"``), compared
    case-insensitively, without wildcards.
    """
    listed = [origins] if isinstance(origins, str) else list(origins)
    allowed = frozenset(origin.lower() for origin in listed)

    def origin_allowed(req: Request) -> None:
        origin = req.headers.get("origin")
        if origin is not None and origin.lower() not in allowed:
            raise HTTPError(403, "Forbidden", f"origin {origin!r} is not allowed")

    return origin_allowed


def bearer_token(
    verify: Callable[[str], Any] | Callable[[str], Awaitable[Any]],
    *,
    query: str | None = None,
    cookie: str | None = None,
) -> Guard:
    """Deny 401 unless the handshake's bearer token passes ``verify(token)``.

    The token is read from ``Authorization: Bearer <token>``. Browsers cannot
    set headers on a WebSocket, so ``query="token"`` and ``cookie="session"``
    also take it from that query parameter or cookie, but only when there is
    no ``Authorization`` header: a header that is present always wins, even a
    malformed one, so a client never gets a different answer by adding a
    second credential. ``verify`` may be sync or async; a truthy result is
    stored as ``req.context.user`` for the handler.
    """
    check = inline(verify)
    challenge = {"WWW-Authenticate": "Bearer"}

    def token_of(req: Request) -> str:
        header = req.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
        if query is not None and req.query.get(query):
            return req.query[query]
        if cookie is not None:
            return req.cookies.get(cookie, "")
        return ""

    async def token_valid(req: Request) -> None:
        token = token_of(req)
        if not token:
            raise HTTPError(401, "Unauthorized", "a bearer token is required", challenge)
        user = await check(token)
        if inspect.isawaitable(user):
            # A plain function wrapping an async check (a lambda, a partial): a coroutine
            # object is truthy, so it must be awaited or every token would pass.
            user = await user
        if not user:
            raise HTTPError(401, "Unauthorized", "the bearer token is not valid", challenge)
        req.context.user = user

    return token_valid


__all__ = ["Guard", "allow_origins", "bearer_token", "refusal", "resolve_guards"]
