"""benchmarks/core.py stays runnable, and fails loudly when the core's bytes go wrong."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.scripts import load_benchmark


@pytest.fixture(scope="module")
def core() -> ModuleType:
    return load_benchmark("core")


def test_runs_every_scenario_and_writes_json(
    core: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "core.json"
    assert core.main(["-n", "50", "--repeats", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["n"], report["repeats"]) == (50, 2)
    assert set(report["results"]) == {"accept", "reject", "http"}
    for result in report["results"].values():
        assert len(result["runs_us"]) == 2
        assert 0 < result["min_us"] <= result["median_us"]
    printed = capsys.readouterr().out
    assert "accept" in printed and "median" in printed


def test_a_wrong_accept_key_fails_loudly(core: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinyws.server.responses import accept_response

    def wrong_key(key: bytes, *args: Any) -> bytes:
        return accept_response(b"x" + key[1:], *args)

    monkeypatch.setattr("tinyws.server.ws_session.accept_response", wrong_key)
    with pytest.raises(core.CoreBroken, match="Sec-WebSocket-Accept"):
        core.main(["-n", "5", "--repeats", "1", "--scenario", "accept"])


def test_a_missing_close_reply_fails_loudly(
    core: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinyws.server.connection import ServerConnection

    real = ServerConnection.take_output
    calls = []

    def drop_the_second(self: ServerConnection) -> bytes:
        calls.append(1)
        data = real(self)
        return data if len(calls) % 2 else b""

    monkeypatch.setattr(ServerConnection, "take_output", drop_the_second)
    with pytest.raises(core.CoreBroken, match="close frame"):
        core.main(["-n", "5", "--repeats", "1", "--scenario", "accept"])


def test_a_denial_with_the_wrong_body_fails_loudly(
    core: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "DENIAL_END", {**core.DENIAL_END, "body": b"{}"})
    with pytest.raises(core.CoreBroken, match="denial"):
        core.main(["-n", "5", "--repeats", "1", "--scenario", "reject"])
