"""The benchmark suite's own logic: /proc readings, target verdicts, rendering."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, cast

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import harness  # noqa: E402
import idle_memory  # noqa: E402
import render  # noqa: E402
import run  # noqa: E402

from tinyws.rfc6455 import accept_key  # noqa: E402


def fake_process(
    proc: Path, pid: int, pgrp: int, threads: dict[int, int | None], **kw: int
) -> None:
    """A /proc/PID entry: stat with utime/stime/cutime/cstime, status, task schedstats."""
    utime, stime = kw.get("utime", 10), kw.get("stime", 5)
    cutime, cstime = kw.get("cutime", 0), kw.get("cstime", 0)
    base = proc / str(pid)
    (base / "task").mkdir(parents=True)
    fields = ["S", "1", str(pgrp), str(pgrp), "0", "-1", "0", "0", "0", "0", "0"]
    fields += [str(utime), str(stime), str(cutime), str(cstime), "20", "0"]
    (base / "stat").write_text(f"{pid} (a (weird) name) {' '.join(fields)}\n")
    (base / "status").write_text(f"Name:\tx\nVmRSS:\t  {kw.get('rss', 1000)} kB\n")
    for tid, ns in threads.items():
        (base / "task" / str(tid)).mkdir()
        if ns is not None:
            (base / "task" / str(tid) / "schedstat").write_text(f"{ns} 123 4\n")


def test_snapshot_sums_every_thread_of_the_group_only(tmp_path: Path) -> None:
    fake_process(tmp_path, 100, 100, {100: 1_000, 101: 2_000}, rss=3000)
    fake_process(tmp_path, 102, 100, {102: 4_000}, rss=500)  # a worker
    fake_process(tmp_path, 200, 200, {200: 99_999})  # someone else
    (tmp_path / "self").mkdir()
    snap = harness.cpu_snapshot(100, tmp_path)
    assert snap.tasks == {(100, 100): 1_000, (100, 101): 2_000, (102, 102): 4_000}
    assert snap.ticks == 30
    assert sorted(harness.group_pids(100, tmp_path)) == [100, 102]
    assert harness.group_memory_kib(100, tmp_path) == 3500


def test_snapshot_without_schedstat(tmp_path: Path) -> None:
    fake_process(tmp_path, 100, 100, {100: None}, utime=7, stime=3)
    snap = harness.cpu_snapshot(100, tmp_path)
    assert snap.tasks is None
    assert snap.ticks == 10


def snapshot(tasks: dict[tuple[int, int], int] | None, ticks: int = 0, reaped: int = 0) -> Any:
    return harness.CpuSnapshot(tasks, ticks, reaped)


def test_cpu_between_in_nanoseconds() -> None:
    before = snapshot({(1, 1): 1_000_000, (1, 2): 0})
    after = snapshot({(1, 1): 3_000_000, (1, 2): 500_000, (1, 3): 250_000})  # a new thread
    seconds, source = harness.cpu_between(before, after)
    assert source == "schedstat"
    assert seconds == pytest.approx(0.00275)


@pytest.mark.parametrize(
    ("after_tasks", "after_reaped"),
    [({(1, 1): 5}, 0), ({(1, 1): 5, (1, 2): 9}, 2), (None, 0)],
    ids=["a-thread-ended", "a-child-was-reaped", "no-schedstat"],
)
def test_cpu_between_falls_back_to_ticks(
    after_tasks: dict[tuple[int, int], int] | None, after_reaped: int
) -> None:
    before = snapshot({(1, 1): 0, (1, 2): 0}, ticks=100)
    after = snapshot(after_tasks, ticks=150, reaped=after_reaped)
    seconds, source = harness.cpu_between(before, after)
    assert source == "ticks"
    assert seconds == pytest.approx(50 / os.sysconf("SC_CLK_TCK"))


def test_commands() -> None:
    floor = harness.SERVERS["floor"].command
    assert "--reject" in floor("raw:app", 1, harness.Launch(path="reject"))
    assert "--reject" not in floor("raw:app", 1, harness.Launch(path="accept"))
    tinyws = harness.SERVERS["tinyws-trio"].command("raw:app", 1, harness.Launch(connections=5050))
    assert tinyws[tinyws.index("--max-connections") + 1] == "6050"
    assert tinyws[tinyws.index("--backend") + 1] == "trio"
    assert "--max-connections" not in harness.SERVERS["tinyws"].command("a:b", 1, harness.Launch())
    assert harness.unavailable("floor", "tinyws") == "floor serves only the raw app"


def test_the_default_grid() -> None:
    opts = run.make_parser().parse_args([])
    targets = {(t.server, t.app) for t in run.select_targets(opts)}
    assert ("floor", "raw") in targets
    assert not {t for t in targets if t[0] == "floor" and t[1] != "raw"}
    assert {("tinyws-uvloop", "raw"), ("tinyws-uvloop", "tinyws")} <= targets
    assert ("uvicorn-wsproto", "fastapi") in targets
    assert ("granian", "fastapi") not in targets
    assert not {t for t in targets if t[0] == "tinyws-trio"}


def row(cpu: float, p50: float = 100.0) -> render.Row:
    return render.Row(cpu, 1000.0, p50, 2 * p50, 3, 0)


def test_verdicts() -> None:
    rows: dict[render.Key, render.Row] = {}
    table = [  # server, app, accept CPU, reject CPU, accept p50, reject p50
        ("uvicorn-wsproto", "raw", 250, 200, 100, 100),
        ("uvicorn", "raw", 260, 270, 700, 700),
        ("tinyws", "raw", 150, 110, 400, 800),
        ("tinyws", "tinyws", 155, 120, 100, 100),
        ("granian", "raw", 100, 70, 100, 100),
        ("tinyws-uvloop", "raw", 140, 110, 100, 100),
    ]
    for server, app, accept_cpu, reject_cpu, accept_p50, reject_p50 in table:
        for c in (1, 32):
            rows[(server, app, "accept", c)] = row(accept_cpu, accept_p50)
            rows[(server, app, "reject", c)] = row(reject_cpu, reject_p50)
    memory = [render.Memory("tinyws", 5000, 20_000, 80_000, True, 2.0)]
    found = {v.target: v for v in render.verdicts(rows, memory)}
    accept = found["tinyws app vs raw on tinyws, accept C=32"]
    assert (accept.measured, accept.met) == ("1.03 (C=1: 1.03)", True)
    assert found["tinyws app vs raw on tinyws, reject C=32"].met is False  # 1.09
    assert found["tinyws server (asyncio) vs uvicorn-wsproto, raw app, accept C=32"].met is True
    assert found["tinyws server (asyncio) vs uvicorn-wsproto, raw app, reject C=32"].met is False
    assert found["tinyws server (asyncio), raw app: reject vs accept, C=32"].met is True
    latency = "tinyws server (asyncio), raw app: C=1 p50 latency vs uvicorn default"
    assert found[f"{latency}, accept"].met is True
    assert found[f"{latency}, reject"].met is False
    assert found["tinyws server (uvloop) vs granian, raw app, accept C=32"].met is True  # 1.40
    assert found["tinyws server (uvloop) vs granian, raw app, reject C=32"].met is False  # 1.57
    assert found["memory per idle WebSocket, tinyws server"].measured == "12.0 KiB"
    assert found["memory per idle WebSocket, tinyws server"].met is True
    assert "tinyws app vs raw on granian, accept C=32" not in found  # no tinyws app there


def test_unmeasured_targets_are_said_so() -> None:
    verdicts = render.verdicts({("tinyws", "raw", "accept", 1): row(1)}, [])
    assert verdicts
    assert {v.met for v in verdicts} == {None}
    assert render.target_concurrency({("tinyws", "raw", "accept", 1): row(1)}) == 1


def test_peer_ranges() -> None:
    rows = {
        ("a", "raw", "accept", 32): row(100), ("a", "starlette", "accept", 32): row(110),
        ("b", "raw", "accept", 32): row(200), ("b", "starlette", "accept", 32): row(240),
        ("a", "tinyws", "accept", 32): row(103),
    }  # fmt: skip
    lines = render.peer_ranges(rows)
    assert lines[2] == "| tinyws | 1.03 | 1 | — |"
    assert lines[3] == "| starlette | 1.10-1.20 | 2 | 1.10-1.17 |"


def test_document_has_targets_and_memory() -> None:
    runs = [
        render.Run("tinyws", "raw", "accept", 32, 0, 100, 150.0, 1.0, 1.0, 1.0, "", "ticks"),
        render.Run("tinyws", "raw", "accept", 32, 1, 100, 160.0, 1.0, 1.0, 1.0, ""),
    ]
    memory = [render.Memory("tinyws", 200, 1000, 2800, False, 0.5)]
    meta = render.Meta("python benchmarks/run.py", True, 2, 100, {"tinyws": "asyncio"}, "x")
    text = render.document(runs, {}, [], meta, memory=memory)
    assert "## Targets" in text
    assert "| memory per idle WebSocket, tinyws server | 9.0 KiB | ≤ 12 KiB | met |" in text
    assert "| tinyws | 200 | 1.0 | 2.7 | 9.0 | no |" in text
    assert "1 of 2 runs" in text
    assert "- tinyws: asyncio" in text


def test_document_has_the_socket_free_tables() -> None:
    core = {"results": {"accept": {"min_us": 30.0, "median_us": 31.5}}}
    apps = {
        "n": 50,
        "repeats": 3,
        "us": {"raw": {"accept": 2.0, "reject": 1.5}, "tinyws": {"accept": 5.25, "reject": 4.0}},
    }
    found = render.SocketFree(core, apps, ["python benchmarks/core.py"])
    meta = render.Meta("python benchmarks/run.py", True, 1, 10)
    text = render.document([], {}, [], meta, socket_free=found)
    assert "## Without sockets" in text
    assert "| accept | 30.00 | 31.50 |" in text
    assert "| tinyws | 5.25 | 4.00 | +3.25 | +2.50 |" in text
    assert "fastest of 3 samples of 50 handshakes" in text
    missing = render.SocketFree(None, None, [])
    assert "| handshake |" not in render.document([], {}, [], meta, socket_free=missing)


def test_check_head() -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    good = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: "
    assert idle_memory.check_head(good + accept_key(key), key) == ""
    assert "wrong" in idle_memory.check_head(good + b"nope", key)
    assert "403" in idle_memory.check_head(b"HTTP/1.1 403 Forbidden\r\nA: b", key)


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


def test_idle_client_answers_pings_and_notices_a_close() -> None:
    async def scenario() -> None:
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        idle = idle_memory.Idle(b"GET / HTTP/1.1\r\nSec-WebSocket-Key: ", opened)
        transport = FakeTransport()
        idle.connection_made(cast(asyncio.BaseTransport, transport))
        assert transport.written.endswith(idle.key + b"\r\n\r\n")
        transport.written = b""
        head = b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: " + accept_key(idle.key) + b"\r\n\r\n"
        idle.data_received(head + b"\x89\x02hi"[:3])  # the 101 and part of a ping
        assert opened.done()
        assert transport.written == b""
        idle.data_received(b"i")
        assert transport.written == b"\x8a\x82\0\0\0\0hi"
        idle.data_received(b"\x88\x02\x03\xe8")
        assert transport.closing

    asyncio.run(scenario())


def test_idle_memory_of_the_tinyws_server(tmp_path: Path) -> None:
    """A real, small measurement: the server is started, measured and stopped."""
    harness.raise_nofile_limit()
    result = idle_memory.measure("tinyws", 40, 5, None, tmp_path)
    assert result.connections == 40
    assert result.after_kib > result.before_kib > 0


def test_concurrency_option() -> None:
    assert run.concurrency_list("1,32") == [1, 32]
    with pytest.raises(argparse.ArgumentTypeError):
        run.concurrency_list("1,x")


def test_a_tinyws_without_the_loop_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "tinyws_has_loop_flag", lambda: False)
    assert harness.unavailable("tinyws-uvloop", "raw") == "`tinyws serve` has no --loop option"
    assert "--loop" not in harness.SERVERS["tinyws"].command("raw:app", 1, harness.Launch())
    monkeypatch.setattr(harness, "tinyws_has_loop_flag", lambda: True)
    args = harness.SERVERS["tinyws"].command("raw:app", 1, harness.Launch())
    assert args[args.index("--loop") + 1] == "asyncio"


def test_spread_note_gives_the_median_round_to_round_spread() -> None:
    def run(app: str, rnd: int, cpu: float) -> render.Run:
        return render.Run("tinyws", app, "accept", 32, rnd, 100, cpu, 1.0, 1.0, 1.0, "")

    runs = [run("raw", 0, 100.0), run("raw", 1, 110.0), run("tinyws", 0, 100.0)]
    runs += [run("tinyws", 1, 130.0), run("tinyws", 2, 120.0)]
    note = render.spread_note(runs)
    assert "varied by 20% in the median case" in note
    assert "2 targets" in note
    assert render.spread_note(runs[:1]) == ""


def test_the_shown_command_leaves_out_where_it_wrote() -> None:
    argv = ["--rounds", "5", "--out", "somewhere", "--raw", "runs.json", "-n", "100"]
    assert run.shown_command(argv) == "python benchmarks/run.py --rounds 5 -n 100"


def test_a_baseline_tree_adds_its_targets_and_runs_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness, "_baseline_tree", [])
    assert harness.unavailable("tinyws-before", "raw") == "no baseline tree given (--baseline-tree)"
    opts = run.make_parser().parse_args(["--baseline-tree", str(tmp_path)])
    with pytest.raises(SystemExit, match="no tinyws package"):
        run.apply_baseline(opts)
    (tmp_path / "tinyws").mkdir()
    (tmp_path / "tinyws" / "__init__.py").write_text("")
    run.apply_baseline(opts)
    assert opts.servers[:2] == ["tinyws-before", "tinyws-before-uvloop"]
    targets = {(t.server, t.app) for t in run.select_targets(opts)}
    assert {("tinyws-before", "raw"), ("tinyws-before-uvloop", "tinyws")} <= targets
    assert harness.unavailable("tinyws-before", "raw") is None
    entries = harness.pythonpath("tinyws-before").split(os.pathsep)
    assert entries == [str(harness.APPS_DIR), str(tmp_path.resolve())]
    assert harness.pythonpath("tinyws") == str(harness.APPS_DIR)
    shown = run.shown_command(["--baseline-tree", str(tmp_path), "--rounds", "3"], "76258b9")
    assert shown == "python benchmarks/run.py --rounds 3 --baseline-tree <checkout of 76258b9>"
    assert run.tree_commit(tmp_path) == "a tinyws tree"  # not a git checkout


def test_tls_options_per_server() -> None:
    launch = harness.Launch(tls=("chain.pem", "key.pem"))
    for server, cert_flag in [
        ("tinyws", "--ssl-certfile"), ("uvicorn", "--ssl-certfile"),
        ("hypercorn", "--certfile"), ("granian", "--ssl-certificate"),
    ]:  # fmt: skip
        args = harness.SERVERS[server].command("raw:app", 1, launch)
        assert args[args.index(cert_flag) + 1] == "chain.pem"
        assert "key.pem" in args
        assert "chain.pem" not in harness.SERVERS[server].command("raw:app", 1, harness.Launch())


def test_baseline_and_floor_verdicts() -> None:
    rows = {
        ("tinyws", "raw", "accept", 32): row(102.0),
        ("tinyws-before", "raw", "accept", 32): row(100.0),
        ("tinyws", "tinyws", "accept", 32): row(110.0),
        ("tinyws-before", "tinyws", "accept", 32): row(100.0),
        ("tinyws-uvloop", "raw", "accept", 32): row(160.0),
        ("floor", "raw", "accept", 32): row(100.0),
    }
    found = {v.target: v for v in render.verdicts(rows, [])}
    assert found["tinyws vs tinyws-before, raw app, accept C=32"].met is True
    assert found["tinyws vs tinyws-before, tinyws app, accept C=32"].met is False
    assert found["tinyws vs tinyws-before, raw app, reject C=32"].met is None
    assert not [name for name in found if "tinyws-before-uvloop" in name]  # not in this run
    floor = found["tinyws server (uvloop) vs floor, raw app, accept C=32"]
    assert (floor.measured, floor.met) == ("1.60", False)


@pytest.mark.parametrize("key", ["ecdsa", "rsa"])
def test_wss_certificates_load_and_the_key_is_pkcs8(tmp_path: Path, key: str) -> None:
    import ssl

    import wss_run

    certs = wss_run.make_certs(key, tmp_path)
    assert Path(certs.key).read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(certs.chain, certs.key)
    client = ssl.create_default_context(cafile=certs.ca)
    assert client.cert_store_stats()["x509_ca"] == 1


def test_wss_summary_gives_medians_and_spread() -> None:
    import wss_run

    def one(cpu: float, rnd: int) -> dict[str, object]:
        return {"server": "tinyws", "key": "rsa", "path": "accept", "cpu_us": cpu,
                "rate": 100.0, "errors": {} if rnd else {"timeout": 1}, "round": rnd}  # fmt: skip

    floor = {"key": "rsa", "server": "ssl", "server_cpu_us_per_handshake": 900.0}
    found = {"runs": [one(1000.0, 0), one(1200.0, 1), one(1500.0, 2)], "floor": [floor]}
    lines = wss_run.summary(found)
    assert "| tinyws | rsa | accept | 1200 | 1.50 | 100 | 1/3 |" in lines
    assert "| tls_floor.py (ssl, C=1) | rsa | handshake | 900 | 1.00 | — | — |" in lines
