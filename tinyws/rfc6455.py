"""Facts of the WebSocket wire (RFC 6455) that the server and the bench client share."""

from __future__ import annotations

import binascii
import hashlib

#: The GUID a server appends to the client's key (RFC 6455 §1.3).
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: bytes) -> bytes:
    """The `Sec-WebSocket-Accept` value answering `Sec-WebSocket-Key: key`."""
    digest = hashlib.sha1(key + GUID, usedforsecurity=False).digest()
    return binascii.b2a_base64(digest, newline=False)
