"""Sync or async is decided once, when a callable is registered."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

AsyncCallable = Callable[..., Awaitable[Any]]
# A callable and whether its result must be awaited. The handshake path calls
# hooks and guards this way: wrapping a plain function in a coroutine would
# cost a coroutine object and an await on every handshake.
Hook = tuple[Callable[..., Any], bool]


def is_async_callable(obj: object) -> bool:
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - instances with an async __call__
    return inspect.iscoroutinefunction(call)


def hook(fn: Callable[..., Any]) -> Hook:
    return fn, is_async_callable(fn)


def inline(fn: Callable[..., Any]) -> AsyncCallable:
    """Awaitable form of ``fn``; a plain function runs inline (it must be quick)."""
    if is_async_callable(fn):
        return fn

    async def call_inline(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return functools.wraps(fn)(call_inline)


def threaded(fn: Callable[..., Any]) -> AsyncCallable:
    """Awaitable form of ``fn``; a plain function runs in a worker thread."""
    if is_async_callable(fn):
        return fn

    async def call_in_thread(*args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    return functools.wraps(fn)(call_in_thread)


__all__ = ["AsyncCallable", "Hook", "hook", "inline", "is_async_callable", "threaded"]
