"""The in-process test client (see ``client.py`` for how it plays server and client)."""

from tinyws.errors import ASGIProtocolError
from tinyws.testing.client import TestClient
from tinyws.testing.session import TestResponse, WebSocketDenied, WebSocketTestSession

__all__ = [
    "ASGIProtocolError",
    "TestClient",
    "TestResponse",
    "WebSocketDenied",
    "WebSocketTestSession",
]
