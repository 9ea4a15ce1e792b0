"""--proxy-headers: X-Forwarded-For/-Proto and RFC 7239 Forwarded, believed
only from trusted peers. The pure function first, then the scope, the
settings and the command line."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyws.server.config import Config
from tinyws.server.heads import RequestHead
from tinyws.server.proxy import TrustedProxies, resolve
from tinyws.server.scope import ScopeSource, build_scope

PEER = ("127.0.0.1", 50000)
TINYWS_SERVE = [sys.executable, "-m", "tinyws", "serve", "tests.apps.origin:app"]
LOCAL = TrustedProxies("127.0.0.1, 10.0.0.0/8")
TLS = ScopeSource(secure=True)


def headers(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in pairs]


def xff(value: str, proto: str | None = None) -> list[tuple[bytes, bytes]]:
    pairs = [("X-Forwarded-For", value)]
    if proto is not None:
        pairs.append(("X-Forwarded-Proto", proto))
    return headers(*pairs)


# --- which peers are trusted --------------------------------------------------


def test_the_default_trusts_only_localhost() -> None:
    trusted = TrustedProxies()
    assert "127.0.0.1" in trusted
    assert "127.0.0.2" not in trusted
    assert "::1" not in trusted


def test_networks_addresses_and_ipv6() -> None:
    trusted = TrustedProxies("10.0.0.0/8, 192.168.1.7 ,2001:db8::/32")
    assert "10.200.3.4" in trusted
    assert "192.168.1.7" in trusted
    assert "192.168.1.8" not in trusted
    assert "2001:db8::99" in trusted
    assert "2001:db9::1" not in trusted
    assert "not-an-ip" not in trusted


def test_an_ipv4_peer_seen_through_a_dual_stack_socket_matches() -> None:
    assert "::ffff:127.0.0.1" in TrustedProxies("127.0.0.1")
    assert "127.0.0.1" in TrustedProxies("::ffff:127.0.0.1")


def test_star_trusts_every_peer() -> None:
    trusted = TrustedProxies("*")
    assert "203.0.113.9" in trusted
    assert "anything" in trusted


def test_a_sequence_works_like_the_string() -> None:
    assert "10.1.1.1" in TrustedProxies(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("spec", "bad"),
    [("127.0.0.1,proxy.local", "'proxy.local'"), ("10.0.0.0/33", "'10.0.0.0/33'"), ("1.2.3", "")],
)
def test_a_bad_entry_is_named(spec: str, bad: str) -> None:
    with pytest.raises(ValueError, match="is not an IP address, a CIDR network or") as caught:
        TrustedProxies(spec)
    assert bad in str(caught.value)


def test_an_empty_list_is_an_error() -> None:
    with pytest.raises(ValueError, match="forwarded_allow_ips is empty"):
        TrustedProxies(" , ")


# --- X-Forwarded-For / X-Forwarded-Proto ----------------------------------------


def test_untrusted_peers_are_ignored_entirely() -> None:
    sent = [*xff("203.0.113.7", "https"), *headers(("Forwarded", "for=198.51.100.1;proto=https"))]
    assert resolve(("203.0.113.50", 4000), sent, "ws", LOCAL) == (("203.0.113.50", 4000), "ws")


def test_no_peer_address_is_untrusted_unless_star() -> None:
    assert resolve(None, xff("203.0.113.7"), "http", LOCAL) == (None, "http")
    assert resolve(None, xff("203.0.113.7"), "http", TrustedProxies("*")) == (
        ("203.0.113.7", 0),
        "http",
    )


def test_a_trusted_peer_sets_client_and_scheme() -> None:
    assert resolve(PEER, xff("203.0.113.7", "https"), "http", LOCAL) == (
        ("203.0.113.7", 0),
        "https",
    )


@pytest.mark.parametrize(
    ("proto", "http", "websocket"),
    [
        ("https", "https", "wss"),
        ("http", "http", "ws"),
        ("wss", "https", "wss"),
        ("ws", "http", "ws"),
        ("HTTPS", "https", "wss"),
        ("ftp", "http", "ws"),  # not a scheme of ours: unchanged
        ("", "http", "ws"),
    ],
)
def test_forwarded_proto_maps_to_the_scope_kind(proto: str, http: str, websocket: str) -> None:
    sent = headers(("X-Forwarded-Proto", proto))
    assert resolve(PEER, sent, "http", LOCAL) == (PEER, http)
    assert resolve(PEER, sent, "ws", LOCAL) == (PEER, websocket)


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    # The client wrote 6.6.6.6 itself; our proxies appended the rest.
    chain = xff("6.6.6.6, 203.0.113.7, 10.0.0.2")
    assert resolve(PEER, chain, "http", LOCAL)[0] == ("203.0.113.7", 0)


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert resolve(PEER, xff("10.0.0.5, 10.0.0.6"), "http", LOCAL)[0] == ("10.0.0.5", 0)
    star = TrustedProxies("*")
    assert resolve(PEER, xff("6.6.6.6, 203.0.113.7"), "http", star)[0] == ("6.6.6.6", 0)


def test_repeated_header_lines_are_one_list() -> None:
    sent = headers(("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-for", "203.0.113.7, 10.0.0.2"))
    assert resolve(PEER, sent, "http", LOCAL)[0] == ("203.0.113.7", 0)


@pytest.mark.parametrize(
    ("hop", "client"),
    [
        ("2001:db8::7", ("2001:db8::7", 0)),
        ("[2001:db8::7]", ("2001:db8::7", 0)),
        ("[2001:db8::7]:4711", ("2001:db8::7", 4711)),
        ("203.0.113.7:5555", ("203.0.113.7", 5555)),
        ("203.0.113.7:99999", ("203.0.113.7", 0)),
        ("2001:DB8:0::7", ("2001:db8::7", 0)),
    ],
)
def test_hop_forms(hop: str, client: tuple[str, int]) -> None:
    assert resolve(PEER, xff(hop), "http", LOCAL)[0] == client


@pytest.mark.parametrize(
    "hop", ["unknown", "garbage", "[2001:db8::7", "[::1]x", "300.1.1.1", "_hidden"]
)
def test_a_hop_that_is_not_an_ip_keeps_the_peer(hop: str) -> None:
    assert resolve(PEER, xff(f"203.0.113.7, {hop}", "https"), "ws", LOCAL) == (PEER, "wss")


def test_a_proto_list_as_long_as_the_hops_lines_up_with_them() -> None:
    sent = xff("203.0.113.7, 10.0.0.2", "https, http")
    assert resolve(PEER, sent, "http", LOCAL) == (("203.0.113.7", 0), "https")
    # Not as long: the last entry, written by the proxy that talks to us.
    assert resolve(PEER, xff("203.0.113.7", "https, http"), "http", LOCAL)[1] == "http"


# --- RFC 7239 Forwarded ---------------------------------------------------------


def forwarded(value: str, *more: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"Forwarded", value.encode()), *more]


@pytest.mark.parametrize(
    ("value", "client", "scheme"),
    [
        ("for=192.0.2.60;proto=https;by=203.0.113.43", ("192.0.2.60", 0), "wss"),
        ('For="[2001:db8:cafe::17]:4711"', ("2001:db8:cafe::17", 4711), "ws"),
        ('for="192.0.2.60:8080";PROTO="http"', ("192.0.2.60", 8080), "ws"),
        ("for=6.6.6.6, for=192.0.2.43;proto=https, for=10.0.0.2", ("192.0.2.43", 0), "wss"),
        ("for=unknown;proto=https", PEER, "wss"),
        ('for="_gazonk";proto=https', PEER, "wss"),
        ("for=_hidden, for=10.0.0.2", PEER, "ws"),
        ('for="[2001:db8::1]:_p1"', ("2001:db8::1", 0), "ws"),
        ('for="192.0.2.\\60"', ("192.0.2.60", 0), "ws"),  # a quoted-pair
        ("proto=https", PEER, "wss"),
        (" for = 192.0.2.60 ; proto = https ,", ("192.0.2.60", 0), "wss"),
    ],
)
def test_forwarded(value: str, client: tuple[str, int], scheme: str) -> None:
    assert resolve(PEER, forwarded(value), "ws", LOCAL) == (client, scheme)


def test_forwarded_wins_over_x_forwarded() -> None:
    sent = forwarded("for=192.0.2.60;proto=http", *xff("203.0.113.7", "https"))
    assert resolve(PEER, sent, "http", LOCAL) == (("192.0.2.60", 0), "http")


@pytest.mark.parametrize(
    "value",
    ['for="192.0.2.60', "for=1.2.3.4 for=5.6.7.8", "garbage", "for", "=1.2.3.4", ";", ", ,"],
)
def test_a_malformed_forwarded_is_ignored(value: str) -> None:
    sent = forwarded(value, *xff("203.0.113.7", "https"))
    assert resolve(PEER, sent, "http", LOCAL) == (("203.0.113.7", 0), "https")
    assert resolve(PEER, forwarded(value), "http", LOCAL) == (PEER, "http")


@given(st.binary(max_size=80), st.binary(max_size=40), st.binary(max_size=20))
def test_any_header_bytes_give_the_peer_or_an_ip(fwd: bytes, xff_: bytes, xfp: bytes) -> None:
    sent = [(b"forwarded", fwd), (b"x-forwarded-for", xff_), (b"x-forwarded-proto", xfp)]
    client, scheme = resolve(PEER, sent, "ws", TrustedProxies("*"))
    assert scheme in ("ws", "wss")
    assert client is not None
    assert client == PEER or socket.inet_pton(
        socket.AF_INET6 if ":" in client[0] else socket.AF_INET, client[0]
    )


# --- the scope, the settings, the command line --------------------------------------


def head(*pairs: tuple[str, str]) -> RequestHead:
    return RequestHead(b"GET", b"/x", b"1.1", headers(*pairs))


def test_build_scope_applies_the_proxy() -> None:
    scope = build_scope(
        "websocket",
        head(("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https")),
        client=PEER,
        server=("127.0.0.1", 8000),
        root_path="",
        state=None,
        source=ScopeSource(proxies=LOCAL),
    )
    assert (scope["client"], scope["scheme"]) == (("203.0.113.7", 0), "wss")


def test_build_scope_without_a_proxy_ignores_the_headers() -> None:
    sent = head(("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https"))
    scope = build_scope("http", sent, client=PEER, server=None, root_path="", state=None)
    assert (scope["client"], scope["scheme"]) == (PEER, "http")


@pytest.mark.parametrize(("kind", "scheme"), [("http", "https"), ("websocket", "wss")])
def test_a_secure_connection_has_a_secure_scheme(kind: str, scheme: str) -> None:
    scope = build_scope(
        kind, head(), client=PEER, server=None, root_path="", state=None, source=TLS
    )
    assert scope["scheme"] == scheme


def test_config_validates_and_hands_the_core_its_proxies() -> None:
    with pytest.raises(ValueError, match=r"'example\.com' is not an IP address"):
        Config(forwarded_allow_ips="example.com")
    assert Config().limits().source == ScopeSource(secure=False, proxies=None)
    proxy = Config(proxy_headers=True, forwarded_allow_ips="10.0.0.0/8").limits().source.proxies
    assert proxy is not None and "10.1.2.3" in proxy and "127.0.0.1" not in proxy


def test_cli_rejects_a_bad_allow_list_in_one_line() -> None:
    done = subprocess.run(
        [*TINYWS_SERVE, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/99"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.endswith(
        "tinyws serve: forwarded_allow_ips: '10.0.0.0/99' is not an IP address, "
        "a CIDR network or '*'\n"
    )
