"""The `loop` option: which event loop `serve()` and `tinyws serve` run on."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from wsproto.events import AcceptConnection, CloseConnection

from tests.server_helpers import WSClient
from tests.servers import HOST, run_server
from tinyws.server import Config
from tinyws.server import cli as server_cli

ECHO = "tests.apps.echo:app"


@pytest.fixture
def no_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import uvloop` fail, as on a machine without the fast extra."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


@pytest.fixture
def cli_signals() -> Iterator[None]:
    """The CLI ignores SIGINT/SIGTERM once it gets as far as serving; restore them."""
    import signal

    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_auto_is_the_default_and_picks_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert Config().loop == "auto"
    assert Config().event_loop() == "uvloop"
    assert Config(loop="asyncio").event_loop() == "asyncio"
    assert Config(loop="uvloop").event_loop() == "uvloop"


@pytest.mark.usefixtures("no_uvloop")
def test_auto_without_uvloop_is_the_stdlib_loop() -> None:
    assert Config().event_loop() == "asyncio"


def test_trio_ignores_auto_and_refuses_uvloop() -> None:
    assert Config(backend="trio").event_loop() == "trio"
    with pytest.raises(ValueError, match="needs the asyncio backend"):
        Config(backend="trio", loop="uvloop")


@pytest.mark.usefixtures("no_uvloop")
def test_uvloop_missing_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"pip install 'tinyws\[fast\]'"):
        Config(loop="uvloop")


def test_unknown_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="loop must be one of auto, asyncio, uvloop"):
        Config(loop="tokio")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "trio", "--loop", "uvloop"], "needs the asyncio backend"),
        (["--port", "70000"], "port must be 0-65535"),
    ],
)
def test_cli_bad_combination_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server_cli.main([ECHO, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: tinyws serve")
    assert message in err


@pytest.mark.usefixtures("no_uvloop")
def test_cli_uvloop_missing_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert server_cli.main([ECHO, "--loop", "uvloop"]) == 2
    assert "tinyws[fast]" in capsys.readouterr().err


def test_cli_unknown_loop_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        server_cli.main([ECHO, "--loop", "tokio"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tokio'" in capsys.readouterr().err


@pytest.mark.usefixtures("cli_signals")
def test_cli_passes_the_loop_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("tinyws.server.server.serve", lambda app, **options: seen.update(options))
    assert server_cli.main([ECHO, "--loop", "asyncio"]) == 0
    assert seen["loop"] == "asyncio"


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--loop", "uvloop"], "(asyncio + uvloop)"),
        (["--loop", "asyncio"], "(asyncio)"),
        (["--backend", "trio"], "(trio)"),
    ],
)
def test_server_runs_on_the_chosen_loop(args: list[str], shown: str) -> None:
    if "uvloop" in args:
        pytest.importorskip("uvloop")
    with run_server("tinyws", ECHO, args) as server:
        anyio.run(_echo_once, server.port)
        log = server.log()
    assert f"serving on http://{HOST}:{server.port} {shown}" in log


async def _echo_once(port: int) -> None:
    async with await anyio.connect_tcp(HOST, port) as stream:
        client = WSClient(stream)
        assert isinstance(await client.handshake("/"), AcceptConnection)
        await client.send_text("hello")
        assert await client.receive_message() == "hello"
        await client.send(CloseConnection(code=1000))
        close = await client.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1000
