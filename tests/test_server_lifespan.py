"""Lifespan, startup failure, the command line and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from tests.server_helpers import exchange, read_until_close, running, upgrade_head
from tinyws.errors import LifespanError
from tinyws.server import Server
from tinyws.types import Message, Receive, Scope, Send

ROOT = Path(__file__).resolve().parent.parent


def lifespan_app(events: list[str], fail: str | None = None):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["pool"] = "P"
                    reply: Message = {"type": "lifespan.startup.complete"}
                    if fail is not None:
                        reply = {"type": "lifespan.startup.failed", "message": fail}
                    await send(reply)
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = repr(sorted(scope["state"].items())).encode()
        scope["state"]["mutated"] = True  # a shallow copy: must not leak
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.anyio
async def test_startup_state_and_shutdown() -> None:
    events: list[str] = []
    async with running(lifespan_app(events), lifespan="on") as server:
        assert events == ["lifespan.startup"]
        for _ in range(2):
            reply = await exchange(
                server, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            assert reply.endswith(b"[('pool', 'P')]")
    assert events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["on", "auto"])
async def test_startup_failure_raises(mode: str) -> None:
    server = Server(lifespan_app([], fail="no database"), port=0, lifespan=mode)
    with pytest.raises(LifespanError, match="no database"):
        await server.run()


async def http_only(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        raise RuntimeError("only HTTP here")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body"})


@pytest.mark.anyio
async def test_auto_mode_tolerates_apps_without_lifespan() -> None:
    async with running(http_only, lifespan="auto") as server:
        reply = await exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 204 ")


@pytest.mark.anyio
async def test_on_mode_requires_lifespan() -> None:
    with pytest.raises(LifespanError):
        await Server(http_only, port=0, lifespan="on").run()


@pytest.mark.anyio
async def test_off_mode_never_calls_lifespan() -> None:
    events: list[str] = []
    async with running(lifespan_app(events), lifespan="off") as server:
        reply = await exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 500 ")  # no state in the scope: the app fails
    assert events == []


APP_SOURCE = textwrap.dedent(
    """
    import os

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if os.environ.get("CLIAPP_FAIL"):
                        await send({"type": "lifespan.startup.failed", "message": "db down"})
                        return
                    await send({"type": "lifespan.startup.complete"})
                else:
                    print("shutdown ran", flush=True)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    """
)


def start_cli(tmp_path: Path, *args: str, fail: bool = False) -> subprocess.Popen[str]:
    (tmp_path / "cliapp.py").write_text(APP_SOURCE)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}
    if fail:
        env["CLIAPP_FAIL"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "tinyws", "serve", "cliapp:app", "--host", "127.0.0.1", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cli_startup_failure_exits_1(tmp_path: Path, backend: str) -> None:
    proc = start_cli(tmp_path, "--port", "0", "--backend", backend, fail=True)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "db down" in err


def test_cli_bad_app_spec_exits_2() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "tinyws", "serve", "nocolon"],
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert "MODULE:ATTR" in bad.stderr


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_closes_websockets_1001_and_exits_0(
    tmp_path: Path, backend: str, signum: int
) -> None:
    port = free_port()
    proc = start_cli(tmp_path, "--port", str(port), "--backend", backend)
    try:
        data = anyio.run(_signal_scenario, port, proc, signum)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert data.startswith(b"HTTP/1.1 101 ")
    assert b"\x88\x02\x03\xe9" in data  # close frame, code 1001
    assert proc.returncode == 0, err
    assert "shutdown ran" in out


async def _signal_scenario(port: int, proc: subprocess.Popen[str], signum: int) -> bytes:
    with anyio.fail_after(20):
        while True:
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
                break
            except OSError:
                await anyio.sleep(0.05)
    async with stream:
        await stream.send(upgrade_head())
        data = await stream.receive()
        proc.send_signal(signum)
        with anyio.fail_after(10):
            while b"\x88" not in data:
                data += await stream.receive()
        await stream.send(b"\x88\x82\0\0\0\0\x03\xe9")  # answer the close (masked)
        return data + await read_until_close(stream)


@pytest.mark.anyio
async def test_shutdown_lets_in_flight_responses_finish_then_cancels_stragglers() -> None:
    cancelled = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/stuck":
            try:
                await anyio.sleep_forever()
            finally:
                cancelled.set()
        await anyio.sleep(0.3)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})

    server = Server(app, port=0, lifespan="off", shutdown_timeout=1.0)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        slow = await anyio.connect_tcp("127.0.0.1", server.port)
        stuck = await anyio.connect_tcp("127.0.0.1", server.port)
        await slow.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        await stuck.send(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n")
        await anyio.sleep(0.1)
        server.shutdown()
        assert (await read_until_close(slow)).endswith(b"finished")
        assert await read_until_close(stuck) == b""
        with anyio.fail_after(5):
            await cancelled.wait()
        await slow.aclose()
        await stuck.aclose()
