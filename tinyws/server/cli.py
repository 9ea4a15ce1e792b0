"""`tinyws serve module:attr [options]`: run an ASGI app on the built-in server.

Exit status: 0 after a clean shutdown, 1 when the server fails to start, 2 on
bad usage or when MODULE:ATTR does not lead to an ASGI app (one line says why;
the traceback, if any, at --log-level debug).
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from ssl import SSLContext
from typing import Any

from tinyws.cli import require_backend
from tinyws.errors import LifespanError
from tinyws.server.app_loader import LoadError, load_app
from tinyws.server.config import BACKENDS, LIFESPAN_MODES, LOG_LEVELS, LOOPS, Config
from tinyws.types import ASGIApp

_DEFAULTS = Config()
_SSL_OPTIONS = ("ssl_certfile", "ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs")


def main(argv: list[str]) -> int:
    """Entry point of `tinyws serve`; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    options = {key: value for key, value in vars(args).items() if key not in ("app", "factory")}
    try:
        options["ssl"] = _ssl_context([options.pop(key) for key in _SSL_OPTIONS])
    except ValueError as exc:  # a missing or unreadable certificate, key or CA file
        sys.stderr.write(f"tinyws serve: {exc}\n")
        return 2
    try:
        Config(**options)
    except ValueError as exc:  # a bad combination, such as --backend trio --loop uvloop
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"tinyws serve: {exc}\n")
        return 2
    missing = require_backend(args.backend)
    if missing is not None:
        sys.stderr.write(f"tinyws serve: {missing}\n")
        return 2
    try:
        app = load_app(args.app, factory=args.factory)
    except LoadError as exc:
        if args.log_level == "debug" and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        sys.stderr.write(f"tinyws serve: {exc}\n")
        return 2
    if args.workers > 1:  # the app was loaded above only to fail early, as one process does
        from tinyws.server.workers import run_supervisor

        return run_supervisor(argv, Config(**options))
    return _serve(app, options)


def _serve(app: ASGIApp, options: dict[str, Any]) -> int:
    from tinyws.server.server import serve
    from tinyws.server.worker import serve_worker, worker_fds

    run = serve if worker_fds() is None else serve_worker  # a worker of --workers N

    # A process manager often repeats SIGTERM while the server winds down; after
    # the first one this process is already stopping, so later ones must not
    # kill it half-way (with a non-zero status) once serve() has returned.
    # SIG_IGN, not a Python handler: the interpreter resets those on exit.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    try:
        run(app, **options)
    except LifespanError as exc:
        sys.stderr.write(f"tinyws serve: startup failed: {exc}\n")
        return 1
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"tinyws serve: {exc}\n")
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinyws serve", description=__doc__)
    p.add_argument("app", metavar="MODULE:ATTR", help="the ASGI app, such as myapp:app")
    p.add_argument(
        "--factory",
        action="store_true",
        help="MODULE:ATTR is a function that returns the app; call it with no arguments",
    )
    p.add_argument("--host", default=_DEFAULTS.host, help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=_DEFAULTS.port, help="(default %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default=_DEFAULTS.backend)
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default=_DEFAULTS.loop,
        help="event loop on asyncio; auto: uvloop when installed (default %(default)s)",
    )
    p.add_argument("--lifespan", choices=LIFESPAN_MODES, default=_DEFAULTS.lifespan)
    p.add_argument("--log-level", choices=LOG_LEVELS, default=_DEFAULTS.log_level)
    p.add_argument("--root-path", default=_DEFAULTS.root_path, help="mount point behind a proxy")
    p.add_argument(
        "--workers",
        type=int,
        default=_DEFAULTS.workers,
        help="worker processes serving the port; SIGHUP replaces them (default %(default)s)",
    )
    p.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.access_log,
        help="one tinyws.access log line per request and per WebSocket (default %(default)s)",
    )
    _security_options(p)
    limits = p.add_argument_group("limits")
    _limit(limits, "--max-connections", int, "connections at once (more get 503)")
    _limit(limits, "--max-header-bytes", int, "request head size (431 over it)")
    _limit(limits, "--head-timeout", float, "seconds to receive a request head")
    _limit(limits, "--keepalive-timeout", float, "seconds an idle keep-alive connection lives")
    _limit(limits, "--max-body-bytes", _optional_int, "request body size, 413 over it ('none')")
    _limit(limits, "--ws-max-message-bytes", int, "WebSocket message size (1009 over it)")
    _limit(limits, "--ws-ping-interval", _optional_float, "seconds between pings ('none')")
    _limit(limits, "--ws-ping-timeout", float, "seconds to wait for a pong")
    _limit(limits, "--ws-close-timeout", float, "seconds to wait for the client's close")
    _limit(limits, "--shutdown-timeout", float, "grace seconds for in-flight requests")
    _limit(limits, "--backlog", int, "listen backlog")
    limits.add_argument(
        "--ws-per-message-deflate",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.ws_per_message_deflate,
        help="negotiate permessage-deflate when offered",
    )
    return p


def _security_options(p: argparse.ArgumentParser) -> None:
    tls = p.add_argument_group("TLS (https and wss)")
    tls.add_argument("--ssl-certfile", metavar="PEM", help="certificate chain (may hold the key)")
    tls.add_argument("--ssl-keyfile", metavar="PEM", help="private key, if not in the certfile")
    tls.add_argument("--ssl-keyfile-password", metavar="P", help="password of an encrypted key")
    tls.add_argument(
        "--ssl-ca-certs", metavar="PEM", help="CA certificates to verify optional client certs"
    )
    proxy = p.add_argument_group("behind a proxy")
    proxy.add_argument(
        "--proxy-headers",
        action="store_true",
        help="set the client address and scheme from X-Forwarded-For/-Proto and Forwarded",
    )
    proxy.add_argument(
        "--forwarded-allow-ips",
        metavar="LIST",
        default=_DEFAULTS.forwarded_allow_ips,
        help="proxies trusted with those headers: addresses, CIDR networks, '*' "
        "(default %(default)s)",
    )


def _ssl_context(files: list[str | None]) -> SSLContext | None:
    certfile, keyfile, password, ca_certs = files
    if certfile is None:
        if keyfile or password or ca_certs:
            raise ValueError(
                "--ssl-keyfile, --ssl-keyfile-password and --ssl-ca-certs need --ssl-certfile"
            )
        return None
    from tinyws.server.tls import build_ssl_context

    return build_ssl_context(certfile, keyfile, password, ca_certs)


def _limit(group: Any, flag: str, kind: Any, text: str) -> None:
    default = getattr(_DEFAULTS, flag[2:].replace("-", "_"))
    group.add_argument(flag, type=kind, default=default, help=f"{text} (default {default})")


def _optional_int(value: str) -> int | None:
    return None if value.lower() == "none" else int(value)


def _optional_float(value: str) -> float | None:
    return None if value.lower() == "none" else float(value)
