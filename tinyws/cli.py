"""The ``tinyws`` command: ``tinyws serve``, ``tinyws bench`` and ``tinyws --version``.

As with argparse: ``--help`` is an answer (stdout, exit 0); anything else that
is not a command, ``tinyws`` alone included, is a usage error (stderr, exit 2).
"""

from __future__ import annotations

import sys

from tinyws import __version__

USAGE = """\
usage: tinyws <command> [options]
       tinyws --version

commands:
  serve MODULE:APP   run an ASGI app on the built-in server
  bench URL          measure WebSocket handshake latency of any endpoint

Run 'tinyws <command> --help' for the options of a command.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if command in ("-V", "--version"):
        sys.stdout.write(f"tinyws {__version__}\n")
        return 0
    # Imported lazily: `tinyws bench` should not pay for the server, nor the reverse.
    if command == "serve":
        from tinyws.server.cli import main as serve_main

        return serve_main(rest)
    if command == "bench":
        from tinyws.bench.cli import main as bench_main

        return bench_main(rest)
    if command:
        sys.stderr.write(f"tinyws: unknown command {command!r}\n\n")
    sys.stderr.write(USAGE)
    return 2


def require_backend(backend: str) -> str | None:
    """Return why ``backend`` cannot run here (trio is an extra), or None when it can."""
    if backend != "trio":
        return None
    try:
        import trio  # noqa: F401
    except ImportError:
        return "--backend trio needs trio: pip install 'tinyws[trio]'"
    return None
