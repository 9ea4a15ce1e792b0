"""The ``tinyws`` command: ``tinyws serve`` and ``tinyws bench``."""

from __future__ import annotations

import sys

USAGE = """\
usage: tinyws <command> [options]

commands:
  serve MODULE:APP   run an ASGI app on the built-in server
  bench URL          measure WebSocket handshake latency of any endpoint

Run 'tinyws <command> --help' for the options of a command.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    # Imported lazily: `tinyws bench` should not pay for the server, nor the reverse.
    if command == "serve":
        from tinyws.server.cli import main as serve_main

        return serve_main(rest)
    if command == "bench":
        from tinyws.bench.cli import main as bench_main

        return bench_main(rest)
    sys.stderr.write(f"tinyws: unknown command {command!r}\n\n{USAGE}")
    return 2
