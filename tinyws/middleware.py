"""The middleware chain: Falcon's ``process_*`` hooks, looked up once.

Each middleware may define any of the hooks below, sync or async. At App
creation every hook is fetched and made awaitable, so a request walks tuples
of ready callables and never asks an object what it can do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tinyws.concurrency import AsyncCallable, Hook, hook, inline

HOOKS = (
    "process_startup",
    "process_shutdown",
    "process_request",
    "process_resource",
    "process_response",
    "process_request_ws",
    "process_resource_ws",
    "process_response_ws",
)

Positioned = tuple[tuple[int, AsyncCallable], ...]
# The handshake path calls hooks plainly (see ``concurrency.Hook``), with positions.
PositionedHooks = tuple[tuple[int, Callable[..., Any], bool], ...]


class Chain:
    """The hooks of a middleware list, in the order each is called.

    Hooks that run "for every middleware the request reached" keep the
    position of their middleware in the list: ``process_response`` and
    ``process_response_ws`` run only for middleware before the point where
    ``process_request``/``process_request_ws`` stopped.
    """

    def __init__(self, middleware: Sequence[object] = ()) -> None:
        for item in middleware:
            _check(item)
        self.size = len(middleware)
        self.startup = _hooks(middleware, "process_startup")
        self.shutdown = tuple(reversed(_hooks(middleware, "process_shutdown")))
        self.request: Positioned = _positioned(middleware, "process_request")
        self.resource = _hooks(middleware, "process_resource")
        self.response: Positioned = tuple(reversed(_positioned(middleware, "process_response")))
        self.request_ws = _plain_positioned(middleware, "process_request_ws")
        self.resource_ws = _plain(middleware, "process_resource_ws")
        self.response_ws = tuple(reversed(_plain_positioned(middleware, "process_response_ws")))


def _check(item: object) -> None:
    if isinstance(item, type):
        raise TypeError(f"middleware {item.__name__} is a class: pass an instance")
    present = [hook for hook in HOOKS if hasattr(item, hook)]
    if not present:
        raise TypeError(f"middleware {item!r} defines none of the hooks {', '.join(HOOKS)}")
    for name in present:
        if not callable(getattr(item, name)):
            raise TypeError(f"middleware {item!r} has a {name} that is not callable")


def _hooks(middleware: Sequence[object], name: str) -> tuple[AsyncCallable, ...]:
    return tuple(inline(getattr(m, name)) for m in middleware if hasattr(m, name))


def _plain(middleware: Sequence[object], name: str) -> tuple[Hook, ...]:
    return tuple(hook(getattr(m, name)) for m in middleware if hasattr(m, name))


def _plain_positioned(middleware: Sequence[object], name: str) -> PositionedHooks:
    return tuple((i, *hook(getattr(m, name))) for i, m in enumerate(middleware) if hasattr(m, name))


def _positioned(middleware: Sequence[object], name: str) -> Positioned:
    return tuple(
        (i, inline(getattr(m, name))) for i, m in enumerate(middleware) if hasattr(m, name)
    )


__all__ = ["HOOKS", "Chain"]
