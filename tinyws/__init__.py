"""tinyws: a small ASGI framework for WebSocket-first services.

Guarded handshakes whose refusals are real HTTP responses, Falcon-style
middleware, lifespan events, a test client, a built-in server and a
handshake benchmark.
"""

from tinyws.app import App
from tinyws.errors import HTTPError, WebSocketDisconnect, WebSocketStateError
from tinyws.request import Request
from tinyws.response import Response
from tinyws.websocket import WebSocket

__version__ = "0.1.0"

__all__ = [
    "App",
    "HTTPError",
    "Request",
    "Response",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketStateError",
    "__version__",
]
