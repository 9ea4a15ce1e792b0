"""Request heads: the fast parser for plain upgrade heads and the RFC 6455
checks of an upgrade (the responses are in `responses.py`).

Parsing a WebSocket upgrade head with h11 costs several times as much as
splitting it with bytes methods, which run in C. So heads are first offered
to `parse_plain_head`, which accepts only the boring shape every WebSocket
client sends (GET, origin form, HTTP/1.1, one Host, no body headers, nothing
folded, no bare CR or LF, no control characters) and returns None for
anything else; h11 then parses the head properly, so an unusual head is
never misread, only parsed more slowly. (A regex per line was the first
version: about 2.5 times slower, and quadratic on runs of spaces until its
pattern was made unambiguous.)
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyws.server.responses import (
    FIELD_CHARS,
    TOKEN_CHARS,
    VERSION_REFUSAL,
    RawHeaders,
    error_response,
)

_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


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
    # Plain HTTP goes straight to h11 (and so does an "UPGRADE:" in capitals:
    # declining is always safe).
    if b"pgrade:" not in head:
        return None
    lines = head.split(b"\r\n")
    # Deleting what a field may hold must leave only the CRLFs between lines:
    # no bare CR or LF, no other control byte.
    if len(head.translate(None, FIELD_CHARS)) != 2 * len(lines) - 2:
        return None
    request_line = lines[0]
    if not (request_line.startswith(b"GET /") and request_line.endswith(b" HTTP/1.1")):
        return None
    target = request_line[4:-9]
    if b" " in target or b"\t" in target or not target.isascii():
        return None
    headers: RawHeaders = []
    names = []
    hosts = 0
    upgrade = False
    for line in lines[1:]:
        raw_name, colon, value = line.partition(b":")
        if not raw_name or not colon:
            return None
        names.append(raw_name)
        name = raw_name.lower()
        value = value.strip(b" \t")
        if name == b"host":
            hosts += 1
        elif name == b"upgrade":
            upgrade = upgrade or value == b"websocket" or b"websocket" in _tokens(value)
        elif name in _BODY_HEADERS:
            return None
        headers.append((name, value))
    # Every name a token: no spaces (obs-fold, "Name :"), no separators.
    if hosts != 1 or not upgrade or b"".join(names).translate(None, TOKEN_CHARS):
        return None
    return RequestHead(b"GET", target, b"1.1", headers)


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
            if value == b"Upgrade":  # what nearly every client sends
                connection.append(b"upgrade")
            else:
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
    # Base64 of 16 bytes is exactly 22 characters of the alphabet and "==".
    return len(key) == 24 and key[22:] == b"==" and not key[:22].translate(None, _BASE64)


_BODY_HEADERS = (b"content-length", b"transfer-encoding")
