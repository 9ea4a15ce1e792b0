"""A log-linear latency histogram: percentiles without keeping every sample.

The layout is the one HdrHistogram made popular. Values below ``2**BITS``
get a bucket each, so they are exact. Above that, each power of two is cut
into ``HALF = 2**(BITS - 1)`` equal buckets, so a bucket is never wider than
``1 / HALF`` of the values it holds: with ``BITS = 11`` that is under 0.1 %,
three significant digits, whatever the magnitude.

Recording is a ``bit_length``, a shift and a list increment — cheap enough to
run once per handshake in the client's hot loop. Values are integers (the
runner records nanoseconds); anything beyond ``2**MAX_BITS`` is clamped into
the last bucket, while ``min`` and ``max`` stay exact.
"""

from __future__ import annotations

import math

BITS = 11
HALF = 1 << (BITS - 1)
MAX_BITS = 42  # 2**42 ns is more than an hour: no handshake lasts that long


def bucket_index(value: int) -> int:
    """Return the bucket that holds ``value`` (a non-negative integer)."""
    shift = value.bit_length() - BITS
    if shift <= 0:
        return value
    return (shift << (BITS - 1)) + (value >> shift)


def bucket_high(index: int) -> int:
    """Return the largest value that falls into bucket ``index``."""
    if index < 2 * HALF:
        return index
    shift = index // HALF - 1
    mantissa = index - shift * HALF
    return ((mantissa + 1) << shift) - 1


def rank_position(rank: float, count: int) -> int:
    """Return the 1-based position of the nearest-rank sample for ``rank`` %."""
    # Rounded first so that 99.9 % of 1000 is sample 999, not 1000 by float noise.
    return max(1, math.ceil(round(rank * count / 100, 9)))


_SIZE = bucket_index((1 << MAX_BITS) - 1) + 1
BUCKETS = MAX_BITS - BITS + 1  # powers of two above the exact range, as HdrHistogram counts them
SUB_BUCKETS = 2 * HALF


class Histogram:
    """Counts of integer values in log-linear buckets, plus exact min, max and sum."""

    __slots__ = ("_counts", "count", "max", "min", "total")

    def __init__(self) -> None:
        self._counts = [0] * _SIZE
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def record(self, value: int) -> None:
        index = bucket_index(value)
        self._counts[index if index < _SIZE else _SIZE - 1] += 1
        if self.count == 0 or value < self.min:
            self.min = value
        self.max = max(self.max, value)
        self.count += 1
        self.total += value

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentiles(self, *ranks: float) -> list[int]:
        """Return the value at each percentile rank (0-100), in the order given.

        A rank's value is that of the nearest-rank sample (the smallest sample
        with at least ``rank`` % of all samples at or below it), reported as
        the top of its bucket: never below the exact answer, and above it by
        less than one bucket width. Clamped to the exact ``min`` and ``max``.
        """
        if not self.count:
            return [0 for _ in ranks]
        wanted = sorted((rank_position(rank, self.count), i) for i, rank in enumerate(ranks))
        results = [0] * len(ranks)
        seen = 0
        pending = iter(wanted)
        need, slot = next(pending)
        for index, count in enumerate(self._counts):
            seen += count
            while seen >= need:
                high = self.max if index == _SIZE - 1 else bucket_high(index)
                results[slot] = min(max(high, self.min), self.max)
                step = next(pending, None)
                if step is None:
                    return results
                need, slot = step
        raise AssertionError("percentile ranks beyond the recorded count")

    def buckets(self) -> list[tuple[int, int]]:
        """Return ``(value, count)`` for every bucket that holds samples, in order;
        the value is the bucket's top, clamped to the exact ``min`` and ``max``."""
        last = _SIZE - 1
        return [
            (min(max(self.max if i == last else bucket_high(i), self.min), self.max), n)
            for i, n in enumerate(self._counts)
            if n
        ]

    def merge(self, other: Histogram) -> None:
        """Add every sample of ``other`` to this histogram."""
        if not other.count:
            return
        self._counts = [a + b for a, b in zip(self._counts, other._counts, strict=True)]
        self.min = min(self.min, other.min) if self.count else other.min
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total
