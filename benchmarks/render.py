"""Turn the suite's runs into ``benchmarks.md`` and a hand-written SVG chart."""

from __future__ import annotations

import os
import platform
import statistics
from collections import defaultdict
from dataclasses import dataclass
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

REFERENCE_SERVER = "uvicorn-wsproto"
PACKAGES = (
    "tinyws", "anyio", "h11", "wsproto", "uvicorn", "httptools", "websockets", "hypercorn",
    "granian", "starlette", "fastapi", "falcon", "litestar", "uvloop",
)  # fmt: skip
Key = tuple[str, str, str, int]  # server, app, path, concurrency


@dataclass
class Run:
    """One measured ``tinyws bench`` run against one target."""

    server: str
    app: str
    path: str
    concurrency: int
    round: int
    handshakes: int
    cpu_us: float  # server CPU per handshake
    rate: float
    p50_us: float
    p99_us: float
    errors: str

    @classmethod
    def from_bench(cls, key: Key, rnd: int, cpu_s: float, data: dict[str, Any]) -> Run:
        count = int(data["handshakes"]) or 1
        latency = data["latency_us"]
        errors = ", ".join(f"{kind}: {n}" for kind, n in data["errors"].items())
        return cls(
            *key, rnd, count, cpu_s * 1e6 / count, float(data["handshakes_per_s"]),
            float(latency["p50"] or 0), float(latency["p99"] or 0), errors,
        )  # fmt: skip


@dataclass(frozen=True)
class Meta:
    command: str
    pinned: bool
    rounds: int
    n: int


@dataclass(frozen=True)
class Row:
    cpu_us: float
    rate: float
    p50_us: float
    p99_us: float
    rounds: int
    errors: int


def medians(runs: list[Run]) -> dict[Key, Row]:
    groups: dict[Key, list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.server, run.app, run.path, run.concurrency)].append(run)
    return {
        key: Row(
            statistics.median(r.cpu_us for r in group),
            statistics.median(r.rate for r in group),
            statistics.median(r.p50_us for r in group),
            statistics.median(r.p99_us for r in group),
            len(group),
            sum(1 for r in group if r.errors),
        )
        for key, group in groups.items()
    }


def ratio(rows: dict[Key, Row], key: Key, base: Key) -> str:
    if key == base or key not in rows or base not in rows:
        return "—"
    return f"{rows[key].cpu_us / rows[base].cpu_us:.2f}"


def machine() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return [
        f"- CPUs: {os.cpu_count()}, {model}",
        f"- OS: {platform.system()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- packages: {', '.join(versions)}",
    ]


def main_table(rows: dict[Key, Row]) -> list[str]:
    lines = [
        "| server | app | path | C | server CPU µs/handshake | vs raw | vs uvicorn-wsproto "
        "| handshakes/s | p50 µs | p99 µs | runs with errors |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key in sorted(rows):
        server, app, path, c = key
        row = rows[key]
        lines.append(
            f"| {server} | {app} | {path} | {c} | {row.cpu_us:.0f} "
            f"| {ratio(rows, key, (server, 'raw', path, c))} "
            f"| {ratio(rows, key, (REFERENCE_SERVER, app, path, c))} "
            f"| {row.rate:.0f} | {row.p50_us:.0f} | {row.p99_us:.0f} "
            f"| {row.errors}/{row.rounds} |"
        )
    return lines


def ratio_table(rows: dict[Key, Row], by_server: bool) -> list[str]:
    """Framework vs raw on each server, or server vs uvicorn-wsproto for each app."""
    columns = sorted({(path, c) for _, _, path, c in rows})
    head = " | ".join(f"{path} C={c}" for path, c in columns)
    first = "app / server" if by_server else "server / app"
    lines = [f"| {first} | {head} |", "|---" * (len(columns) + 1) + "|"]
    pairs = sorted({(s, a) for s, a, _, _ in rows}, key=lambda p: p if by_server else p[::-1])
    for server, app in pairs:
        if (by_server and app == "raw") or (not by_server and server == REFERENCE_SERVER):
            continue
        cells = []
        for path, c in columns:
            base = (server, "raw", path, c) if by_server else (REFERENCE_SERVER, app, path, c)
            cells.append(ratio(rows, (server, app, path, c), base))
        label = f"{app} on {server}" if by_server else f"{server} ({app} app)"
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def chart(rows: dict[Key, Row]) -> str:
    """Horizontal bars: server CPU per handshake at the highest concurrency."""
    top = max((c for *_, c in rows), default=1)
    targets = sorted({(s, a) for s, a, _, c in rows if c == top})
    paths = sorted({p for _, _, p, c in rows if c == top})
    colors = {"accept": "#3b6ea8", "reject": "#d08c2a"}
    peak = max((r.cpu_us for k, r in rows.items() if k[3] == top), default=1.0)
    left, width, bar = 230, 480, 11
    height = 50 + len(targets) * (bar * len(paths) + 10)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="10" y="18" font-size="14">Server CPU µs per handshake, C={top} '
        f"(median; lower is better)</text>",
    ]
    for i, path in enumerate(paths):
        x = left + i * 90
        out.append(
            f'<rect x="{x}" y="26" width="10" height="10" fill="{colors.get(path, "gray")}"/>'
        )
        out.append(f'<text x="{x + 14}" y="35">{escape(path)}</text>')
    y = 46
    for server, app in targets:
        out.append(f'<text x="{left - 6}" y="{y + bar + 2}" text-anchor="end">'
                   f"{escape(server)} / {escape(app)}</text>")  # fmt: skip
        for path in paths:
            row = rows.get((server, app, path, top))
            if row is not None:
                w = max(1.0, row.cpu_us / peak * width)
                out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 1}" '
                           f'fill="{colors.get(path, "gray")}"/>')  # fmt: skip
                out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar - 2}" font-size="10">'
                           f"{row.cpu_us:.0f}</text>")  # fmt: skip
            y += bar
        y += 10
    out.append("</svg>")
    return "\n".join(out) + "\n"


def document(runs: list[Run], skipped: dict[str, str], failures: list[str], meta: Meta) -> str:
    rows = medians(runs)
    pinning = (
        "server pinned to CPU 0 and client to CPU 1 (`taskset`)"
        if meta.pinned
        else "**unpinned** (no `taskset` or a single CPU)"
    )
    parts = [
        "# Handshake benchmarks",
        "",
        "Server CPU time per WebSocket opening handshake, throughput and latency for each "
        "(server, app) target, measured with `tinyws bench` and `benchmarks/run.py`. "
        f"{meta.rounds} interleaved rounds (A B … B A), {meta.n} measured handshakes per run, "
        f"{pinning}. Each target runs as a real process; its CPU time (user + system of "
        "every process in its group, so worker processes count) is read from `/proc` "
        "before and after each run. Figures are medians across rounds; ratios are ratios "
        "of medians. `accept` is a handshake answered 101 and closed by the client; "
        "`reject` is a refusal before accept answered 403 (through the denial extension "
        "where the server has it). Python servers run on the stdlib asyncio loop. "
        f"CPU times come in clock ticks of {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms, so one "
        f"run resolves {1e6 / os.sysconf('SC_CLK_TCK') / max(meta.n, 1):.0f} µs per handshake.",
        "",
        "![server CPU per handshake](benchmarks.svg)",
        "",
        "## Reproduce",
        "",
        "```console",
        '$ pip install -e ".[bench]"',
        f"$ {meta.command}",
        "```",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Framework overhead: server CPU against raw ASGI on the same server",
        "",
        *ratio_table(rows, by_server=True),
        "",
        f"## Servers: server CPU against {REFERENCE_SERVER} (uvicorn, h11 + wsproto)",
        "",
        *ratio_table(rows, by_server=False),
        "",
        "## All targets",
        "",
        *main_table(rows),
    ]
    if skipped:
        parts += ["", "## Skipped", ""] + [f"- {label}: {why}" for label, why in skipped.items()]
    if failures:
        parts += ["", "## Failures", ""] + [f"- {line.splitlines()[0]}" for line in failures]
    return "\n".join(parts) + "\n"


def write(
    out: Path, runs: list[Run], skipped: dict[str, str], failures: list[str], meta: Meta
) -> None:
    (out / "benchmarks.md").write_text(document(runs, skipped, failures, meta), encoding="utf-8")
    (out / "benchmarks.svg").write_text(chart(medians(runs)), encoding="utf-8")
