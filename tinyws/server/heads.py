"""Request heads: the fast parser for plain upgrade heads and the RFC 6455
checks of an upgrade (the responses are in `responses.py`).

Parsing a WebSocket upgrade head with h11 costs about eight times as much as
one strict regex per line. So heads are first offered to `parse_plain_head`,
which accepts only the boring shape every WebSocket client sends (GET, origin
form, HTTP/1.1, one Host, no body headers, nothing folded, no bare CR or LF)
and returns None for anything else; h11 then parses the head properly, so an
unusual head is never misread, only parsed more slowly.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from tinyws.server.responses import VERSION_REFUSAL, RawHeaders, error_response

_REQUEST_LINE = re.compile(rb"GET (/[!-~]*) HTTP/1\.1")
# One header line: a token name, then a value of anything but control
# characters (HTAB allowed) that starts and ends with a visible character, so
# that the optional whitespace around it is never ambiguous (an ambiguous
# split made the match quadratic in a run of spaces inside a value). CR and
# LF are control characters: a bare one sends the head to h11.
_FIELD = (
    rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*"
    rb"((?:[^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?)?)[ \t]*\r\n"
)
_HEADER_LINE = re.compile(_FIELD)
_HEADER_BLOCK = re.compile(b"(?:" + _FIELD + b")*")


@dataclass(slots=True)
class RequestHead:
    """One parsed request head; header names are lowercase."""

    method: bytes
    target: bytes
    http_version: bytes
    headers: RawHeaders


@dataclass(slots=True)
class Offer:
    """What a valid WebSocket upgrade asks for."""

    key: bytes
    subprotocols: list[str]
    extensions: list[str]


def parse_plain_head(head: bytes) -> RequestHead | None:
    """Parse a plain WebSocket upgrade head (without its final blank line).

    Returns None whenever the head is not the plain kind (or not a WebSocket
    upgrade), so that h11 decides.
    """
    line_end = head.find(b"\r\n")
    match = _REQUEST_LINE.fullmatch(head, 0, line_end) if line_end > 0 else None
    if match is None:
        return None
    block = head[line_end + 2 :] + b"\r\n"
    if _HEADER_BLOCK.fullmatch(block) is None:
        return None
    headers: RawHeaders = []
    hosts = 0
    upgrade = False
    for raw_name, value in _HEADER_LINE.findall(block):
        name = raw_name.lower()
        if name == b"host":
            hosts += 1
        elif name == b"upgrade":
            upgrade = upgrade or b"websocket" in _tokens(value)
        elif name in _BODY_HEADERS:
            return None
        headers.append((name, value))
    if hosts != 1 or not upgrade:
        return None
    return RequestHead(b"GET", match[1], b"1.1", headers)


def wants_websocket(headers: RawHeaders) -> bool:
    """True when the head asks to upgrade to WebSocket (RFC 6455 §4.2.1)."""
    return any(name == b"upgrade" and b"websocket" in _tokens(value) for name, value in headers)


def check_upgrade(head: RequestHead) -> Offer | bytes:
    """Validate a WebSocket upgrade; return the offer or the refusal to write."""
    if head.method != b"GET" or head.http_version != b"1.1":
        return error_response(400, b"WebSocket upgrade needs GET and HTTP/1.1")
    connection: list[bytes] = []
    versions: list[bytes] = []
    keys: list[bytes] = []
    protocols: list[str] = []
    extensions: list[str] = []
    for name, value in head.headers:
        if name == b"connection":
            connection.extend(_tokens(value))
        elif name == b"sec-websocket-version":
            versions.append(value)
        elif name == b"sec-websocket-key":
            keys.append(value)
        elif name == b"sec-websocket-protocol":
            protocols.extend(_items(value))
        elif name == b"sec-websocket-extensions":
            extensions.extend(_items(value))
    if b"upgrade" not in connection:
        return error_response(400, b"Connection header must include Upgrade")
    if versions != [b"13"]:
        return VERSION_REFUSAL()
    if len(keys) != 1 or not _valid_key(keys[0]):
        return error_response(400, b"Missing or invalid Sec-WebSocket-Key")
    return Offer(keys[0], protocols, extensions)


def bare_lf(head: bytes) -> bool:
    """True when a line of an incomplete head ends in LF without CR (RFC 9112 §2.2
    allows accepting it; refusing it at once is safer than waiting for a CRLF CRLF
    that may never come)."""
    return any(not line.endswith(b"\r") for line in head.split(b"\n")[:-1])


def chunked_twice(head: bytes) -> bool:
    """`Transfer-Encoding: chunked, chunked` (in one header or two): RFC 9112
    §6.1 forbids applying chunked more than once."""
    codings = [
        line.partition(b":")[2]
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"transfer-encoding:")
    ]
    return b",".join(codings).count(b"chunked") > 1


def _tokens(value: bytes) -> list[bytes]:
    return [item.strip().lower() for item in value.split(b",")]


def _items(value: bytes) -> list[str]:
    items = (item.strip() for item in value.split(b","))
    return [item.decode("latin-1") for item in items if item]


def _valid_key(key: bytes) -> bool:
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


_BODY_HEADERS = (b"content-length", b"transfer-encoding")
