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

Beyond the closed loop (``-c``): ``wss://`` URLs (``target.py``,
``tls_driver.py``), the open model ``--rate`` (``open_model.py``), two
targets compared in interleaved rounds ``--compare`` (``compare.py``), and
the ``--hdr``/``--plot`` outputs (``hdr.py``, ``plot.py``); ``orchestration.py``
runs what was asked and writes the outputs.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from tinyws.bench import compare, orchestration, runner
from tinyws.bench.target import (
    UnreachableError,
    UsageError,
    build_target,
    parse_subprotocols,
    parse_url,
    tls_context,
)
from tinyws.cli import require_backend

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
    add("url", metavar="URL", help="ws://host[:port]/path (or wss://) of the WebSocket endpoint")
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
    add(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="open model: start R handshakes/s on a fixed schedule, latency counted from it",
    )
    add(
        "--max-inflight",
        type=_positive_int,
        metavar="N",
        help="with --rate: at most N in flight (default 1000)",
    )
    add("--ramp", type=_positive_float, metavar="SECONDS", help="with --rate: from 0 to R")
    add(
        "--compare",
        metavar="URL2",
        help="run URL and URL2 in interleaved rounds, report the ratios URL/URL2",
    )
    add("--rounds", type=_positive_int, metavar="K", help="with --compare (default 5)")
    add("--server-pid", metavar="PID[,PID]", help="report these processes' CPU time (URL's)")
    add("--compare-pid", metavar="PID[,PID]", help="with --compare: URL2's server processes")
    add("--hdr", metavar="FILE", help="write the latency distribution as .hgrm")
    add("--plot", metavar="FILE.svg", help="write a latency-by-percentile plot (SVG)")
    add("--cacert", metavar="PEM", help="wss://: trust these CA certificates only")
    add("--insecure", action="store_true", help="wss://: no certificate verification")
    add("--backend", choices=("asyncio", "trio"), default="asyncio", help="anyio backend")
    add("--no-uvloop", action="store_true", help="use asyncio's own loop even if uvloop is here")
    return parser


def make_plan(args: argparse.Namespace, url: str | None = None) -> runner.Plan:
    if args.n is not None and args.duration is not None:
        raise UsageError("give -n or --duration, not both")
    if args.expect is not None and not 100 <= args.expect <= 599:
        raise UsageError(f"--expect takes an HTTP status, got {args.expect}")
    if args.warmup < 0:
        raise UsageError("--warmup cannot be negative")
    for flag in ("max_inflight", "ramp"):
        if getattr(args, flag, None) is not None and args.rate is None:
            raise UsageError(f"--{flag.replace('_', '-')} needs --rate")
    for flag in ("rounds", "compare_pid"):
        if getattr(args, flag, None) is not None and args.compare is None:
            raise UsageError(f"--{flag.replace('_', '-')} needs --compare")
    endpoint = parse_url(url or args.url)
    if (args.cacert or args.insecure) and not endpoint.secure:
        raise UsageError("--cacert and --insecure are for wss:// URLs")
    if args.cacert and args.insecure:
        raise UsageError("give --cacert or --insecure, not both")
    context = tls_context(args.cacert, args.insecure) if endpoint.secure else None
    subprotocols = parse_subprotocols(args.subprotocol)
    return runner.Plan(
        target=build_target(endpoint, args.H, subprotocols, context),
        concurrency=args.c,
        count=None if args.duration is not None else args.n or 1000,
        duration=args.duration,
        warmup=args.warmup,
        timeout=args.timeout,
        expect=args.expect,
        rate=getattr(args, "rate", None),
        max_inflight=getattr(args, "max_inflight", None) or 1000,
        ramp=getattr(args, "ramp", None) or 0.0,
    )


def parse_pids(text: str | None) -> tuple[int, ...]:
    if text is None:
        return ()
    try:
        pids = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"expected PID[,PID], got {text!r}") from None
    missing = [pid for pid in pids if not orchestration.pid_exists(pid)]
    if missing or not pids:
        raise UsageError(f"no such process: {text!r}")
    return pids


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
        plans = _plans(args)
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
        outputs = orchestration.open_outputs(
            args.json, args.hdr, args.plot, args.compare is not None
        )
    except orchestration.OutputError as exc:
        sys.stderr.write(f"tinyws bench: error: {exc}\n")
        return 2
    label, options = runtime_options(args.backend, args.no_uvloop)
    runtime = orchestration.Runtime(args.backend, options, label, args.quiet)
    try:
        if len(plans) == 1:
            return orchestration.single(args.url, plans[0], runtime, outputs)
        sides = (
            compare.Side("A", args.url, plans[0].server_pids),
            compare.Side("B", args.compare, plans[1].server_pids),
        )
        return orchestration.both(sides, (plans[0], plans[1]), args.rounds or 5, runtime, outputs)
    except KeyboardInterrupt:
        sys.stderr.write("\ntinyws bench: interrupted\n")
        return 130
    finally:
        outputs.close()


def _plans(args: argparse.Namespace) -> list[runner.Plan]:
    """Return URL's plan, and URL2's after it under --compare."""
    plan = replace(make_plan(args), server_pids=parse_pids(args.server_pid))
    if args.compare is None:
        return [plan]
    other = make_plan(args, args.compare)
    return [plan, replace(other, server_pids=parse_pids(args.compare_pid))]
