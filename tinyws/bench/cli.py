"""``tinyws bench URL``: the command line of the handshake benchmark.

Exit status: 0 when every handshake succeeded, 1 when any failed (see the
error kinds in the report), 2 on bad usage. Without ``--expect`` any complete
HTTP response counts as success — a 403 lands in the status histogram, not
among the errors; with ``--expect STATUS`` every other status is an error.

A target that answers nothing stops the run early with status 1 and one line
on stderr naming the first error: a host name that does not resolve (before
any handshake), or the first 100 handshakes (all of them when ``-n`` is
smaller) all refused, reset, unreachable or timed out (see ``runner``).

``--json -`` writes the JSON to stdout; the text report then goes to stderr,
so that a pipe gets nothing but the JSON document.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

import anyio

from tinyws.bench import report, runner
from tinyws.bench.client_handshake import Target
from tinyws.cli import require_backend

TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
DESCRIPTION = """\
Open WebSocket handshakes against URL and report their rate, latency
percentiles, status codes and errors. Each handshake connects, sends an
upgrade with a fresh key, times the response head, checks the accept key and
completes the close handshake (or reads a denial's body).
"""
EPILOG = (
    "Exit status: 0 if every handshake succeeded, 1 if any failed (or the target answered "
    "none of the first 100, which stops the run early), 2 on bad usage."
)


class UsageError(Exception):
    """Raised when the arguments cannot describe a benchmark."""


class UnreachableError(Exception):
    """Raised when the target cannot be reached before any handshake (its name does not resolve)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    request_target: str
    host_header: str


def parse_url(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme == "wss":
        raise UsageError("wss:// is not supported; benchmark the ws:// endpoint behind TLS")
    if parts.scheme != "ws" or not parts.hostname:
        raise UsageError(f"expected a ws://host[:port]/path URL, got {url!r}")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise UsageError(f"bad port in {url!r}") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(parts.hostname, port, target, parts.netloc.rpartition("@")[2])


def parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
        raise UsageError(f"expected -H 'Name: value', got {text!r}")
    if name.lower() == "sec-websocket-key":
        raise UsageError("Sec-WebSocket-Key is generated afresh for every handshake")
    return name, value


def parse_subprotocols(values: list[str]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    for name in names:
        if not TOKEN.fullmatch(name):
            raise UsageError(f"bad subprotocol name {name!r}")
    return names


def build_target(endpoint: Endpoint, headers: list[str], subprotocols: list[str]) -> Target:
    fields = {
        "host": ("Host", endpoint.host_header),
        "upgrade": ("Upgrade", "websocket"),
        "connection": ("Connection", "Upgrade"),
        "sec-websocket-version": ("Sec-WebSocket-Version", "13"),
    }
    offered = set(subprotocols)
    if subprotocols:
        fields["sec-websocket-protocol"] = ("Sec-WebSocket-Protocol", ", ".join(subprotocols))
    for text in headers:
        name, value = parse_header(text)
        fields[name.lower()] = (name, value)  # a given header replaces the default
        if name.lower() == "sec-websocket-protocol":
            offered.update(parse_subprotocols([value]))
    lines = [f"GET {endpoint.request_target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in fields.values()]
    head = ("\r\n".join(lines) + "\r\nSec-WebSocket-Key: ").encode("latin-1")
    family, address = resolve(endpoint.host, endpoint.port)
    return Target(family, address, head, b"\r\n\r\n", frozenset(offered))


def resolve(host: str, port: int) -> tuple[int, tuple[object, ...]]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnreachableError(f"dns: cannot resolve {host!r}: {exc}") from exc
    family, _, _, _, address = infos[0]
    return family, address


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyws bench", description=DESCRIPTION, epilog=EPILOG)
    add = parser.add_argument
    add("url", metavar="URL", help="ws://host[:port]/path of the WebSocket endpoint")
    add("-n", type=_positive_int, metavar="N", help="handshakes to run (default 1000)")
    add("--duration", type=_positive_float, metavar="SECONDS", help="run this long instead of -n")
    add("-c", type=_positive_int, default=1, metavar="C", help="concurrency (default 1)")
    add(
        "-H",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="add or replace a request header (repeatable)",
    )
    add(
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME[,NAME]",
        help="offer subprotocols (repeatable)",
    )
    add("--expect", type=int, metavar="STATUS", help="count any other status as an error")
    add("--warmup", type=int, default=0, metavar="N", help="unmeasured handshakes to run first")
    add(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="per handshake (default 10)",
    )
    add(
        "--json",
        metavar="FILE",
        help="also write the results as JSON to FILE; '-' for stdout (the text report then "
        "goes to stderr)",
    )
    add("--quiet", action="store_true", help="no progress line on stderr")
    add("--backend", choices=("asyncio", "trio"), default="asyncio", help="anyio backend")
    add("--no-uvloop", action="store_true", help="use asyncio's own loop even if uvloop is here")
    return parser


def make_plan(args: argparse.Namespace) -> runner.Plan:
    if args.n is not None and args.duration is not None:
        raise UsageError("give -n or --duration, not both")
    if args.expect is not None and not 100 <= args.expect <= 599:
        raise UsageError(f"--expect takes an HTTP status, got {args.expect}")
    if args.warmup < 0:
        raise UsageError("--warmup cannot be negative")
    endpoint = parse_url(args.url)
    subprotocols = parse_subprotocols(args.subprotocol)
    return runner.Plan(
        target=build_target(endpoint, args.H, subprotocols),
        concurrency=args.c,
        count=None if args.duration is not None else args.n or 1000,
        duration=args.duration,
        warmup=args.warmup,
        timeout=args.timeout,
        expect=args.expect,
    )


def runtime_options(backend: str, no_uvloop: bool) -> tuple[str, dict[str, object]]:
    """Return a label for the report and anyio's backend options."""
    if backend != "asyncio" or no_uvloop:
        return backend, {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio", {}
    return "asyncio+uvloop", {"use_uvloop": True}


def main(argv: list[str]) -> int:
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        plan = make_plan(args)
    except SystemExit as exc:  # argparse has printed its message
        return exc.code if isinstance(exc.code, int) else 2
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"tinyws bench: error: {exc}\n")
        return 2
    except UnreachableError as exc:
        sys.stderr.write(f"tinyws bench: stopped before the first handshake: {exc}\n")
        return 1
    missing = require_backend(args.backend)
    if missing is not None:
        sys.stderr.write(f"tinyws bench: error: {missing}\n")
        return 2
    try:
        # Opened before the run, so that a bad path fails in a second, not after it.
        json_file = _open_json(args.json)
    except OSError as exc:
        sys.stderr.write(f"tinyws bench: error: cannot write --json file: {exc}\n")
        return 2
    try:
        return _run(args, plan, json_file)
    except KeyboardInterrupt:
        sys.stderr.write("\ntinyws bench: interrupted\n")
        return 130
    finally:
        if json_file is not None and json_file is not sys.stdout:
            json_file.close()


def _open_json(path: str | None) -> TextIO | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    return open(path, "w", encoding="utf-8")


def _run(args: argparse.Namespace, plan: runner.Plan, json_file: TextIO | None) -> int:
    runtime, options = runtime_options(args.backend, args.no_uvloop)
    progress = runner.progress_stream(args.quiet)
    results = anyio.run(runner.run, plan, progress, backend=args.backend, backend_options=options)
    text_out = sys.stderr if json_file is sys.stdout else sys.stdout
    text_out.write(report.to_text(args.url, plan, results, runtime))
    if json_file is not None:
        json.dump(report.to_json(args.url, plan, results, runtime), json_file, indent=2)
        json_file.write("\n")
        json_file.flush()
    if results.stopped is not None:
        sys.stderr.write(f"tinyws bench: {results.stopped}; is the server up at {args.url}?\n")
    return 1 if results.errors else 0
