"""Startup and shutdown, over ASGI lifespan events or, lacking them, lazily.

Startup: middleware ``process_startup`` (list order), ``on_startup``
handlers (registration order), then the ``lifespan=`` context manager is
entered; the dict it yields becomes the lifespan state. Shutdown undoes it
in reverse: the context manager exits, ``on_shutdown`` handlers run, then
``process_shutdown`` (reverse list order).

A server that sends no lifespan events (daphne) still gets the startup
hooks: they run before the first request. It can never get shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import anyio
from anyio.lowlevel import RunVar

from tinyws.concurrency import AsyncCallable
from tinyws.middleware import Chain
from tinyws.types import Message, Receive, Scope, Send

logger = logging.getLogger("tinyws")

LifespanContext = Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]

_LAZY_SCOPE: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
_LAZY_EVENT: Message = {"type": "lifespan.startup"}


class Lifespan:
    def __init__(self, app: object, chain: Chain, context: LifespanContext | None) -> None:
        self.app = app
        self.chain = chain
        self.context = context
        self.on_startup: list[AsyncCallable] = []
        self.on_shutdown: list[AsyncCallable] = []
        # Kept for servers that offer no lifespan ``state``: requests read it here.
        self.state: dict[str, Any] = {}
        self.started = False
        self._stack: contextlib.AsyncExitStack | None = None
        # One lock per event loop: an app may outlive a loop (test clients start one per
        # call) and a lock made on one loop, or on another backend, fails on the next.
        self._lock = RunVar[anyio.Lock](f"tinyws lazy startup {id(self)}")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Speak the ASGI lifespan protocol."""
        event = await receive()
        try:
            await self.startup(scope, event)
        except Exception as exc:
            logger.exception("startup failed")
            await send({"type": "lifespan.startup.failed", "message": _text(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        event = await receive()
        try:
            await self.shutdown(scope, event)
        except Exception as exc:  # each failing step was logged where it failed
            await send({"type": "lifespan.shutdown.failed", "message": _text(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    async def startup(self, scope: Scope, event: Message, *, lazy: bool = False) -> None:
        for hook in self.chain.startup:
            await hook(scope, event)
        for handler in self.on_startup:
            await handler()
        if self.context is not None and lazy:
            logger.warning(
                "the server sent no lifespan events: the lifespan= context manager is not "
                "entered (startup hooks ran before the first request)"
            )
        elif self.context is not None:
            await self._enter(scope, self.context)
        self.started = True

    async def _enter(self, scope: Scope, context: LifespanContext) -> None:
        stack = contextlib.AsyncExitStack()
        state = await stack.enter_async_context(context(self.app))
        if state is not None and not isinstance(state, dict):
            await stack.aclose()
            raise TypeError(f"lifespan must yield a dict or None, got {type(state).__name__}")
        self._stack = stack
        if state:
            self.state.update(state)
            if isinstance(scope.get("state"), dict):
                scope["state"].update(state)

    async def ensure_started(self) -> None:
        """Run startup once before the first request when no lifespan event came."""
        try:
            lock = self._lock.get()
        except LookupError:
            lock = anyio.Lock()
            self._lock.set(lock)
        async with lock:
            if not self.started:
                await self.startup(_LAZY_SCOPE, _LAZY_EVENT, lazy=True)

    async def shutdown(self, scope: Scope, event: Message) -> None:
        """Run every shutdown step even if one fails; the first failure is raised."""
        first: Exception | None = None
        steps: list[Callable[[], Any]] = []
        if self._stack is not None:
            steps.append(self._stack.aclose)
        steps.extend(self.on_shutdown)
        steps.extend(_bind(hook, scope, event) for hook in self.chain.shutdown)
        for step in steps:
            try:
                await step()
            except Exception as exc:
                logger.exception("shutdown step failed")
                first = first or exc
        self._stack = None
        self.started = False
        # What the context manager yielded is closed now: no later request may see it.
        self.state.clear()
        if first is not None:
            raise first


def _bind(hook: AsyncCallable, scope: Scope, event: Message) -> AsyncCallable:
    async def call() -> Any:
        return await hook(scope, event)

    return call


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


__all__ = ["Lifespan", "LifespanContext"]
