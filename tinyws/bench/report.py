"""Turn results into the text summary and the JSON document."""

from __future__ import annotations

from typing import Any

from tinyws.bench.runner import Plan, Results

# Above this share of one core, the client rather than the server may be the limit.
CLIENT_BOUND = 0.9
# Shorter runs are mostly start-up and tear-down: their CPU share means nothing.
MIN_JUDGED_S = 0.5
RANKS = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}
SCHEMA_VERSION = 1


def client_bound(results: Results) -> bool:
    """Say whether the client's own CPU use may have limited the rate."""
    judged = results.responses > 0 and results.elapsed >= MIN_JUDGED_S
    return judged and results.cpu_fraction >= CLIENT_BOUND


def latency_us(results: Results) -> dict[str, float | None]:
    """Return min, mean, the percentiles and max in microseconds, None without responses."""
    hist = results.latency
    if not hist.count:
        return dict.fromkeys(("min", "mean", *RANKS, "max"))
    values = dict(zip(RANKS, hist.percentiles(*RANKS.values()), strict=True))
    ns = {"min": hist.min, "mean": hist.mean, **values, "max": hist.max}
    return {name: round(value / 1000, 1) for name, value in ns.items()}


def to_json(url: str, plan: Plan, results: Results, runtime: str) -> dict[str, Any]:
    cpu = results.cpu_user + results.cpu_system
    return {
        "schema": SCHEMA_VERSION,
        "url": url,
        "config": {
            "count": plan.count,
            "duration_s": plan.duration,
            "concurrency": plan.concurrency,
            "warmup": plan.warmup,
            "timeout_s": plan.timeout,
            "expect": plan.expect,
            "subprotocols": sorted(plan.target.subprotocols),
            "runtime": runtime,
        },
        "handshakes": results.attempts,
        "responses": results.responses,
        "elapsed_s": round(results.elapsed, 6),
        "handshakes_per_s": round(results.handshakes_per_s, 1),
        "latency_us": latency_us(results),
        "statuses": {str(code): n for code, n in sorted(results.statuses.items())},
        "errors": dict(sorted(results.errors.items())),
        "stopped_early": results.stopped is not None,
        "client_cpu": {
            "user_s": round(results.cpu_user, 3),
            "system_s": round(results.cpu_system, 3),
            "total_s": round(cpu, 3),
            "share_of_core": round(results.cpu_fraction, 3),
            "bound": client_bound(results),
        },
    }


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


def to_text(url: str, plan: Plan, results: Results, runtime: str) -> str:
    latency = latency_us(results)
    shown = ("min", "p50", "p90", "p99", "p99_9", "max")
    names = "".join(f"{name.replace('_', '.'):>10}" for name in shown)
    values = "".join(f"{duration(latency[name]):>10}" for name in shown)
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(results.statuses.items()))
    errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(results.errors.items()))
    cpu = results.cpu_user + results.cpu_system
    lines = [
        f"target       {url}",
        f"handshakes   {results.attempts} in {results.elapsed:.2f} s, "
        f"{plan.concurrency} concurrent ({runtime})",
        f"rate         {results.handshakes_per_s:.0f} handshakes/s",
        f"latency    {names}",
        f"           {values}",
        f"statuses     {statuses or 'none'}",
        f"errors       {errors or 'none'}",
        f"client CPU   {cpu:.2f} s (user {results.cpu_user:.2f}, system "
        f"{results.cpu_system:.2f}), {results.cpu_fraction:.0%} of one core",
    ]
    if client_bound(results):
        lines.append(
            "warning: the client kept a CPU core busy, so these figures may measure the "
            "client, not the server; give each its own core or split the load over "
            "several client processes"
        )
    return "\n".join(lines) + "\n"
