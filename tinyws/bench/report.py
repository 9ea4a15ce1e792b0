"""Turn results into the text summary and the JSON document."""

from __future__ import annotations

from typing import Any

from tinyws.bench.histogram import Histogram
from tinyws.bench.open_model import LATE_NS, client_late
from tinyws.bench.results import PHASES, Results
from tinyws.bench.runner import Plan

# Above this share of one core, the client rather than the server may be the limit.
CLIENT_BOUND = 0.9
# Shorter runs are mostly start-up and tear-down: their CPU share means nothing.
MIN_JUDGED_S = 0.5
# A late client using this share of a core or more is taken to be CPU-bound.
CLIENT_LATE_BUSY = 0.8
RANKS = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}
PHASE_RANKS = {"p50": 50.0, "p90": 90.0, "p99": 99.0}
SCHEMA_VERSION = 2
BOUND_WARNING = (
    "the client kept a CPU core busy, so these figures may measure the client, not the "
    "server; give each its own core or split the load over several client processes"
)


def client_bound(results: Results) -> bool:
    """Say whether the client's own CPU use may have limited the rate."""
    judged = results.responses > 0 and results.elapsed >= MIN_JUDGED_S
    return judged and results.cpu_fraction >= CLIENT_BOUND


def warnings(results: Results) -> list[str]:
    """Return what makes these figures less than trustworthy, one sentence each."""
    found = [BOUND_WARNING] if client_bound(results) else []
    if results.server_gone:
        found.append("a --server-pid process ended during the run: no server CPU figure")
    schedule = results.schedule
    if schedule is not None and client_late(schedule):
        share = results.cpu_fraction
        cause = (
            f"its own CPU was the limit ({share:.0%} of a core): lower --rate"
            if share >= CLIENT_LATE_BUSY
            else f"it used only {share:.0%} of a core, so other processes likely held the "
            "CPU, or bursts of responses kept it busy"
        )
        found.append(
            f"the client could not keep the schedule: {schedule.late_by_client} of "
            f"{schedule.scheduled} handshakes started more than {LATE_NS // 1_000_000} ms late "
            f"while under --max-inflight (up to {duration(schedule.max_lag_ns / 1000)} late); "
            f"{cause}. The latencies from schedule include that delay"
        )
    return found


def summary_us(hist: Histogram, ranks: dict[str, float] = RANKS) -> dict[str, float | None]:
    """Return min, mean, the percentiles and max in microseconds, None when empty."""
    if not hist.count:
        return dict.fromkeys(("min", "mean", *ranks, "max"))
    values = dict(zip(ranks, hist.percentiles(*ranks.values()), strict=True))
    ns = {"min": hist.min, "mean": hist.mean, **values, "max": hist.max}
    return {name: round(value / 1000, 1) for name, value in ns.items()}


def latency_us(results: Results) -> dict[str, float | None]:
    return summary_us(results.latency)


def phases_us(results: Results) -> dict[str, dict[str, float | None]]:
    """``connect``, ``tls`` (wss:// only) and ``upgrade``: p50, p90, p99 and max each."""
    out = {}
    for name in PHASES:
        hist = results.phases[name]
        if hist.count or name != "tls":
            full = summary_us(hist, PHASE_RANKS)
            out[name] = {rank: full[rank] for rank in (*PHASE_RANKS, "max")}
    return out


def _config(plan: Plan, runtime: str) -> dict[str, Any]:
    rated = plan.rate is not None
    return {
        "count": plan.count,
        "duration_s": plan.duration,
        "concurrency": plan.concurrency,
        "rate": plan.rate,
        "max_inflight": plan.max_inflight if rated else None,
        "ramp_s": plan.ramp if rated else None,
        "warmup": plan.warmup,
        "timeout_s": plan.timeout,
        "expect": plan.expect,
        "subprotocols": sorted(plan.target.subprotocols),
        "runtime": runtime,
    }


def _client_cpu(results: Results) -> dict[str, Any]:
    return {
        "user_s": round(results.cpu_user, 3),
        "system_s": round(results.cpu_system, 3),
        "total_s": round(results.cpu_user + results.cpu_system, 3),
        "share_of_core": round(results.cpu_fraction, 3),
        "bound": client_bound(results),
    }


def _optional(results: Results) -> dict[str, Any]:
    """The fields only some runs have: wss://, --server-pid, --rate."""
    data: dict[str, Any] = {}
    if results.tls is not None:
        data["tls"] = {"version": results.tls[0], "cipher": results.tls[1]}
    if results.server_cpu is not None:
        data["server_cpu"] = {
            "total_s": round(results.server_cpu, 3),
            "us_per_handshake": _per_handshake_us(results),
        }
    schedule = results.schedule
    if schedule is not None:
        data["target_rate"] = schedule.target_rate
        data["late_starts"] = schedule.late_starts
        data["service_us"] = summary_us(results.service)
        data["schedule"] = {
            "achieved_rate": round(schedule.achieved_rate, 1),
            "late_by_client": schedule.late_by_client,
            "late_by_max_inflight": schedule.late_starts - schedule.late_by_client,
            "max_lag_us": round(schedule.max_lag_ns / 1000, 1),
        }
    return data


def to_json(url: str, plan: Plan, results: Results, runtime: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "url": url,
        "config": _config(plan, runtime),
        "handshakes": results.attempts,
        "responses": results.responses,
        "elapsed_s": round(results.elapsed, 6),
        "handshakes_per_s": round(results.handshakes_per_s, 1),
        "latency_us": latency_us(results),
        "phases_us": phases_us(results),
        "statuses": {str(code): n for code, n in sorted(results.statuses.items())},
        "errors": dict(sorted(results.errors.items())),
        "stopped_early": results.stopped is not None,
        "client_cpu": _client_cpu(results),
        "warnings": warnings(results),
        **_optional(results),
    }


def _per_handshake_us(results: Results) -> float | None:
    if results.server_cpu is None or not results.attempts:
        return None
    return round(results.server_cpu * 1e6 / results.attempts, 1)


def duration(us: float | None) -> str:
    """Format microseconds with a unit that keeps three or four digits."""
    if us is None:
        return "-"
    if us < 100:
        return f"{us:.1f} µs"
    if us < 10_000:
        return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"
    if us < 1_000_000:
        return f"{us / 1000:.1f} ms"
    return f"{us / 1_000_000:.2f} s"


def _row(label: str, values: dict[str, float | None], shown: tuple[str, ...]) -> list[str]:
    names = "".join(f"{name.replace('_', '.'):>10}" for name in shown)
    cells = "".join(f"{duration(values[name]):>10}" for name in shown)
    return [f"{label:<11}{names}", f"{'':<11}{cells}"]


def to_text(url: str, plan: Plan, results: Results, runtime: str) -> str:
    shown = ("min", "p50", "p90", "p99", "p99_9", "max")
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(results.statuses.items()))
    errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(results.errors.items()))
    cpu = results.cpu_user + results.cpu_system
    schedule = results.schedule
    how = f"{plan.concurrency} concurrent" if schedule is None else f"scheduled at {plan.rate:g}/s"
    lines = [
        f"target       {url}",
        f"handshakes   {results.attempts} in {results.elapsed:.2f} s, {how} ({runtime})",
        f"rate         {results.handshakes_per_s:.0f} handshakes/s",
    ]
    label = "latency" if schedule is None else "latency*"
    lines += _row(label, latency_us(results), shown)
    if schedule is not None:
        lines += _row("service", summary_us(results.service), shown)
        lines.append(
            f"schedule     * from the scheduled start; achieved {schedule.achieved_rate:.0f}/s "
            f"of {schedule.target_rate:g}/s, {schedule.late_starts} late starts "
            f"({schedule.late_by_client} by the client, "
            f"{schedule.late_starts - schedule.late_by_client} waiting for --max-inflight)"
        )
    columns = (*PHASE_RANKS, "max")
    lines.append(f"{'phases':<11}" + "".join(f"{name:>10}" for name in columns))
    for name, values in phases_us(results).items():
        lines.append(f"  {name:<9}" + "".join(f"{duration(values[c]):>10}" for c in columns))
    if results.tls is not None:
        lines.append(f"tls          {results.tls[0]}, {results.tls[1]}")
    lines += [
        f"statuses     {statuses or 'none'}",
        f"errors       {errors or 'none'}",
        *([f"first error  {results.first_error}"] if results.first_error else []),
        f"client CPU   {cpu:.2f} s (user {results.cpu_user:.2f}, system "
        f"{results.cpu_system:.2f}), {results.cpu_fraction:.0%} of one core",
    ]
    if results.server_cpu is not None:
        per = duration(_per_handshake_us(results))
        lines.append(f"server CPU   {results.server_cpu:.2f} s, {per} per handshake")
    lines += [f"warning: {text}" for text in warnings(results)]
    return "\n".join(lines) + "\n"
