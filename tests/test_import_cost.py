"""tinyws leaves the garbage collector nothing to do: not at import, not per handshake.

A server's young collections and its full collections cost in proportion to
what is tracked and what is cyclic garbage. Importing tinyws must add only
its own module-level objects (no cycles left for the first full collection to
find), and no handshake path — accept, refusal, ``deny``, an ``HTTPError``,
the client's close, ``WebSocketDisconnect`` escaping the endpoint, an
endpoint that crashes, a server without the denial extension — may create
reference cycles: everything a handshake allocates is freed by reference
counting the moment the ASGI call returns. ``benchmarks/import_cost.py``
measures the same on uvicorn (docs/performance-notes.md, "Import and GC").
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from tests.scripts import BENCHMARKS, load_benchmark
from tinyws import App, HTTPError, Request, Response, WebSocket
from tinyws.types import Message, Scope

sys.path.insert(0, str(BENCHMARKS))  # import_cost imports harness and gc_probe

# About twice the ~930 objects tinyws's modules hold today, far below what a
# table or cache built at import (or a dependency pulled in by mistake) adds.
MAX_OBJECTS_ADDED = 2000
ROUNDS = 30


@pytest.fixture(scope="module")
def import_cost() -> ModuleType:
    return load_benchmark("import_cost")


def test_import_adds_few_objects_and_no_cyclic_garbage(import_cost: ModuleType) -> None:
    figures = import_cost.import_figures()  # a fresh interpreter, dependencies imported first
    assert figures["cyclic_garbage"] == 0
    assert 0 < figures["objects_added"] < MAX_OBJECTS_ADDED


def test_import_probe_sees_cyclic_garbage_left_at_import(
    import_cost: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe can fail: a package that leaves a cycle behind is counted."""
    package = tmp_path / "tinyws"
    package.mkdir()
    cycle = "class Node:\n    pass\n\n\nnode = Node()\nnode.me = node\ndel node\n"
    (package / "__init__.py").write_text(cycle)
    monkeypatch.chdir(tmp_path)  # `python -c` looks in the working directory first
    figures = import_cost.import_figures()
    assert figures["cyclic_garbage"] >= 1


class Stamp:
    def process_request_ws(self, req: Request, ws: WebSocket) -> None:
        req.context.stamped = True


def allowed(req: Request) -> bool:
    return bool(req.params["name"] != "reject")


def make_app() -> App:
    app = App(middleware=[Stamp()])

    @app.websocket("/{name}", guard=allowed)
    async def endpoint(ws: WebSocket, name: str) -> None:
        if name == "deny":
            await ws.deny(Response(status=401))
            return
        if name == "http-error":
            raise HTTPError(403)
        await ws.accept()
        if name == "receive":  # WebSocketDisconnect escapes the endpoint
            while True:
                await ws.receive_text()
        if name == "crash":
            raise RuntimeError("endpoint failed")
        if name == "close":
            await ws.close(1000)
            return
        async for message in ws:
            await ws.send(message)

    return app


def scope(path: str, extension: bool) -> Scope:
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
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            (b"sec-websocket-version", b"13"),
        ],
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if extension else {},
        "state": {},
    }


async def handshake(app: App, path: str, extension: bool) -> list[str]:
    """One connection as a server drives it: every receive and send yields to the loop."""
    incoming: list[Message] = [
        {"type": "websocket.disconnect", "code": 1000},
        {"type": "websocket.receive", "text": "hi"},
        {"type": "websocket.connect"},
    ]
    sent: list[str] = []

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint()
        return incoming.pop() if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        await anyio.lowlevel.checkpoint()
        sent.append(message["type"])

    await app(scope(path, extension), receive, send)
    return sent


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    logging.disable(logging.CRITICAL)  # the crash path logs its traceback
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


PATHS = ["accept", "reject", "deny", "http-error", "receive", "crash", "close"]


@pytest.mark.anyio
@pytest.mark.usefixtures("quiet_logs")
@pytest.mark.parametrize("extension", [True, False], ids=["http-denial", "close-fallback"])
@pytest.mark.parametrize("name", PATHS)
async def test_handshake_creates_no_reference_cycles(name: str, extension: bool) -> None:
    app = make_app()
    first = await handshake(app, f"/{name}", extension)  # warm: caches fill once
    assert first, f"/{name} sent nothing"
    gc.collect()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            assert await handshake(app, f"/{name}", extension) == first
        found = gc.collect()
    finally:
        gc.enable()
    assert found == 0, f"/{name}: {found / ROUNDS:.1f} objects of cyclic garbage per handshake"


@pytest.mark.anyio
@pytest.mark.usefixtures("collector_off")
async def test_a_cycle_made_by_a_handshake_is_counted() -> None:
    """The check above can fail: an endpoint that keeps its exception makes a cycle."""
    app = App()

    @app.websocket("/keep")
    async def keep(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_text()
            await ws.receive_text()
        except Exception as error:
            kept = error  # the frame now holds its own traceback: a cycle
            assert kept is not None

    await handshake(app, "/keep", True)
    assert gc.collect() > 0


def test_server_probe_counts_collections_on_uvicorn(
    import_cost: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cost.json"
    args = ["-n", "60", "--rounds", "1", "--paths", "reject", "--variants", "raw,tinyws"]
    assert import_cost.main([*args, "--json", str(out)]) == 0
    report: dict[str, Any] = json.loads(out.read_text())
    for variant in ("raw", "tinyws"):
        figures = report["figures"][variant]["reject"]
        assert figures["handshakes"] == 60
        assert len(figures["gc_collections_per_1000"]) == 3
        assert figures["gc_cpu_us"] >= 0
    assert "| tinyws | reject |" in capsys.readouterr().out
