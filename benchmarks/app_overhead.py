"""What each framework adds to a handshake, without a server: µs per ASGI call.

Every app in ``benchmarks/apps`` is called the way a server calls it — a fresh
scope offering the "websocket.http.response" extension, ``receive()`` giving
``websocket.connect`` and then the client's close, ``send()`` taking what the
app answers — on one asyncio loop, after lifespan startup. The figure is the
framework's own Python work on the handshake path; a real server's cost comes
on top (see ``run.py``). Logging is off while timing. What each app sent is
checked, so an app that stops accepting or refusing fails the run instead of
looking fast. Each figure is the fastest of the samples, as ``timeit`` gives:
noise only ever adds time.

    python benchmarks/app_overhead.py [-n 3000] [--repeats 7] [--apps raw,tinyws] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tinyws.types import ASGIApp, Message, Scope

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))

# name -> (module in benchmarks/apps, modules it needs)
APPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "raw": ("raw", ()),
    "tinyws": ("tinyws_app", ()),
    "starlette": ("starlette_app", ("starlette",)),
    "fastapi": ("fastapi_app", ("fastapi",)),
    "falcon": ("falcon_app", ("falcon",)),
    "litestar": ("litestar_app", ("litestar",)),
}
PATHS = ("accept", "reject")
CONNECT: Message = {"type": "websocket.connect"}
CLIENT_CLOSE: Message = {"type": "websocket.disconnect", "code": 1000}
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
]


def scope(path: str) -> Scope:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": HEADERS,
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
        "state": {},
    }


async def handshake(app: ASGIApp, path: str, sent: list[Message]) -> None:
    incoming = [CLIENT_CLOSE, CONNECT]

    async def receive() -> Message:
        return incoming.pop() if incoming else CLIENT_CLOSE

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope(f"/{path}"), receive, send)


def check(name: str, path: str, sent: list[Message]) -> None:
    """The app answered as a server would need: 101 on accept, a refusal on reject."""
    kinds = [message["type"] for message in sent]
    if path == "accept":
        ok = kinds[:1] == ["websocket.accept"]
    else:
        start = sent[0] if sent else {}
        denied = start.get("type") == "websocket.http.response.start" and start["status"] == 403
        ok = denied or kinds == ["websocket.close"]
    if not ok:
        raise RuntimeError(f"{name} /{path} answered {sent!r}")


async def lifespan(app: ASGIApp, event: str) -> None:
    events: list[Message] = [{"type": f"lifespan.{event}"}]

    async def receive() -> Message:
        return events.pop() if events else await asyncio.Future()

    async def send(message: Message) -> None:
        if message["type"].endswith(".failed"):
            raise RuntimeError(f"lifespan {event} failed: {message!r}")

    task = asyncio.ensure_future(app({"type": "lifespan", "state": {}}, receive, send))
    await asyncio.sleep(0.01)  # startup handlers run; the app then waits for the next event
    task.cancel()


async def per_call_us(app: ASGIApp, path: str, n: int) -> float:
    sent: list[Message] = []
    started = time.thread_time_ns()  # CPU of this thread only: another process adds no noise
    for _ in range(n):
        sent.clear()
        await handshake(app, path, sent)
    return (time.thread_time_ns() - started) / n / 1000


async def measure(names: list[str], n: int, repeats: int) -> dict[str, dict[str, float]]:
    apps: dict[str, ASGIApp] = {}
    for name in names:
        apps[name] = importlib.import_module(APPS[name][0]).app
        await lifespan(apps[name], "startup")
        for path in PATHS:
            sent: list[Message] = []
            await handshake(apps[name], path, sent)
            check(name, path, sent)
            await per_call_us(apps[name], path, max(n // 10, 1))  # warm up
    samples: dict[str, dict[str, list[float]]] = {name: {p: [] for p in PATHS} for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            for path in PATHS:
                samples[name][path].append(await per_call_us(apps[name], path, n))
    return {
        name: {path: min(values) for path, values in by_path.items()}
        for name, by_path in samples.items()
    }


def table(results: dict[str, dict[str, float]]) -> str:
    raw = results.get("raw")
    lines = [
        "| app | accept µs | reject µs | accept over raw | reject over raw |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, by_path in results.items():
        cells = [f"{by_path[p]:.2f}" for p in PATHS]
        extra = [f"{by_path[p] - raw[p]:+.2f}" if raw else "—" for p in PATHS]
        lines.append(f"| {name} | {' | '.join(cells)} | {' | '.join(extra)} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="handshakes per sample (3000)")
    parser.add_argument("--repeats", type=int, default=7, help="samples per app and path (7)")
    parser.add_argument("--apps", default=",".join(APPS), help="comma-separated (all)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    opts = parser.parse_args(argv)
    names = [name.strip() for name in opts.apps.split(",") if name.strip()]
    unknown = [name for name in names if name not in APPS]
    if unknown or opts.n < 1 or opts.repeats < 1:
        parser.error(f"unknown apps {unknown}" if unknown else "-n and --repeats must be >= 1")
    runnable = []
    for name in names:
        missing = [m for m in APPS[name][1] if importlib.util.find_spec(m) is None]
        if missing:
            print(f"skip {name}: cannot import {missing[0]!r}", file=sys.stderr)
        else:
            runnable.append(name)
    # Falcon logs every refusal: the figure is handshake work, not log output.
    logging.disable(logging.CRITICAL)
    try:
        results = asyncio.run(measure(runnable, opts.n, opts.repeats))
    finally:
        logging.disable(logging.NOTSET)
    print(table(results))
    if opts.json:
        report: dict[str, Any] = {"n": opts.n, "repeats": opts.repeats, "us": results}
        Path(opts.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
