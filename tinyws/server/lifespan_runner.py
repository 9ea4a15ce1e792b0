"""The ASGI lifespan protocol, as the server side of one long-lived app call.

The app's lifespan coroutine runs in its own task for the whole life of the
server. `startup()` waits until the app answers `lifespan.startup`; the
server accepts connections only after that. `shutdown()` sends
`lifespan.shutdown` once the connections are gone.

Modes: "on" needs the app to speak lifespan (anything else is a failed
startup), "off" never calls the app with a lifespan scope, and "auto" treats
an app that raises (or returns) before answering startup as one that simply
does not support lifespan.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from tinyws.errors import LifespanError
from tinyws.types import ASGIApp, Message

logger = logging.getLogger("tinyws.server")


class LifespanRunner:
    """Drives the app's lifespan scope; `state` is shared with every request scope."""

    def __init__(self, app: ASGIApp, mode: str, shutdown_timeout: float = 10.0) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = mode != "off"
        self.failure: str | None = None
        self._timeout = shutdown_timeout
        self._started = anyio.Event()
        self._stop = anyio.Event()
        self._stopped = anyio.Event()
        self._asked_startup = False
        self._answered_startup = False

    async def main(self) -> None:
        """The lifespan task: call the app once with the lifespan scope."""
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except Exception as exc:
            if self._answered_startup:
                logger.exception("lifespan: the app raised after startup")
            elif self.mode == "auto":
                self.supported = False
                logger.info("lifespan: not supported by the app (%s)", type(exc).__name__)
            else:
                logger.exception("lifespan: the app raised during startup")
                self.failure = f"{type(exc).__name__}: {exc}"
        else:
            if not self._answered_startup:
                self._no_answer()
        finally:
            self._started.set()
            self._stopped.set()

    def _no_answer(self) -> None:
        if self.mode == "auto":
            self.supported = False
            logger.info("lifespan: the app returned without answering startup")
        else:
            self.failure = "the app returned without answering lifespan.startup"

    async def startup(self) -> None:
        """Wait for the app's startup; raise `LifespanError` if it failed."""
        if self.mode == "off":
            return
        await self._started.wait()
        if self.failure is not None:
            raise LifespanError(self.failure)

    async def shutdown(self) -> None:
        """Ask the app to shut down and wait (bounded) for its answer."""
        if not self.supported or self.failure is not None:
            return
        self._stop.set()
        with anyio.move_on_after(self._timeout):
            await self._stopped.wait()

    async def _receive(self) -> Message:
        if not self._asked_startup:
            self._asked_startup = True
            return {"type": "lifespan.startup"}
        await self._stop.wait()
        return {"type": "lifespan.shutdown"}

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            self._answered_startup = True
            if kind == "lifespan.startup.failed":
                self.failure = str(message.get("message", "")) or "startup failed"
                logger.error("lifespan: startup failed: %s", self.failure)
            self._started.set()
        elif kind == "lifespan.shutdown.failed":
            logger.error("lifespan: shutdown failed: %s", message.get("message", ""))
            self._stopped.set()
        elif kind == "lifespan.shutdown.complete":
            self._stopped.set()
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")
