"""The serving benchmark's verdict on the hand-off cost: a median interval, not one noisy run."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest


def test_interval_uses_order_statistics_with_binomial_coverage(bench: ModuleType) -> None:
    costs = [5.5, 4.2, 3.5, 4.9, 5.1, -3.1, 2.7, 1.1, 0.9]
    # 9 runs: the 2nd smallest and 2nd largest, 1 - 2 * (1 + 9) / 512 coverage.
    assert bench.median_interval(costs) == (0.9, 5.1, pytest.approx(1 - 20 / 512))
    # 3 runs cannot reach 90%: the whole range, at the 75% it does reach.
    assert bench.median_interval([6.9, -1.8, 3.0]) == (-1.8, 6.9, pytest.approx(0.75))
    # 20 runs: the textbook 95% interval for the median, x(6) and x(15).
    assert bench.median_interval(list(range(20)))[:2] == (5, 14)


def test_interval_holds_the_median_as_often_as_it_says(bench: ModuleType) -> None:
    rng = np.random.default_rng(4)
    trials, hits = 4_000, 0
    claimed = 0.0
    for _ in range(trials):
        low, high, claimed = bench.median_interval(list(rng.standard_cauchy(9)))
        hits += low <= 0.0 <= high  # the Cauchy median is 0
    assert claimed == pytest.approx(0.961, abs=1e-3)
    assert abs(hits / trials - claimed) < 0.015


def test_verdict_needs_the_whole_interval_on_one_side(bench: ModuleType) -> None:
    assert bench.cost_verdict(0.9, 4.9, 0.96).startswith("met")
    assert bench.cost_verdict(5.1, 9.0, 0.96).startswith("not met")
    assert bench.cost_verdict(0.9, 5.1, 0.96).startswith("not decided")
    # Three runs reach 75% at best: no call either way.
    assert bench.cost_verdict(0.9, 4.9, 0.75).startswith("too few runs")
