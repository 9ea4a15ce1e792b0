"""The TLS side of one connection's I/O (a base of `WebSocketLink`).

On a TLS port every byte from the socket passes through the connection's
`TLSLayer` (`tls.py`) before the core sees it, and every byte of the core's
through it before the socket does. While the TLS handshake runs the core
hears nothing at all, so the core's head deadline bounds the handshake and
the first request head together. A failed handshake is one log line, never a
traceback, and the end of the connection.
"""

from __future__ import annotations

import logging

from tinyws.server.connection import ServerConnection
from tinyws.server.tls import TLSLayer, TLSState

logger = logging.getLogger("tinyws.server")


class TLSLink:
    """`feed` (socket → core) and `queue_write` (core → socket), through TLS
    when the connection has it; `write_raw` is the plain socket write."""

    __slots__ = ()
    tls: TLSLayer | None
    core: ServerConnection
    broken: bool

    def write_raw(self, data: bytes) -> None:
        raise NotImplementedError  # WebSocketLink's

    def queue_write(self, data: bytes) -> None:
        """Send the core's bytes (encrypted on a TLS port)."""
        tls = self.tls
        if tls is not None:
            if not tls.established:
                return  # nothing of the core's goes out outside a TLS session
            tls.send(data)
            data = tls.data_to_send()
        self.write_raw(data)

    def feed(self, data: bytes) -> None:
        """Bytes from the socket (b"": its end) into the core."""
        tls = self.tls
        if tls is None:
            self.core.receive_data(data)
            return
        handshaking = not tls.established
        plain = tls.receive(data)
        out = tls.data_to_send()
        if out:
            self.write_raw(out)  # handshake records, session tickets, an alert
        if tls.failure is not None:
            if handshaking and not self.broken:  # broken: aborted, and said why
                logger.info("%s - TLS handshake failed: %s", address(self.core), tls.reason)
            self.core.receive_data(b"")
            return
        if plain:
            self.core.receive_data(plain)
        if tls.state is TLSState.CLOSED:
            self.core.receive_data(b"")

    def end_tls(self) -> None:
        """Queue our close_notify before the TCP end (on a TLS port)."""
        if self.tls is not None:
            self.tls.close()
            out = self.tls.data_to_send()
            if out:
                self.write_raw(out)


def address(core: ServerConnection) -> str:
    """The client's address for a log line."""
    return f"{core.client[0]}:{core.client[1]}" if core.client else "-"
