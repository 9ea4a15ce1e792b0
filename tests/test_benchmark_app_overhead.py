"""benchmarks/app_overhead.py stays runnable and refuses an app that answers wrongly."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts import load_benchmark
from tinyws.types import Message, Receive, Scope, Send


@pytest.fixture(scope="module")
def overhead() -> ModuleType:
    return load_benchmark("app_overhead")


def test_times_raw_and_tinyws_and_writes_json(
    overhead: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "overhead.json"
    args = ["-n", "20", "--repeats", "2", "--apps", "raw,tinyws", "--json", str(out)]
    assert overhead.main(args) == 0
    report = json.loads(out.read_text())
    assert (report["n"], report["repeats"]) == (20, 2)
    assert set(report["us"]) == {"raw", "tinyws"}
    for by_path in report["us"].values():
        assert set(by_path) == {"accept", "reject"}
        assert all(value > 0 for value in by_path.values())
    assert "| tinyws |" in capsys.readouterr().out


def test_unknown_app_is_a_usage_error(overhead: ModuleType) -> None:
    with pytest.raises(SystemExit) as info:
        overhead.main(["--apps", "raw,nosuch"])
    assert info.value.code == 2


async def accepts_everything(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_app_that_does_not_refuse_fails_the_check(overhead: ModuleType) -> None:
    sent: list[Message] = []
    await overhead.handshake(accepts_everything, "reject", sent)
    assert sent == [{"type": "websocket.accept"}]
    with pytest.raises(RuntimeError, match="wrong /reject answered"):
        overhead.check("wrong", "reject", sent)
    overhead.check("wrong", "accept", sent)  # the same answer is right for /accept
