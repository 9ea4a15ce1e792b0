"""Server settings and command-line parsing (no sockets)."""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps import echo
from tests.server_helpers import exchange, running
from tinyws.server import Config
from tinyws.server import cli as server_cli
from tinyws.server.app_loader import asgi_problem, load_app
from tinyws.types import Receive, Scope, Send


def test_defaults_are_the_documented_ones() -> None:
    config = Config()
    assert (config.host, config.port, config.backend, config.lifespan) == (
        "127.0.0.1",
        8000,
        "asyncio",
        "auto",
    )
    assert config.max_header_bytes == 16384
    assert config.max_body_bytes == 1 << 20
    assert config.ws_max_message_bytes == 16 << 20
    assert (config.head_timeout, config.keepalive_timeout) == (10.0, 5.0)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (20.0, 20.0)
    assert config.max_connections == 1000
    assert config.access_log is True  # on by default, as in uvicorn (SPEC §9)


@pytest.mark.parametrize(
    "options",
    [
        {"backend": "curio"},
        {"lifespan": "maybe"},
        {"log_level": "loud"},
        {"root_path": "/api/"},
        {"port": 70000},
        {"max_connections": 0},
        {"head_timeout": 0},
        {"ws_ping_interval": -1},
        {"max_body_bytes": -1},
    ],
)
def test_invalid_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Config(**options)


def test_replace_validates_again() -> None:
    assert Config().replace(port=0).port == 0
    with pytest.raises(ValueError):
        Config().replace(backend="nope")


@pytest.fixture
def keep_signal_handlers() -> Iterator[None]:
    """The CLI ignores SIGINT/SIGTERM for the rest of its process; not for pytest's."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.usefixtures("keep_signal_handlers")
def test_cli_options_map_to_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(app: object, **options: Any) -> None:
        seen.update(options, app=app)

    monkeypatch.setattr("tinyws.server.server.serve", fake_serve)
    argv = [
        "tests.apps.echo:app",
        "--port", "9001",
        "--backend", "trio",
        "--max-body-bytes", "none",
        "--ws-ping-interval", "none",
        "--no-ws-per-message-deflate",
        "--access-log",
    ]  # fmt: skip
    assert server_cli.main(argv) == 0
    assert seen["app"] is echo.app
    Config(**{k: v for k, v in seen.items() if k != "app"})  # every flag is a Config field
    assert seen["port"] == 9001
    assert seen["backend"] == "trio"
    assert seen["max_body_bytes"] is None
    assert seen["ws_ping_interval"] is None
    assert seen["ws_per_message_deflate"] is False
    assert seen["access_log"] is True


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "cannot load 'nocolon'"),
        ("no_such_module_xyz:app", "cannot import 'no_such_module_xyz'"),
        ("tinyws.server:nothing", "cannot load 'tinyws.server:nothing'"),
        ("tinyws.server.config:Config", "is not an ASGI app: it is a class, Config"),
    ],
)
def test_cli_refuses_unloadable_apps(
    spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server_cli.main([spec]) == 2
    assert message in capsys.readouterr().err


def test_load_app_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "here_app_mod.py").write_text(
        "class box:\n    async def app(scope, receive, send): ...\n    app = staticmethod(app)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    loaded = load_app("here_app_mod:box.app")
    assert getattr(loaded, "__qualname__", None) == "box.app"


class _Handler:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


async def _app(scope: Scope, receive: Receive, send: Send) -> None: ...


async def _app_with_context(config: object, scope: Scope, receive: Receive, send: Send) -> None: ...


@pytest.mark.parametrize(
    "candidate",
    [_app, _Handler(), functools.partial(_app_with_context, None), max],
    ids=["function", "instance", "partial", "no-signature"],
)
def test_asgi_apps_pass_the_check(candidate: object) -> None:
    assert asgi_problem(candidate) is None


@pytest.mark.anyio
async def test_access_log_line(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    caplog.set_level(logging.INFO, logger="tinyws.access")
    async with running(app, access_log=True) as server:
        await exchange(server, b"GET /tea?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    lines = [r.getMessage() for r in caplog.records if r.name == "tinyws.access"]
    assert len(lines) == 1
    assert lines[0].endswith('"GET /tea?x=1 HTTP/1.1" 418')
