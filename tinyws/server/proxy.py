"""Proxy headers: who the client is, and which scheme it used, behind a proxy.

A reverse proxy connects to us itself, so the socket's peer is the proxy and
every request looks like plain `ws://` from 127.0.0.1. The proxy says what it
saw in headers (`X-Forwarded-For`, `X-Forwarded-Proto`, RFC 7239
`Forwarded`), but anybody can send those headers, so they are read only when
the peer is one of the operator's proxies (`--forwarded-allow-ips`).

The address lists are walked from the right. Each proxy *appends* the
address it received the request from, so the rightmost entries were written
by our own proxies and the leftmost by whoever the client is; the client can
put anything it likes on the left. The client is the first hop, from the
right, that is not one of our proxies: everything to its left is the
client's own say-so. When every hop is a trusted proxy, the leftmost is the
client. A hop that is not an IP address (`unknown`, an RFC 7239 obfuscated
`_name`, garbage) cannot become `scope["client"]`: the peer address is kept.

`Forwarded` wins over `X-Forwarded-*` when a request carries both: it is the
standard, and a proxy that writes it means it. A `Forwarded` header that does
not parse is ignored as if it were absent.

`resolve()` is pure: (peer address, headers, scheme) in, (client, scheme) out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

__all__ = ["TrustedProxies", "resolve"]

Address = tuple[str, int]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The scheme a proxy reports → the scope's scheme, per scope kind.
_SCHEMES = {
    "http": {"http": "http", "https": "https", "ws": "http", "wss": "https"},
    "websocket": {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"},
}
_KIND = {"http": "http", "https": "http", "ws": "websocket", "wss": "websocket"}

# RFC 7239, one lexeme at a time: a `;`/`,` separator or a `name=value` pair
# whose value is a quoted string or, leniently, any run of plain characters
# (the RFC wants `for="[::1]"` quoted; some proxies do not quote it).
_LEXEME = re.compile(
    r"[ \t]*(?:(?P<sep>[;,])|(?P<name>[-!#$%&'*+.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*"
    r'(?P<value>"(?:[^"\\]|\\.)*"|[^;,"\s]*))[ \t]*'
)


class TrustedProxies:
    """The peers whose forwarding headers are believed (`--forwarded-allow-ips`).

    `spec` is a comma-separated string (or a sequence) of IP addresses, CIDR
    networks and `*` (any peer). Raises `ValueError` naming a bad entry.
    """

    __slots__ = ("any", "networks", "spec")

    def __init__(self, spec: str | Sequence[str] = "127.0.0.1") -> None:
        entries = spec.split(",") if isinstance(spec, str) else list(spec)
        self.spec = ",".join(entry.strip() for entry in entries)
        self.any = False
        self.networks: list[IPNetwork] = []
        for entry in (e.strip() for e in entries):
            if entry == "*":
                self.any = True
            elif entry:
                self.networks.append(_network(entry))
        if not self.any and not self.networks:
            raise ValueError("forwarded_allow_ips is empty: give addresses, networks or '*'")

    def __contains__(self, host: object) -> bool:
        if self.any:
            return True
        ip = _ip(host) if isinstance(host, str) else None
        return ip is not None and any(ip in net for net in self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({self.spec!r})"


def resolve(
    peer: Address | None,
    headers: Iterable[tuple[bytes, bytes]],
    scheme: str,
    trusted: TrustedProxies,
) -> tuple[Address | None, str]:
    """(client, scheme) for a request from `peer` carrying `headers`.

    `scheme` is what the socket says (http/https/ws/wss); it and `peer` come
    back unchanged when the peer is not trusted or sent nothing usable.
    """
    if not trusted.any and (peer is None or peer[0] not in trusted):
        return peer, scheme
    forwarded: list[bytes] = []
    xff: list[bytes] = []
    xfp: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"forwarded":
            forwarded.append(value)
        elif lowered == b"x-forwarded-for":
            xff.append(value)
        elif lowered == b"x-forwarded-proto":
            xfp.append(value)
    hops = _parse_forwarded(b",".join(forwarded)) if forwarded else None
    if not hops:  # absent, empty or malformed: the X-Forwarded-* pair
        hops = _x_forwarded(_split(xff), _split(xfp))
    if not hops:
        return peer, scheme
    node, proto = hops[_client_index([node for node, _ in hops], trusted)]
    client = _address(node) if node is not None else None
    return (client or peer), _scheme(proto, scheme)


def _client_index(nodes: list[str | None], trusted: TrustedProxies) -> int:
    """Index of the rightmost hop that is not a trusted proxy (0 if all are)."""
    for index in range(len(nodes) - 1, -1, -1):
        node = nodes[index]
        address = _address(node) if node is not None else None
        if address is None or address[0] not in trusted:
            return index
    return 0


def _x_forwarded(hosts: list[str], protos: list[str]) -> list[tuple[str | None, str | None]]:
    """Hops from X-Forwarded-For/-Proto. The proto list lines up with the
    hosts only when it is as long; otherwise its last entry (our proxy's)
    stands for every hop."""
    if not hosts:
        return [(None, protos[-1])] if protos else []
    if len(protos) == len(hosts):
        return list(zip(hosts, protos, strict=True))
    last = protos[-1] if protos else None
    return [(host, last) for host in hosts]


def _parse_forwarded(value: bytes) -> list[tuple[str | None, str | None]] | None:
    """RFC 7239 elements as (for, proto); None when the header does not parse."""
    text = value.decode("latin-1")
    hops: list[tuple[str | None, str | None]] = []
    pairs: dict[str, str] = {}
    pos, after_pair = 0, False
    while pos < len(text):
        lexeme = _LEXEME.match(text, pos)
        if lexeme is None or (lexeme["name"] and after_pair):
            return None  # not a pair or separator, or two pairs with nothing between
        pos = lexeme.end()
        after_pair = lexeme["name"] is not None
        if after_pair:
            pairs.setdefault(lexeme["name"].lower(), _unquote(lexeme["value"]))
        elif lexeme["sep"] == "," and pairs:
            hops.append((pairs.get("for"), pairs.get("proto")))
            pairs = {}
    if pairs:
        hops.append((pairs.get("for"), pairs.get("proto")))
    return hops


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _split(values: list[bytes]) -> list[str]:
    text = b",".join(values).decode("latin-1")
    return [item.strip() for item in text.split(",") if item.strip()]


def _address(node: str) -> Address | None:
    """An IP hop as (host, port): `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`;
    None for `unknown`, obfuscated `_names` and anything else."""
    host, port = node, "0"
    if node.startswith("["):
        host, bracket, rest = node[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] or "0"
    elif node.count(":") == 1:
        host, _, port = node.partition(":")
    ip = _ip(host)
    if ip is None:
        return None
    # An obfuscated port (`_p1`) is as good as none.
    number = int(port) if port.isdigit() and len(port) <= 5 and int(port) <= 65535 else 0
    return str(ip), number


def _ip(host: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return ip


def _network(entry: str) -> IPNetwork:
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(
            f"forwarded_allow_ips: {entry!r} is not an IP address, a CIDR network or '*'"
        ) from None
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen == 128:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(mapped)
    return net


def _scheme(proto: str | None, scheme: str) -> str:
    if proto is None:
        return scheme
    return _SCHEMES[_KIND.get(scheme, "http")].get(proto.strip().lower(), scheme)
