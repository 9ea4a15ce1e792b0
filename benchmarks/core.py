"""The built-in server's sans-IO core on its own: µs per exchange, no sockets.

Feeds the bytes of whole exchanges through `tinyws.server.connection.
ServerConnection` and plays the app's part with plain ASGI messages, so the
figure is the protocol work alone: no event loop, no kernel, no client.

* accept: upgrade request in → 101 out; the client's close frame in → the
  echoed close frame out.
* reject: upgrade request in → the app's 403 denial (the
  "websocket.http.response" extension) out.
* http: a keep-alive `GET` in → a 200 with a body out, ready for the next.

Every timed batch is checked afterwards (its last exchange: status line,
`Sec-WebSocket-Accept` against the key, the close frame, the denial body ...),
so a broken core fails loudly instead of getting fast.

    python benchmarks/core.py [-n 2000] [--repeats 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

from tinyws.server.config import Limits
from tinyws.server.connection import Phase, ServerConnection

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLIENT = ("127.0.0.1", 50000)
SERVER = ("127.0.0.1", 8000)
CLOSE_1000_MASKED = b"\x88\x82\x01\x02\x03\x04" + bytes((0x03 ^ 0x01, 0xE8 ^ 0x02))
CLOSE_1000 = b"\x88\x02\x03\xe8"
DENIAL_BODY = b'{"title":"Forbidden"}'
DENIAL_START = {
    "type": "websocket.http.response.start",
    "status": 403,
    "headers": [(b"content-type", b"application/json")],
}
DENIAL_END = {"type": "websocket.http.response.body", "body": DENIAL_BODY}
RESPONSE_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain")],
}
RESPONSE_BODY = {"type": "http.response.body", "body": b"ok"}
HTTP_GET = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: core-bench\r\n\r\n"

LIMITS = Limits()  # the server's defaults

# An exchange takes the request bytes and returns what its check needs.
Exchange = Callable[[bytes], tuple[bytes, bytes]]
Check = Callable[[bytes, tuple[bytes, bytes]], None]


class CoreBroken(AssertionError):
    """The core answered with the wrong bytes: the figures would mean nothing."""


def upgrade(path: bytes, key: bytes) -> bytes:
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\nUser-Agent: core-bench\r\n\r\n"
    )


def accept(request: bytes) -> tuple[bytes, bytes]:
    conn = ServerConnection(LIMITS, CLIENT, SERVER)
    conn.receive_data(request)
    conn.next_request()
    conn.ws_receive()  # websocket.connect
    conn.ws_send({"type": "websocket.accept"})
    opened = conn.take_output()
    conn.receive_data(CLOSE_1000_MASKED)
    message = conn.ws_receive()
    closed = conn.take_output()
    if message is None or message["code"] != 1000 or conn.phase is not Phase.CLOSED:
        raise CoreBroken(f"accept: the client's close ended as {message}, {conn.phase}")
    return opened, closed


def reject(request: bytes) -> tuple[bytes, bytes]:
    conn = ServerConnection(LIMITS, CLIENT, SERVER)
    conn.receive_data(request)
    conn.next_request()
    conn.ws_receive()
    conn.ws_send(DENIAL_START)
    conn.ws_send(DENIAL_END)
    if conn.phase is not Phase.CLOSED:
        raise CoreBroken(f"reject: the denial left the connection {conn.phase}")
    return conn.take_output(), b""


def http(request: bytes) -> tuple[bytes, bytes]:
    conn = ServerConnection(LIMITS, CLIENT, SERVER)
    conn.receive_data(request)
    conn.next_request()
    conn.http_send(RESPONSE_START)
    conn.http_send(RESPONSE_BODY)
    conn.http_finish(False)
    if conn.phase is not Phase.IDLE:
        raise CoreBroken(f"http: keep-alive expected, the connection is {conn.phase}")
    return conn.take_output(), b""


def check_accept(key: bytes, out: tuple[bytes, bytes]) -> None:
    opened, closed = out
    head = _head(opened, b"HTTP/1.1 101 Switching Protocols")
    expected = base64.b64encode(hashlib.sha1(key + GUID).digest())
    if head.get(b"sec-websocket-accept") != expected:
        raise CoreBroken(f"accept: Sec-WebSocket-Accept is not {expected!r}: {opened!r}")
    if head.get(b"upgrade", b"").lower() != b"websocket":
        raise CoreBroken(f"accept: no Upgrade: websocket in {opened!r}")
    if closed != CLOSE_1000:
        raise CoreBroken(f"accept: the close frame out is {closed!r}, not {CLOSE_1000!r}")


def check_reject(_: bytes, out: tuple[bytes, bytes]) -> None:
    response = out[0]
    head = _head(response, b"HTTP/1.1 403 Forbidden")
    body = response.partition(b"\r\n\r\n")[2]
    if body != DENIAL_BODY or head.get(b"content-length") != b"%d" % len(DENIAL_BODY):
        raise CoreBroken(f"reject: wrong denial body or length: {response!r}")


def check_http(_: bytes, out: tuple[bytes, bytes]) -> None:
    response = out[0]
    head = _head(response, b"HTTP/1.1 200 ")
    if head.get(b"content-length") != b"2" or not response.endswith(b"\r\n\r\nok"):
        raise CoreBroken(f"http: wrong response: {response!r}")
    if head.get(b"connection", b"").lower() == b"close":
        raise CoreBroken(f"http: keep-alive expected: {response!r}")


def _head(response: bytes, status_line: bytes) -> dict[bytes, bytes]:
    head, sep, _ = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not sep or not lines[0].startswith(status_line):
        raise CoreBroken(f"expected {status_line!r}, got {response[:200]!r}")
    fields = (line.partition(b":") for line in lines[1:])
    return {name.strip().lower(): value.strip() for name, _, value in fields}


SCENARIOS: dict[str, tuple[Exchange, Check]] = {
    "accept": (accept, check_accept),
    "reject": (reject, check_reject),
    "http": (http, check_http),
}


def requests_for(name: str, count: int) -> list[tuple[bytes, bytes]]:
    """(key, request) pairs; distinct keys, so no cache can make it look cheaper."""
    if name == "http":
        return [(b"", HTTP_GET)]
    path = b"/accept" if name == "accept" else b"/reject"
    keys = [base64.b64encode(os.urandom(16)) for _ in range(count)]
    return [(key, upgrade(path, key)) for key in keys]


def measure(name: str, n: int, repeats: int) -> list[float]:
    """µs per exchange for each of `repeats` timed batches of `n` exchanges."""
    exchange, check = SCENARIOS[name]
    pairs = requests_for(name, 64)
    requests = [pairs[i % len(pairs)][1] for i in range(n)]
    last_key = pairs[(n - 1) % len(pairs)][0]
    runs = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for request in requests:
            out = exchange(request)
        elapsed = time.perf_counter_ns() - start
        check(last_key, out)
        runs.append(elapsed / n / 1000)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/core.py", description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="exchanges per batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed batches (median)")
    parser.add_argument("--scenario", choices=list(SCENARIOS), action="append")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("-n and --repeats must be at least 1")
    results: dict[str, dict[str, object]] = {}
    print(f"sans-IO core, {args.n} exchanges x {args.repeats} batches, µs per exchange")
    for name in args.scenario or list(SCENARIOS):
        exchange, check = SCENARIOS[name]
        key, request = requests_for(name, 1)[0]
        check(key, exchange(request))  # fail before timing anything broken
        runs = measure(name, args.n, args.repeats)
        median = statistics.median(runs)
        results[name] = {"median_us": round(median, 2), "min_us": round(min(runs), 2)}
        results[name]["runs_us"] = [round(run, 2) for run in runs]
        print(f"{name:8} median {median:8.2f}   min {min(runs):8.2f}")
    if args.json:
        report = {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "n": args.n,
            "repeats": args.repeats,
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
