"""The states of the app's side of a WebSocket, and the one table that moves them.

How the machine works
---------------------

A WebSocket starts CONNECTING: the handshake waits for the app's answer.
``accept()`` moves it to ACCEPTED. A denial (an HTTP response, or the bare
403 a server makes of a close before accept) ends it DENIED; in the
``"close"`` denial mode a refusal is an accept followed by a close, so it
passes through ACCEPTED. From ACCEPTED, the app's own close ends it CLOSED,
and the client's departure (its close frame, or the connection dropping)
ends it GONE. The two ends differ for one reason: only a connection whose
own client has gone may end its handler quietly (SPEC section 4).

    CONNECTING ──accept──▶ ACCEPTED ──close──▶ CLOSED
        │                     └──────gone─────▶ GONE
        └──deny──▶ DENIED

Every change goes through ``transition``, which looks the pair up in
``TRANSITIONS``; a pair that is not there is a misuse by the app, reported
with the states the event needs. Methods that only *read* in a state
(``send()``, ``receive()``) check it with ``expect``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from tinyws.errors import WebSocketStateError


class SocketState(enum.Enum):
    CONNECTING = "CONNECTING"
    ACCEPTED = "ACCEPTED"
    DENIED = "DENIED"
    CLOSED = "CLOSED"
    GONE = "GONE"

    # Enum hashes by name in Python code; the table is looked up on every handshake.
    __hash__ = object.__hash__


# An Enum member lookup costs as much as twenty plain name lookups on Python
# 3.11, and the handshake path checks the state a dozen times.
CONNECTING, ACCEPTED, DENIED, CLOSED, GONE = SocketState

TRANSITIONS: dict[tuple[SocketState, str], SocketState] = {
    (CONNECTING, "accept"): ACCEPTED,
    (CONNECTING, "deny"): DENIED,
    (ACCEPTED, "close"): CLOSED,
    (ACCEPTED, "gone"): GONE,
}

# What each event needs, for the error message.
_SOURCES = {event: [s for (s, e) in TRANSITIONS if e == event] for (_, event) in TRANSITIONS}


def transition(state: SocketState, event: str, action: str) -> SocketState:
    """The state after ``event``; ``action`` names the app's call, for the error message."""
    new = TRANSITIONS.get((state, event))
    if new is None:
        raise _misuse(state, action, _SOURCES[event])
    return new


def expect(state: SocketState, action: str, *states: SocketState) -> None:
    """Refuse ``action`` unless the WebSocket is in one of ``states``."""
    if state not in states:
        raise _misuse(state, action, states)


def _misuse(state: SocketState, action: str, wanted: Sequence[SocketState]) -> WebSocketStateError:
    names = " or ".join(s.value for s in wanted)
    return WebSocketStateError(
        f"{action} needs the WebSocket to be {names}, but it is {state.value}"
    )


__all__ = [
    "ACCEPTED",
    "CLOSED",
    "CONNECTING",
    "DENIED",
    "GONE",
    "TRANSITIONS",
    "SocketState",
    "expect",
    "transition",
]
