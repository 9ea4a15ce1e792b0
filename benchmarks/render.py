"""Turn the suite's runs into ``benchmarks.md`` and a hand-written SVG chart."""

from __future__ import annotations

import os
import platform
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
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
    cpu_source: str = "schedstat"  # or "ticks": how the server's CPU time was read

    @classmethod
    def from_bench(
        cls, key: Key, rnd: int, cpu_s: float, data: dict[str, Any], cpu_source: str
    ) -> Run:
        count = int(data["handshakes"]) or 1
        latency = data["latency_us"]
        errors = ", ".join(f"{kind}: {n}" for kind, n in data["errors"].items())
        return cls(
            *key, rnd, count, cpu_s * 1e6 / count, float(data["handshakes_per_s"]),
            float(latency["p50"] or 0), float(latency["p99"] or 0), errors, cpu_source,
        )  # fmt: skip


@dataclass
class Memory:
    """Resident memory of one server before and after opening idle WebSockets."""

    server: str
    connections: int
    before_kib: int
    after_kib: int
    quiet: bool  # the server was quiet at both readings
    opening_s: float  # how long opening the connections took

    @property
    def per_connection_kib(self) -> float:
        return (self.after_kib - self.before_kib) / max(self.connections, 1)


@dataclass(frozen=True)
class Meta:
    command: str
    pinned: bool
    rounds: int
    n: int
    loops: dict[str, str] = field(default_factory=dict)  # server -> what it runs on
    memory_command: str = ""


@dataclass(frozen=True)
class SocketFree:
    """The JSON reports of ``core.py`` and ``app_overhead.py`` (None: not run)."""

    core: dict[str, Any] | None
    apps: dict[str, Any] | None
    commands: list[str]


def socket_free_section(found: SocketFree) -> list[str]:
    parts = [
        "",
        "## Without sockets",
        "",
        "The same handshakes with no network, kernel or client, each pinned to CPU 0: the "
        "figures move only when the code does. "
        + " and ".join(f"`{command}`" for command in found.commands),
    ]
    if found.core is not None:
        parts += [
            "",
            "The built-in server's sans-IO core (`benchmarks/core.py`): bytes of a whole "
            "exchange in, bytes out, the app's part played by plain ASGI messages.",
            "",
            "| exchange | min µs | median µs |",
            "|---|--:|--:|",
        ]
        for name, result in found.core["results"].items():
            parts.append(f"| {name} | {result['min_us']:.2f} | {result['median_us']:.2f} |")
    if found.apps is not None:
        parts += [
            "",
            "Each framework's own work per handshake (`benchmarks/app_overhead.py`): the app "
            "called as a server calls it, one asyncio loop, the fastest of "
            f"{found.apps['repeats']} samples of {found.apps['n']} handshakes.",
            "",
            "| app | accept µs | reject µs | accept over raw | reject over raw |",
            "|---|--:|--:|--:|--:|",
        ]
        timed: dict[str, dict[str, float]] = found.apps["us"]
        raw = timed.get("raw")
        for name, by_path in timed.items():
            cells = [f"{by_path[path]:.2f}" for path in ("accept", "reject")]
            over = [
                f"{by_path[path] - raw[path]:+.2f}" if raw else "—" for path in ("accept", "reject")
            ]
            parts.append(f"| {name} | {' | '.join(cells)} | {' | '.join(over)} |")
    return parts


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


FRAMEWORK_LIMIT = 1.05  # tinyws app against raw ASGI on the same server
PEER_REFERENCE = {  # the figures: accept path, server CPU against raw
    "starlette": "1.10-1.17",
    "falcon": "1.20-1.26",
    "fastapi": "1.32-1.55",
}
MEMORY_LIMIT_KIB = 12.0
TINYWS_SERVERS = ("tinyws", "tinyws-uvloop", "tinyws-trio")


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    goal: str
    met: bool | None  # None: not measured in this run

    @property
    def word(self) -> str:
        return "—" if self.met is None else "met" if self.met else "**missed**"


def target_concurrency(rows: dict[Key, Row]) -> int:
    """The concurrency the targets are judged at: 32 when measured, else the highest."""
    levels = {c for *_, c in rows}
    return 32 if 32 in levels or not levels else max(levels)


def cpu_ratio(rows: dict[Key, Row], key: Key, base: Key) -> float | None:
    if key not in rows or base not in rows or not rows[base].cpu_us:
        return None
    return rows[key].cpu_us / rows[base].cpu_us


def _ratio_verdict(
    rows: dict[Key, Row], name: str, key: Key, base: Key, limit: float, *, strict: bool = False
) -> Verdict:
    """``key``'s CPU against ``base``'s at the target concurrency, C=1 shown alongside."""
    value = cpu_ratio(rows, key, base)
    goal = f"< {limit:.2f}" if strict else f"≤ {limit:.2f}"
    if value is None:
        return Verdict(name, "not measured", goal, None)
    at_1 = cpu_ratio(rows, (*key[:3], 1), (*base[:3], 1))
    measured = f"{value:.2f}" + (f" (C=1: {at_1:.2f})" if at_1 is not None and key[3] != 1 else "")
    met = value < limit if strict else value <= limit
    return Verdict(name, measured, goal, met)


def verdicts(rows: dict[Key, Row], memory: list[Memory]) -> list[Verdict]:
    """Every target of the handshake issue, judged on this run."""
    c = target_concurrency(rows)
    out = []
    servers = sorted({s for s, a, _, _ in rows if a == "tinyws"})
    for server in servers:
        for path in ("accept", "reject"):
            out.append(_ratio_verdict(
                rows, f"tinyws app vs raw on {server}, {path} C={c}",
                (server, "tinyws", path, c), (server, "raw", path, c), FRAMEWORK_LIMIT,
            ))  # fmt: skip
    for path, limit in (("accept", 0.60), ("reject", 0.50)):
        out.append(_ratio_verdict(
            rows, f"tinyws server (asyncio) vs {REFERENCE_SERVER}, raw app, {path} C={c}",
            ("tinyws", "raw", path, c), (REFERENCE_SERVER, "raw", path, c), limit,
        ))  # fmt: skip
    for path in ("accept", "reject"):
        out.append(_ratio_verdict(
            rows, f"tinyws server (asyncio) vs uvicorn default, raw app, {path} C={c}",
            ("tinyws", "raw", path, c), ("uvicorn", "raw", path, c), 1.0, strict=True,
        ))  # fmt: skip
    out.append(_ratio_verdict(
        rows, f"tinyws server (asyncio), raw app: reject vs accept, C={c}",
        ("tinyws", "raw", "reject", c), ("tinyws", "raw", "accept", c), 1.0, strict=True,
    ))  # fmt: skip
    for path in ("accept", "reject"):
        out.append(_latency_verdict(rows, path))
    for path in ("accept", "reject"):
        out.append(_ratio_verdict(
            rows, f"tinyws server (uvloop) vs granian, raw app, {path} C={c}",
            ("tinyws-uvloop", "raw", path, c), ("granian", "raw", path, c), 1.5,
        ))  # fmt: skip
    out += baseline_verdicts(rows, c)
    for path in ("accept", "reject"):
        out.append(_ratio_verdict(
            rows, f"tinyws server (uvloop) vs floor, raw app, {path} C={c}",
            ("tinyws-uvloop", "raw", path, c), ("floor", "raw", path, c), FLOOR_LIMIT,
        ))  # fmt: skip
    measured = {m.server: m for m in memory}
    for server in TINYWS_SERVERS:
        if server not in measured and server != "tinyws":
            continue
        name = f"memory per idle WebSocket, {server} server"
        goal = f"≤ {MEMORY_LIMIT_KIB:g} KiB"
        if server not in measured:
            out.append(Verdict(name, "not measured", goal, None))
            continue
        kib = measured[server].per_connection_kib
        out.append(Verdict(name, f"{kib:.1f} KiB", goal, kib <= MEMORY_LIMIT_KIB))
    return out


FLOOR_LIMIT = 1.5  # tinyws on uvloop against a hand-written asyncio Protocol
BASELINE_LIMIT = 1.03  # this tree against the baseline tree (--baseline-tree)
BASELINE_PAIRS = (("tinyws", "tinyws-before"), ("tinyws-uvloop", "tinyws-before-uvloop"))


def baseline_verdicts(rows: dict[Key, Row], c: int) -> list[Verdict]:
    """This tree's server against the baseline tree's, when the run had one."""
    out = []
    for server, before in BASELINE_PAIRS:
        if not any(key[0] == before for key in rows):
            continue
        for app in ("raw", "tinyws"):
            for path in ("accept", "reject"):
                out.append(_ratio_verdict(
                    rows, f"{server} vs {before}, {app} app, {path} C={c}",
                    (server, app, path, c), (before, app, path, c), BASELINE_LIMIT,
                ))  # fmt: skip
    return out


def _latency_verdict(rows: dict[Key, Row], path: str) -> Verdict:
    name = f"tinyws server (asyncio), raw app: C=1 p50 latency vs uvicorn default, {path}"
    ours, theirs = rows.get(("tinyws", "raw", path, 1)), rows.get(("uvicorn", "raw", path, 1))
    goal = "below uvicorn default's"
    if ours is None or theirs is None:
        return Verdict(name, "not measured", goal, None)
    measured = f"{ours.p50_us:.0f} µs vs {theirs.p50_us:.0f} µs"
    return Verdict(name, measured, goal, ours.p50_us < theirs.p50_us)


def targets_table(rows: dict[Key, Row], memory: list[Memory]) -> list[str]:
    lines = ["| target | measured | goal | verdict |", "|---|--:|--:|---|"]
    for v in verdicts(rows, memory):
        lines.append(f"| {v.target} | {v.measured} | {v.goal} | {v.word} |")
    return lines


def spread_note(runs: list[Run]) -> str:
    """How far one target's rounds lie apart: the scale at which a ratio means something."""
    groups: dict[Key, list[float]] = defaultdict(list)
    for run in runs:
        groups[(run.server, run.app, run.path, run.concurrency)].append(run.cpu_us)
    spreads = [max(v) / min(v) - 1 for v in groups.values() if len(v) > 1 and min(v) > 0]
    if not spreads:
        return ""
    return (
        "Between rounds (each a fresh server process), one target's CPU per handshake "
        f"varied by {statistics.median(spreads):.0%} in the median case (max over min, "
        f"{len(spreads)} targets): ratios nearer to 1 than that are within this machine's "
        "noise."
    )


def peer_ranges(rows: dict[Key, Row]) -> list[str]:
    """Each framework's server CPU against raw: the range over the servers measured."""
    columns = sorted({(path, c) for _, _, path, c in rows})
    apps = sorted({a for _, a, _, _ in rows if a != "raw"}, key=lambda a: (a != "tinyws", a))
    head = " | ".join(f"{path} C={c}" for path, c in columns)
    lines = [
        f"| app | {head} | servers | issue's reference (accept) |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for app in apps:
        cells, servers = [], set()
        for path, c in columns:
            values = []
            for server in sorted({s for s, a, _, _ in rows if a == app}):
                value = cpu_ratio(rows, (server, app, path, c), (server, "raw", path, c))
                if value is not None:
                    values.append(value)
                    servers.add(server)
            low, high = (min(values), max(values)) if values else (0.0, 0.0)
            cells.append(
                "—" if not values else f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"
            )
        reference = PEER_REFERENCE.get(app, "—")
        lines.append(f"| {app} | {' | '.join(cells)} | {len(servers)} | {reference} |")
    return lines


def memory_table(memory: list[Memory]) -> list[str]:
    lines = [
        "| server | idle WebSockets | RSS before MiB | RSS after MiB "
        "| KiB per idle WebSocket | quiet at both readings |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for m in sorted(memory, key=lambda m: m.per_connection_kib):
        lines.append(
            f"| {m.server} | {m.connections} | {m.before_kib / 1024:.1f} "
            f"| {m.after_kib / 1024:.1f} | {m.per_connection_kib:.1f} "
            f"| {'yes' if m.quiet else 'no'} |"
        )
    return lines


def cpu_source_note(runs: list[Run]) -> str:
    ticks = sum(1 for r in runs if r.cpu_source == "ticks")
    hz = os.sysconf("SC_CLK_TCK")
    if not ticks:
        return (
            "CPU time is the nanoseconds on CPU of every thread of every process in the "
            "server's process group (`/proc/PID/task/TID/schedstat`), so worker processes "
            "count."
        )
    if ticks == len(runs):
        return (
            "This kernel has no per-thread `schedstat`, so CPU time is user + system time of "
            "every process in the server's process group from `/proc/PID/stat`, in clock "
            f"ticks of {1000 / hz:.0f} ms: one run resolves "
            f"{1e6 / hz / max(min(r.handshakes for r in runs), 1):.0f} µs per handshake."
        )
    return (
        "CPU time is the nanoseconds on CPU of every thread of every process in the "
        "server's process group (`/proc/PID/task/TID/schedstat`); "
        f"{ticks} of {len(runs)} runs, where a thread or child process ended during the run, "
        f"fell back to user + system time from `/proc/PID/stat` in {1000 / hz:.0f} ms ticks."
    )


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


def rounds(count: int) -> str:
    return "1 round" if count == 1 else f"{count} interleaved rounds (A B … B A)"


def document(
    runs: list[Run],
    skipped: dict[str, str],
    failures: list[str],
    meta: Meta,
    *,
    memory: list[Memory] | None = None,
    socket_free: SocketFree | None = None,
) -> str:
    rows = medians(runs)
    memory = memory or []
    pinning = (
        "server pinned to CPU 0 and client to CPU 1 (`taskset`)"
        if meta.pinned
        else "**unpinned** (no `taskset` or a single CPU)"
    )
    measured_servers = sorted({s for s, _, _, _ in rows} | {m.server for m in memory})
    loops = [f"- {s}: {meta.loops[s]}" for s in measured_servers if s in meta.loops]
    parts = [
        "# Handshake benchmarks",
        "",
        "Server CPU time per WebSocket opening handshake, throughput and latency for each "
        "(server, app) target, measured with `tinyws bench` and `benchmarks/run.py`. "
        f"{rounds(meta.rounds)}, {meta.n} measured handshakes per run, "
        f"{pinning}. Each target runs as a real process; its CPU time is read from `/proc` "
        "before and after each run. Figures are medians across rounds; ratios are ratios "
        "of medians. `accept` is a handshake answered 101 and closed by the client; "
        "`reject` is a refusal before accept answered 403 (through the denial extension "
        "where the server has it). `floor` is `benchmarks/floor_server.py`, a hand-written "
        "asyncio Protocol with no ASGI and no HTTP parser, started with `--reject` for the "
        f"reject path: it is listed with the raw app. {cpu_source_note(runs)}",
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
        "Event loops:",
        "",
        *loops,
        "",
        "## Targets",
        "",
        f"The handshake issue's targets, judged on this run: server CPU per handshake at "
        f"C={target_concurrency(rows)} (C=1 in parentheses, not judged).",
        "",
        *targets_table(rows, memory),
        "",
        spread_note(runs),
        "",
        "Peer frameworks against raw ASGI on the same server, server CPU, the range over "
        "the servers measured (reported, not a target; the issue's reference has every "
        "peer at 1.10 or more):",
        "",
        *peer_ranges(rows),
    ]
    if memory:
        parts += [
            "",
            "## Memory per idle WebSocket",
            "",
            f"Each server runs the raw app; after a warm-up batch of connections, "
            f"{memory[0].connections} more WebSockets complete their handshake and stay open "
            "and idle. Resident memory (VmRSS of every process in the server's group) is read "
            "when the server is quiet, before and after; the difference over the number of "
            f"connections is the figure. `{meta.memory_command}`",
            "",
            *memory_table(memory),
        ]
    if socket_free is not None:
        parts += socket_free_section(socket_free)
    parts += [
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
    out: Path,
    runs: list[Run],
    skipped: dict[str, str],
    failures: list[str],
    meta: Meta,
    *,
    memory: list[Memory] | None = None,
    socket_free: SocketFree | None = None,
) -> None:
    text = document(runs, skipped, failures, meta, memory=memory, socket_free=socket_free)
    (out / "benchmarks.md").write_text(text, encoding="utf-8")
    (out / "benchmarks.svg").write_text(chart(medians(runs)), encoding="utf-8")
