"""benchmarks/instructions_ab.py counts the same instructions twice in one tree,
and says clearly when it cannot count."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts import BENCHMARKS, load_benchmark

TREE = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def instructions_ab() -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # it imports harness as a sibling
    return load_benchmark("instructions_ab")


def test_a_tree_against_itself_is_a_ratio_of_one(
    instructions_ab: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "instructions.json"
    args = ["--baseline-tree", str(TREE), "--only", "core:reject", "--short", "20"]
    assert instructions_ab.main([*args, "--long", "80", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["core:reject"]
    # The sans-IO core refuses a handshake in tens of thousands of instructions;
    # the same code counted twice differs by hash-seeded noise at most.
    assert 20_000 < figures["before"] < 1_000_000
    assert figures["after"] / figures["before"] == pytest.approx(1.0, abs=0.02)
    assert "| core:reject |" in capsys.readouterr().out


def test_a_tree_without_the_benchmarks_fails_naming_it(
    instructions_ab: ModuleType, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match=r"core:accept in .*failed"):
        instructions_ab.main(["--baseline-tree", str(tmp_path), "--only", "core:accept"])


@pytest.mark.parametrize(
    "args",
    [["--only", "core:nosuch"], ["--short", "50", "--long", "50"], ["--short", "0"]],
)
def test_bad_arguments_are_usage_errors(instructions_ab: ModuleType, args: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        instructions_ab.main(["--baseline-tree", str(TREE), *args])
    assert info.value.code == 2


def test_the_whole_server_is_counted_per_handshake(
    instructions_ab: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "server.json"
    args = ["--baseline-tree", str(TREE), "--only", "server:raw:reject"]
    assert instructions_ab.main([*args, "--short", "20", "--long", "80", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())["server:raw:reject"]
    # A refused handshake through the whole server (accept, head, app, denial,
    # close) is a few hundred thousand instructions; short runs of the same
    # tree agree only to within how the loop batched the connections.
    assert 50_000 < figures["before"] < 3_000_000
    assert 0.6 < figures["after"] / figures["before"] < 1.6
