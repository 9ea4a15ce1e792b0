"""The phases of one server connection and the only way to move between them.

In the style of h11's `_state.py`: the theory first, then one table, then
one function that checks a move against the table and makes it.

A connection is in exactly one `Phase`. It starts in IDLE, waiting for a
request head. A complete head moves it to

* HTTP - an ordinary request is with the app (h11 frames body and response),
  and back to IDLE when the cycle ends and the connection may be reused;
* HANDSHAKE - a valid WebSocket upgrade is with the app, nothing sent yet;
* CLOSED - the head was refused (400, 413, 426, 431, 505 ...): the refusal
  sits in the output and the socket is closed once it is written.

From HANDSHAKE, `websocket.accept` writes the 101 and moves to OPEN;
`websocket.http.response.start` moves to DENYING until the last body chunk;
`websocket.close` before accept is a 403 (as ASGI defines). Once the server
has sent its close frame the phase is CLOSING until the client answers; a
close frame from the client, a protocol failure (1002, 1007, 1009) or the
end of TCP go straight to CLOSED. CLOSED means: flush the output, then drop
the socket (gracefully when the client may still be sending).

    IDLE ──head──▶ HTTP ──cycle done, keep-alive──▶ IDLE
      │             └────────error / close──────────▶ CLOSED
      └──upgrade──▶ HANDSHAKE ──accept──▶ OPEN ──close sent──▶ CLOSING ──▶ CLOSED
                        │                   └──client close / failure──────▶ CLOSED
                        └──deny──▶ DENYING ──body done──▶ CLOSED

Every move is an `Event` looked up in `MOVES`; anything the table does not
list is a bug in the caller (or an app breaking the ASGI order) and raises
`ASGIProtocolError` naming the events that phase expects. ENDED is the one
event allowed in CLOSED: the end may be noticed more than once.
"""

from __future__ import annotations

import enum

from tinyws.errors import ASGIProtocolError


class Phase(enum.Enum):
    """Where one connection is; see the module docstring."""

    __hash__ = object.__hash__  # members are singletons: the C hash is right, and faster

    IDLE = "idle"
    HTTP = "http"
    HANDSHAKE = "handshake"
    DENYING = "denying"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Event(enum.Enum):
    """What moves a connection from one phase to the next."""

    __hash__ = object.__hash__

    REQUEST = "a plain HTTP request head"
    UPGRADE = "a WebSocket upgrade head"
    REUSE = "the HTTP cycle done, the connection kept alive"
    ACCEPT = "websocket.accept"
    DENY = "websocket.http.response.start"
    CLOSE_SENT = "the server's close frame"
    REFUSE = "a final response queued (refusal, denial, error)"
    ENDED = "the end of the connection"


MOVES: dict[Phase, dict[Event, Phase]] = {
    Phase.IDLE: {
        Event.REQUEST: Phase.HTTP,
        Event.UPGRADE: Phase.HANDSHAKE,
        Event.REFUSE: Phase.CLOSED,
        Event.ENDED: Phase.CLOSED,
    },
    Phase.HTTP: {Event.REUSE: Phase.IDLE, Event.ENDED: Phase.CLOSED},
    Phase.HANDSHAKE: {
        Event.ACCEPT: Phase.OPEN,
        Event.DENY: Phase.DENYING,
        Event.REFUSE: Phase.CLOSED,
        Event.ENDED: Phase.CLOSED,
    },
    Phase.DENYING: {Event.REFUSE: Phase.CLOSED, Event.ENDED: Phase.CLOSED},
    Phase.OPEN: {Event.CLOSE_SENT: Phase.CLOSING, Event.ENDED: Phase.CLOSED},
    Phase.CLOSING: {Event.ENDED: Phase.CLOSED},
    Phase.CLOSED: {Event.ENDED: Phase.CLOSED},
}


def advance(phase: Phase, event: Event) -> Phase:
    """The phase after `event` in `phase`; an illegal move raises ASGIProtocolError."""
    moves = MOVES[phase]
    after = moves.get(event)
    if after is None:
        expected = ", ".join(e.name for e in moves)
        raise ASGIProtocolError(
            f"{event.name} ({event.value}) is not allowed in phase {phase.name}; "
            f"expected {expected}"
        )
    return after
