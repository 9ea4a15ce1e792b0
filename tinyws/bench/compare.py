"""``--compare URL2``: A and B in interleaved rounds, and the paired ratios A/B.

Two runs taken minutes apart on a shared machine differ by more than most
changes worth measuring. Interleaving (A B, then B A, then A B …: each round
reverses the order, so neither side always runs first, on a cooler cache or
a quieter neighbour) and pairing each round's A with its own B cancel most
of that drift. Each figure's ratio is taken per round, and the median and
the min-max of those ratios are reported: when the min-max straddles 1.0,
the difference is within the noise.

Figures: ``handshakes_per_s``, ``p50_us``, ``p99_us`` (the corrected latency
under ``--rate``) and, when ``--server-pid`` / ``--compare-pid`` name the
server processes, ``server_cpu_us_per_handshake`` (their user+system CPU
time over the run, from /proc, per handshake attempted).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinyws.bench.histogram import Histogram
from tinyws.bench.report import duration
from tinyws.bench.results import Results


def _p(rank: float) -> Callable[[Results], float | None]:
    def figure(results: Results) -> float | None:
        hist = results.latency
        return hist.percentiles(rank)[0] / 1000 if hist.count else None

    return figure


def _server_cpu(results: Results) -> float | None:
    if results.server_cpu is None or not results.attempts:
        return None
    return results.server_cpu * 1e6 / results.attempts


FIGURES: dict[str, Callable[[Results], float | None]] = {
    "handshakes_per_s": lambda results: results.handshakes_per_s,
    "p50_us": _p(50.0),
    "p99_us": _p(99.0),
    "server_cpu_us_per_handshake": _server_cpu,
}


@dataclass
class Side:
    """One of the two things compared: its URL, server processes and runs."""

    label: str
    url: str
    pids: tuple[int, ...] = ()
    runs: list[Results] = field(default_factory=list)

    def merged(self) -> Histogram:
        """All rounds' latencies in one histogram (for --hdr and --plot)."""
        merged = Histogram()
        for results in self.runs:
            merged.merge(results.latency)
        return merged


def order(rounds: int) -> list[str]:
    """Return the run order: A B, B A, A B … (``rounds`` pairs)."""
    return [label for i in range(rounds) for label in (("A", "B") if i % 2 == 0 else ("B", "A"))]


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "values": [round(v, 4) for v in values],
    }


def figures(a: Side, b: Side) -> dict[str, dict[str, Any]]:
    """Per figure: each side's values by round and the ratios A/B, summarised."""
    out: dict[str, dict[str, Any]] = {}
    for name, figure in FIGURES.items():
        pairs = [(figure(ra), figure(rb)) for ra, rb in zip(a.runs, b.runs, strict=True)]
        values = [(float(x), float(y)) for x, y in pairs if x is not None and y]
        if len(values) < len(pairs):
            continue  # no server PIDs, or a round of B without responses: no ratio
        ratios = [x / y for x, y in values]
        out[name] = {
            "a": [round(x, 1) for x, _ in values],
            "b": [round(y, 1) for _, y in values],
            "ratio": _spread(ratios),
        }
    return out


def to_json(a: Side, b: Side, rounds: int) -> dict[str, Any]:
    return {
        "a": a.url,
        "b": b.url,
        "rounds": rounds,
        "order": order(rounds),
        "figures": figures(a, b),
    }


def _show(name: str, value: float) -> str:
    return f"{value:.0f}/s" if name == "handshakes_per_s" else duration(value)


LABELS = {
    "handshakes_per_s": "rate",
    "p50_us": "p50",
    "p99_us": "p99",
    "server_cpu_us_per_handshake": "server CPU/hs",
}


def to_text(a: Side, b: Side, rounds: int) -> str:
    lines = [
        f"A            {a.url}",
        f"B            {b.url}",
        f"rounds       {rounds}, in the order {' '.join(order(rounds))}",
        f"{'figure':<14}{'A median':>12}{'B median':>12}{'A/B median':>12}{'min-max':>16}",
    ]
    for name, data in figures(a, b).items():
        ratio = data["ratio"]
        lines.append(
            f"{LABELS[name]:<14}{_show(name, statistics.median(data['a'])):>12}"
            f"{_show(name, statistics.median(data['b'])):>12}{ratio['median']:>11.3f}x"
            f"{ratio['min']:>9.3f}-{ratio['max']:.3f}"
        )
    return "\n".join(lines) + "\n"
