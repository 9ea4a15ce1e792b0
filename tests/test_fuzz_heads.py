"""The fast head parser never disagrees with h11.

`parse_plain_head` may decline any head (h11 then parses it), but a head it
accepts must mean exactly what h11 reads in it: the same target and the same
headers, names lowercased and values trimmed.
"""

from __future__ import annotations

import h11
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzzing import FUZZ
from tinyws.server.heads import parse_plain_head

BASE = [b"Host: h", b"Upgrade: websocket", b"Connection: Upgrade"]
# Bytes that decide a head's fate: separators, whitespace, controls, obs-text, DEL.
TRICKY = st.sampled_from([*b' \t\r\n:;,"()/\\\x00\x01\x0b\x7f\x80\xff', ord("a")])
PIECE = st.one_of(
    st.binary(max_size=6),
    st.lists(TRICKY, max_size=6).map(bytes),
    st.sampled_from([b"websocket", b"Host", b"Content-Length: 1", b" x", b"\r\n"]),
)
LINE = st.lists(PIECE, min_size=1, max_size=4).map(b"".join)


def h11_reading(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head + b"\r\n\r\n")
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    assert isinstance(event, h11.Request)
    return event.target, list(event.headers)


@FUZZ
@given(
    target=st.one_of(st.just(b"/"), st.binary(max_size=8).map(lambda b: b"/" + b)),
    lines=st.lists(LINE, max_size=4),
    position=st.integers(0, 3),
)
@example(target=b"/", lines=[b"X:\t a \t b \t"], position=3)
@example(target=b"/", lines=[b" folded: x"], position=3)
@example(target=b"/", lines=[b"X (y): z"], position=0)
@example(target=b"/a b", lines=[], position=0)
@example(target=b"/a\tb", lines=[], position=0)
@example(target=b"/", lines=[b"X: \x7f"], position=1)
def test_an_accepted_head_reads_as_h11_reads_it(
    target: bytes, lines: list[bytes], position: int
) -> None:
    head_lines = [*BASE]
    head_lines[position:position] = lines
    head = b"\r\n".join([b"GET " + target + b" HTTP/1.1", *head_lines])
    parsed = parse_plain_head(head)
    if parsed is None:
        return  # declined: h11 decides
    reading = h11_reading(head)
    assert reading is not None, head
    assert (parsed.target, parsed.headers) == reading
    assert parsed.method == b"GET" and parsed.http_version == b"1.1"
