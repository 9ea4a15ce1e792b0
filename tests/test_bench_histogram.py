from __future__ import annotations

import random

import pytest

from tinyws.bench.histogram import HALF, Histogram, bucket_high, bucket_index, rank_position

RANKS = (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0)


def exact_percentile(values: list[int], rank: float) -> int:
    ordered = sorted(values)
    return ordered[rank_position(rank, len(ordered)) - 1]


def test_rank_position_is_nearest_rank() -> None:
    assert rank_position(50, 10) == 5
    assert rank_position(50, 11) == 6
    assert rank_position(99.9, 1000) == 999
    assert rank_position(0, 10) == 1
    assert rank_position(100, 10) == 10


def test_buckets_are_contiguous_and_narrow() -> None:
    previous = -1
    for value in [*range(5000), *random.Random(1).sample(range(1 << 40), 5000)]:
        index = bucket_index(value)
        high = bucket_high(index)
        assert high >= value
        assert bucket_index(high) == index
        assert bucket_index(high + 1) == index + 1
        # A bucket never spans more than 1/HALF of the values it holds.
        assert high - value <= value / HALF
        if value < 5000:
            assert index >= previous
            previous = index


def test_small_values_are_exact() -> None:
    hist = Histogram()
    values = list(range(1, 2001))
    for value in values:
        hist.record(value)
    assert hist.percentiles(*RANKS) == [exact_percentile(values, rank) for rank in RANKS]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentiles_match_exact_computation(seed: int) -> None:
    rng = random.Random(seed)
    # Latency-shaped: a lognormal body around 300 µs (in ns) plus a sparse tail.
    values = [int(rng.lognormvariate(12.6, 0.5)) for _ in range(20_000)]
    values += [rng.randrange(10**7, 10**9) for _ in range(30)]
    hist = Histogram()
    for value in values:
        hist.record(value)
    for rank, got in zip(RANKS, hist.percentiles(*RANKS), strict=True):
        exact = exact_percentile(values, rank)
        assert exact <= got <= exact * (1 + 1 / HALF), (rank, exact, got)
    assert (hist.min, hist.max, hist.count) == (min(values), max(values), len(values))
    assert hist.mean == pytest.approx(sum(values) / len(values))


def test_percentiles_keep_the_order_asked_for() -> None:
    hist = Histogram()
    for value in (10, 20, 30, 40):
        hist.record(value)
    assert hist.percentiles(100, 25, 50) == [40, 10, 20]


def test_empty_histogram_reports_zeros() -> None:
    hist = Histogram()
    assert hist.percentiles(50, 99) == [0, 0]
    assert (hist.min, hist.max, hist.mean) == (0, 0, 0.0)


def test_huge_values_are_clamped_but_max_stays_exact() -> None:
    hist = Histogram()
    hist.record(1 << 50)
    hist.record(5)
    assert hist.max == 1 << 50
    assert hist.percentiles(100) == [1 << 50]
    assert hist.percentiles(50) == [5]
