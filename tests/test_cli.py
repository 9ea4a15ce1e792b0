"""The ``tinyws`` command as a user types it: each case runs the real command in a child process.

Every run is bounded by ``TIMEOUT``: a command that should have refused to
start but serves instead fails the test (``subprocess.run`` kills it) rather
than hanging it. Servers that are meant to start bind port 0 or a free port.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.abc
import pytest
from wsproto.events import AcceptConnection, CloseConnection

from tests.server_helpers import WSClient
from tests.servers import HOST, run_server

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


def tinyws(
    *args: str, cwd: Path = ROOT, pythonpath: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tinyws ARGS``; the repository stays importable from any ``cwd``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (*pythonpath, ROOT))}
    return subprocess.run(
        [sys.executable, "-m", "tinyws", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


# --- tinyws itself ---------------------------------------------------------------


def test_version_prints_the_installed_version() -> None:
    done = tinyws("--version")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"tinyws {importlib.metadata.version('tinyws')}\n"


def test_no_command_is_a_usage_error_on_stderr() -> None:
    done = tinyws()
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("usage: tinyws <command> [options]\n")
    assert "tinyws --version" in done.stderr


def test_unknown_command_is_a_usage_error_on_stderr() -> None:
    done = tinyws("server", "app:app")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("tinyws: unknown command 'server'\n\nusage: tinyws")


def test_help_goes_to_stdout() -> None:
    done = tinyws("--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: tinyws <command> [options]\n")


def test_serve_without_an_app_is_a_usage_error_on_stderr() -> None:
    done = tinyws("serve")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("usage: tinyws serve")
    assert "the following arguments are required: MODULE:ATTR" in done.stderr


# --- tinyws serve: what MODULE:ATTR must be ------------------------------------------

USER_MODULE = """\
from tinyws import App

number = 42
def create_app():
    return App()
class Service:
    async def __call__(self, scope, receive, send): ...
def plain(scope, receive, send): ...
async def two(scope, receive): ...
def broken_factory():
    raise RuntimeError("no database")
def wrong_factory():
    return "app"
"""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["userapp:number"], "'userapp:number' is not an ASGI app: it is an int (42)"),
        (
            ["userapp:create_app"],
            "'userapp:create_app' is not an ASGI app: it is a callable taking no arguments, "
            "create_app(); if it makes the app, add --factory",
        ),
        (
            ["userapp:Service"],
            "'userapp:Service' is not an ASGI app: it is a class, Service; serve an instance, "
            "or add --factory to call it",
        ),
        (
            ["userapp:plain"],
            "'userapp:plain' is not an ASGI app: it is a plain def callable, "
            "plain(scope, receive, send); an ASGI app is async def",
        ),
        (
            ["userapp:two"],
            "'userapp:two' is not an ASGI app: it is a callable two(scope, receive), "
            "not (scope, receive, send)",
        ),
        (
            ["userapp:number", "--factory"],
            "'userapp:number' is not callable, so --factory cannot call it: an int (42)",
        ),
        (
            ["userapp:wrong_factory", "--factory"],
            "'userapp:wrong_factory' is not an ASGI app: --factory returned a str ('app')",
        ),
        (
            ["userapp:broken_factory", "--factory"],
            "'userapp:broken_factory' --factory call failed (userapp.py:11): "
            "RuntimeError: no database",
        ),
        (["userapp:missing"], "cannot load 'userapp:missing': userapp has no 'missing'"),
        (["no_such_module_xyz:app"], "cannot import 'no_such_module_xyz': No module named "),
        (["nocolon"], "cannot load 'nocolon': expected MODULE:ATTR, such as 'myapp:app'"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else "",
)
def test_serve_refuses_what_is_not_an_app(args: list[str], line: str, tmp_path: Path) -> None:
    (tmp_path / "userapp.py").write_text(USER_MODULE)
    done = tinyws("serve", *args, "--port", "0", "--lifespan", "off", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"tinyws serve: {line}")
    assert done.stderr.count("\n") == 1  # one line, no traceback
    assert done.stdout == ""


BROKEN_MODULES = {
    "syntax": ("x = 1\ndef f(:\n    pass\n", "broken.py:2): SyntaxError: invalid syntax"),
    "raises": (
        "import os\n\nraise RuntimeError('no database')\n",
        "broken.py:3): RuntimeError: no database",
    ),
    "dependency": (
        "import json\nimport no_such_dependency_xyz\n",
        "broken.py:2): ModuleNotFoundError: No module named 'no_such_dependency_xyz'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_MODULES))
def test_a_module_that_fails_to_import_is_one_line(case: str, tmp_path: Path) -> None:
    source, where = BROKEN_MODULES[case]
    (tmp_path / "broken.py").write_text(source)
    done = tinyws("serve", "broken:app", "--port", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"tinyws serve: cannot import 'broken' ({where}\n"


def test_the_traceback_shows_at_debug(tmp_path: Path) -> None:
    source, where = BROKEN_MODULES["raises"]
    (tmp_path / "broken.py").write_text(source)
    done = tinyws("serve", "broken:app", "--port", "0", "--log-level", "debug", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("Traceback (most recent call last):\n")
    assert 'broken.py", line 3, in <module>' in done.stderr
    assert done.stderr.endswith(f"tinyws serve: cannot import 'broken' ({where}\n")


@pytest.mark.parametrize("command", ["serve tests.apps.echo:app", "bench ws://127.0.0.1:9/"])
def test_backend_trio_without_trio_names_the_extra(command: str, tmp_path: Path) -> None:
    # A module named trio that fails to import stands for a machine without it.
    (tmp_path / "trio.py").write_text("raise ImportError(\"No module named 'trio'\")\n")
    done = tinyws(*command.split(), "--backend", "trio", pythonpath=(tmp_path,))
    assert done.returncode == 2
    name = command.split(maxsplit=1)[0]
    error = "" if name == "serve" else "error: "
    assert done.stderr == (
        f"tinyws {name}: {error}--backend trio needs trio: pip install 'tinyws[trio]'\n"
    )


def test_the_trio_extra_is_declared() -> None:
    requires = importlib.metadata.requires("tinyws") or []
    assert any(r.startswith("trio") and 'extra == "trio"' in r for r in requires), requires


# --- tinyws serve --factory, served for real ---------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_factory_is_called_to_get_the_app(backend: str) -> None:
    app = "tests.apps.factory:create_app"
    with run_server("tinyws", app, ["--factory", "--backend", backend]) as server:
        greeting = anyio.run(_greeting, server.port, backend=backend)
    assert greeting == "made by the factory"


async def _greeting(port: int) -> str:
    async with await anyio.connect_tcp(HOST, port) as stream:
        client = WSClient(stream)
        assert isinstance(await client.handshake("/"), AcceptConnection)
        message = await client.receive_message()
        close = await client.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1000
    assert isinstance(message, str)
    return message


# --- tinyws serve --access-log / --no-access-log ----------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("flag", ["--access-log", "--no-access-log"])
def test_access_log_flags(flag: str, backend: str) -> None:
    with run_server("tinyws", "tests.apps.echo:app", [flag, "--backend", backend]) as server:
        anyio.run(_get, server.port, backend=backend)
        log = _wait_for(
            server.log, '"GET /logged?x=1 HTTP/1.1" 404', present=flag == "--access-log"
        )
    line = re.compile(r'INFO: 127\.0\.0\.1:\d+ - "GET /logged\?x=1 HTTP/1\.1" 404')
    found = [entry for entry in log.splitlines() if line.fullmatch(entry)]
    assert len(found) == (1 if flag == "--access-log" else 0), log


async def _get(port: int) -> None:
    async with await anyio.connect_tcp(HOST, port) as stream:
        await stream.send(b"GET /logged?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        with anyio.fail_after(10):
            while chunk := await _receive(stream):
                data += chunk
    assert data.startswith(b"HTTP/1.1 404 ")


async def _receive(stream: anyio.abc.ByteReceiveStream) -> bytes:
    try:
        return await stream.receive()
    except anyio.EndOfStream:
        return b""


def _wait_for(read: Callable[[], str], text: str, *, present: bool) -> str:
    """The log once it shows ``text`` (bounded); without ``present``, after a short grace."""
    deadline = time.monotonic() + (5 if present else 0.5)
    while text not in (log := read()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log
