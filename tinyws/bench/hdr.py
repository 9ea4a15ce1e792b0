"""``--hdr FILE``: the latency distribution in HdrHistogram's percentile text format (.hgrm).

The layout is the one HdrHistogram's ``outputPercentileDistribution`` prints
(and wrk2 writes, and HdrHistogram's online plotter reads): a header line,
then one row per percentile step — value, percentile as a fraction,
cumulative count, ``1/(1-percentile)`` — the 100 % row without that last
column, then three ``#[...]`` footer lines (mean and standard deviation, max
and count, bucket layout). Values are in milliseconds with three decimals
(microsecond resolution), as ``outputValueUnitScalingRatio`` of 1e6 on
nanoseconds gives.

The percentile steps are HdrHistogram's: from 0 %, each half of the distance
left to 100 % is cut into ``TICKS_PER_HALF`` steps (0, 10, 20 … 50, 55, 60 …
75, 77.5 …), and a step is reported at the first bucket that reaches it,
with that bucket's top value. So the rows get denser towards the tail.
"""

from __future__ import annotations

import math

from tinyws.bench.histogram import BUCKETS, SUB_BUCKETS, Histogram

TICKS_PER_HALF = 5
SCALE = 1e6  # nanoseconds to milliseconds
DIGITS = 3


def percentile_rows(hist: Histogram) -> list[tuple[int, float, int]]:
    """Return ``(value, percentile 0-100, cumulative count)`` rows, the last at 100 %."""
    rows: list[tuple[int, float, int]] = []
    level, seen = 0.0, 0
    buckets = hist.buckets()
    for value, count in buckets:
        seen += count
        # At the last bucket HdrHistogram reports the step it reaches once, then 100 %.
        while 100.0 * seen / hist.count >= level:
            rows.append((value, level, seen))
            level = _next_level(level)
            if seen == hist.count:
                break
    if buckets:
        rows.append((buckets[-1][0], 100.0, hist.count))
    return rows


def _next_level(level: float) -> float:
    halvings = int(math.log(100.0 / (100.0 - level)) / math.log(2))
    ticks = TICKS_PER_HALF << (halvings + 1)
    return level + 100.0 / ticks


def stddev(hist: Histogram) -> float:
    """The standard deviation from the buckets, as HdrHistogram computes it."""
    if not hist.count:
        return 0.0
    mean = hist.mean
    squares = sum(count * (value - mean) ** 2 for value, count in hist.buckets())
    return math.sqrt(squares / hist.count)


def to_hgrm(hist: Histogram) -> str:
    """Return the .hgrm text of ``hist`` (values recorded in nanoseconds)."""
    lines = [f"{'Value':>12} {'Percentile':>14} {'TotalCount':>10} {'1/(1-Percentile)':>14}", ""]
    for value, level, seen in percentile_rows(hist):
        fraction = level / 100.0
        row = f"{value / SCALE:12.{DIGITS}f} {fraction:2.12f} {seen:10d}"
        lines.append(row if level == 100.0 else f"{row} {1 / (1 - fraction):14.2f}")
    lines += [
        f"#[Mean    = {hist.mean / SCALE:12.{DIGITS}f}, "
        f"StdDeviation   = {stddev(hist) / SCALE:12.{DIGITS}f}]",
        f"#[Max     = {hist.max / SCALE:12.{DIGITS}f}, Total count    = {hist.count:12d}]",
        f"#[Buckets = {BUCKETS:12d}, SubBuckets     = {SUB_BUCKETS:12d}]",
    ]
    return "\n".join(lines) + "\n"
