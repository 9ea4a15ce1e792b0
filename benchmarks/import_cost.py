"""What importing tinyws leaves for the garbage collector, and what it costs a server.

Two parts, both made of figures a busy machine cannot blur:

- **import**: fresh interpreters report what ``import tinyws`` leaves behind —
  tracked objects it adds (after its dependencies are imported), how many of
  them sit in the young generations, and the cyclic garbage one
  ``gc.collect()`` then finds.
- **server**: uvicorn (h11 + wsproto, asyncio loop) serves
  ``benchmarks/gc_probe.py`` in four variants — the raw ASGI app, the raw app
  after ``import tinyws``, the same plus one ``gc.collect()``, and the tinyws
  app — and ``tinyws bench`` runs N handshakes against it (server on CPU 0,
  client on CPU 1). Inside the server, ``gc.callbacks`` count collections per
  generation, the thread CPU spent in them and the cyclic garbage they found.
  With ``--callgrind`` the server runs under valgrind's callgrind,
  instrumented only while the measured handshakes run: instructions per
  handshake, the same on every run. Server CPU per handshake is reported
  too, but on a shared machine only the other columns are worth comparing.

    python benchmarks/import_cost.py [-n 2000] [--rounds 3] [--paths accept,reject]
        [--variants raw,raw+import,...] [--callgrind] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
from gc_probe import VARIANTS

HERE = Path(__file__).resolve().parent
PATHS = ("accept", "reject")
CALLGRIND_START_TIMEOUT = 300.0

# Run in a fresh interpreter: what tinyws's own import adds, its dependencies
# (the modules it imports that are not tinyws) imported and collected first.
LIST_DEPENDENCIES = """
import json, sys
before = set(sys.modules)
import tinyws
print(json.dumps(sorted(m for m in set(sys.modules) - before if not m.startswith("tinyws"))))
"""
IMPORT_PROBE = """
import gc, importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
gc.collect()
before = len(gc.get_objects())
import tinyws
young = len(gc.get_objects(0)) + len(gc.get_objects(1))
print(json.dumps({
    "objects_added": len(gc.get_objects()) - before,
    "young_after_import": young,
    "cyclic_garbage": gc.collect(),
}))
"""


def import_figures() -> dict[str, int]:
    deps = python(LIST_DEPENDENCIES)
    figures: dict[str, int] = json.loads(python(IMPORT_PROBE, deps))
    return figures


def python(code: str, *args: str) -> str:
    command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, capture_output=True, check=True, text=True).stdout


def bench(port: int, path: str, n: int, pid: int, taskset: str | None) -> dict[str, Any]:
    url = f"ws://{harness.HOST}:{port}/{path}"
    command = [sys.executable, "-m", "tinyws", "bench", url, "-n", str(n), "-c", "32"]
    command += ["--quiet", "--json", "-", "--server-pid", str(pid)]
    out = subprocess.run(
        harness.pinned(1, command, taskset), capture_output=True, check=False, text=True
    ).stdout
    results: dict[str, Any] = json.loads(out)
    return results


def callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, check=True)


def wait_port(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    saved = harness.START_TIMEOUT
    harness.START_TIMEOUT = timeout
    try:
        harness.wait_listening(process, port, log)
    finally:
        harness.START_TIMEOUT = saved


def one_run(variant: str, path: str, n: int, taskset: str | None, grind: bool) -> dict[str, Any]:
    """Serve the variant, warm up, run n handshakes; the probe's and client's figures."""
    port = harness.free_port()
    work = Path(tempfile.mkdtemp(prefix="import-cost-"))
    env = {**os.environ, "GC_PROBE_VARIANT": variant, "GC_PROBE_OUT": str(work / "gc.json")}
    command = [sys.executable, "-m", "uvicorn", "gc_probe:app", "--port", str(port)]
    command += ["--http", "h11", "--ws", "wsproto", "--loop", "asyncio"]
    command += ["--log-level", "warning", "--no-access-log"]
    if grind:
        out_file = f"--callgrind-out-file={work}/callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", out_file, *command]
    log = work / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            harness.pinned(0, command, taskset),
            cwd=HERE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_port(process, port, log, CALLGRIND_START_TIMEOUT if grind else harness.START_TIMEOUT)
        warmup = bench(port, path, max(n // 5, 50), process.pid, taskset)["handshakes"]
        if grind:
            callgrind(process.pid, "-i", "on")
        results = bench(port, path, n, process.pid, taskset)
        if grind:
            callgrind(process.pid, "-d")
            callgrind(process.pid, "-i", "off")
    finally:
        harness.stop(process)
    probe: dict[str, Any] = json.loads((work / "gc.json").read_text())
    total = warmup + results["handshakes"]  # the probe watched both
    figures = {
        "handshakes": results["handshakes"],
        "server_cpu_us": results["server_cpu"]["us_per_handshake"],
        "gc_collections_per_1000": [c * 1000 / total for c in probe["collections"]],
        "gc_cpu_us": sum(probe["cpu_ns"]) / 1000 / total,
        "cyclic_garbage": (sum(probe["collected"]) + probe["garbage_left"]) / total,
    }
    if grind:
        figures["instructions"] = dumped_instructions(work) / n
    shutil.rmtree(work, ignore_errors=True)
    return figures


def dumped_instructions(work: Path) -> int:
    """Ir of the dump made while instrumented (callgrind names it <out>.1)."""
    for line in (work / "callgrind.out.1").read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError("no totals in the callgrind dump")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = runs[0].keys()
    out: dict[str, Any] = {}
    for key in keys:
        values = [run[key] for run in runs]
        if isinstance(values[0], list):
            out[key] = [statistics.median(column) for column in zip(*values, strict=True)]
        else:
            out[key] = statistics.median(values)
    return out


def table(figures: dict[str, dict[str, dict[str, Any]]], grind: bool) -> str:
    head = "| variant | path | server CPU µs/hs | GC collections per 1000 hs (gen 0/1/2) "
    head += "| GC CPU µs/hs | cyclic garbage objects/hs |"
    head += " instructions/hs |" if grind else ""
    lines = [head, "|---|---|--:|--:|--:|--:|" + ("--:|" if grind else "")]
    for variant, by_path in figures.items():
        for path, f in by_path.items():
            gens = "/".join(f"{c:.0f}" for c in f["gc_collections_per_1000"])
            row = f"| {variant} | {path} | {f['server_cpu_us']:.0f} | {gens} "
            row += f"| {f['gc_cpu_us']:.2f} | {f['cyclic_garbage']:.2f} |"
            row += f" {f['instructions']:,.0f} |" if grind else ""
            lines.append(row)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="handshakes per run (2000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per variant (3)")
    parser.add_argument("--paths", type=harness.csv_choices(PATHS), default=list(PATHS))
    parser.add_argument("--variants", type=harness.csv_choices(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--callgrind", action="store_true", help="server under callgrind")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    opts = parser.parse_args(argv)
    if opts.n < 1 or opts.rounds < 1:
        parser.error("-n and --rounds must be >= 1")
    if opts.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind")
    report: dict[str, Any] = {"import": import_figures(), "n": opts.n, "rounds": opts.rounds}
    print("import tinyws (dependencies already imported):", json.dumps(report["import"]))
    taskset = harness.find_taskset()
    harness.raise_nofile_limit()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        v: {p: [] for p in opts.paths} for v in opts.variants
    }
    started = time.monotonic()
    for round_ in range(opts.rounds):
        order = opts.variants if round_ % 2 == 0 else opts.variants[::-1]
        for variant in order:
            for path in opts.paths:
                runs[variant][path].append(one_run(variant, path, opts.n, taskset, opts.callgrind))
    figures = {v: {p: median_of(r) for p, r in by_path.items()} for v, by_path in runs.items()}
    report["figures"] = figures
    print(table(figures, opts.callgrind))
    print(f"({opts.rounds} interleaved rounds, medians; {time.monotonic() - started:.0f} s)")
    if opts.json:
        Path(opts.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
