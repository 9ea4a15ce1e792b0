"""The built-in ASGI server: HTTP/1.1 and WebSocket on anyio + h11 + wsproto.

`serve(app)` blocks until SIGINT/SIGTERM; `Server(app, config).run()` runs
inside an anyio task group (tests, embedding). See docs/server.md.
"""

from tinyws.server.config import Config
from tinyws.server.server import Server, serve

__all__ = ["Config", "Server", "serve"]
