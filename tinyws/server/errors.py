"""Exceptions the server raises into applications and callers."""

from __future__ import annotations


class ProtocolMisuse(RuntimeError):
    """Raised when the app sends an ASGI message the connection's state does not allow."""


class ClientDisconnected(OSError):
    """Raised by `send()` when the client has gone away (ASGI spec: an OSError)."""


class StartupFailed(RuntimeError):
    """Raised when the app's lifespan startup fails; the message is the app's."""
