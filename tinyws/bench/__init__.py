"""``tinyws bench``: a WebSocket handshake benchmark client for any server."""
