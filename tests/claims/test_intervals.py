"""Interval methods: exact levels, coverage by simulation, unknown values, printing."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from harness.claims.intervals import (
    fmt_estimate,
    median_coverage,
    median_interval,
    order_statistic_rank,
    paired_share_diff_interval,
    seed_interval,
    t_interval,
)


@pytest.mark.parametrize(
    ("n", "rank", "level"),
    [(3, 1, 0.75), (5, 1, 1 - 2 / 32), (6, 1, 1 - 2 / 64), (10, 2, 1 - 2 * 11 / 1024)],
)
def test_rank_is_the_largest_that_reaches_the_nominal_level(n, rank, level):
    j, got = order_statistic_rank(n, 0.95)
    assert j == rank
    assert got == pytest.approx(level)
    if got >= 0.95 and 2 * (j + 1) <= n + 1:
        assert median_coverage(n, j + 1) < 0.95


def test_three_seeds_say_they_are_the_range_at_75_percent():
    iv = median_interval([3.0, 1.0, 2.0])
    assert (iv.low, iv.high) == (1.0, 3.0)
    assert iv.label() == "range of 3 seeds, 75 %"
    assert iv.short_of_nominal
    assert "75 %" in iv.note() and "95 %" in iv.note()


@pytest.mark.parametrize("n", [3, 6, 10])
@pytest.mark.parametrize("dist", ["normal", "lognormal", "cauchy"])
def test_order_statistic_interval_holds_its_stated_level(n, dist):
    rng = np.random.default_rng(n)
    draw = {
        "normal": lambda size: rng.normal(2.0, 1.0, size),
        "lognormal": lambda size: rng.lognormal(0.0, 1.0, size),
        "cauchy": lambda size: rng.standard_cauchy(size),
    }[dist]
    truth = {"normal": 2.0, "lognormal": 1.0, "cauchy": 0.0}[dist]
    hits = []
    for _ in range(2000):
        iv = median_interval(draw(n))
        hits.append(iv.low <= truth <= iv.high)
    cov = float(np.mean(hits))
    # binomial s.e. at 2000 draws is < 1 point
    assert abs(cov - iv.level) < 0.025, (cov, iv.level)


def test_unknown_values_widen_the_interval_and_never_narrow_it():
    iv = median_interval([1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    assert iv.low == -math.inf and iv.high == math.inf  # the range, with one unknown
    iv10 = median_interval([1, 2, 3, 4, 5, 6, 7, 8, 9, np.nan])
    assert (iv10.low, iv10.high) == (1.0, 9.0)  # 2nd lowest if unknown is −∞, 2nd highest if +∞


def test_infinite_values_sort_last():
    est, iv = seed_interval([1.0, 2.0, 3.0, math.inf, math.inf, math.inf])
    assert iv.low == 1.0 and iv.high == math.inf
    assert est == math.inf


def test_t_interval_needs_finite_values():
    iv = t_interval([1.0, 2.0, math.inf])
    assert iv.low == -math.inf and iv.high == math.inf
    iv = t_interval([1.0, 2.0, 3.0])
    assert iv.low < 2.0 < iv.high and iv.method == "student_t"


def test_seed_interval_stays_inside_the_metric_range():
    est, iv = seed_interval([0.1, 0.95, 0.99], bounds=(0.0, 1.0))
    assert 0.0 <= iv.low <= est <= iv.high <= 1.0


@pytest.mark.parametrize(
    "values",
    [
        [0.9796, 0.9790, 0.9801, 0.9805, 0.9799, 0.98],
        [0.97955, 0.97951, 0.97959],
        [12.0, 13.0, 14.0],
        [0.000123, 0.0005, 0.002],
        [1.5, 2.0, math.inf],
    ],
)
def test_printed_estimate_is_inside_its_printed_interval(values):
    est, iv = seed_interval(values)
    text = fmt_estimate(est, iv)
    m = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", text)
    assert m, text

    def num(s: str) -> float:
        return math.inf if s == "∞" else float(s)

    e, lo, hi = (num(g) for g in m.groups())
    assert lo <= e <= hi, text
    assert lo <= iv.low and iv.high <= hi, text  # rounded outward, never inward


def test_sweep_summary_interval_is_inside_the_accuracy_range_and_names_its_method():
    from harness.study.summary import metric_bounds, seeds_summary

    assert metric_bounds("val/accuracy") == (0.0, 1.0)
    assert metric_bounds("val/loss") is None
    # the case the issue quotes: a t-interval gave 0.5722 [-0.265, 1.41]
    mean, _sd, med, iv = seeds_summary([0.1, 0.7166, 0.9], "val/accuracy")
    assert 0.0 <= iv.low <= med <= iv.high <= 1.0
    assert iv.label() == "range of 3 seeds, 75 %"
    assert mean == pytest.approx((0.1 + 0.7166 + 0.9) / 3)


def test_a_paired_share_difference_widens_for_unknown_seeds_and_stays_in_range():
    est, iv = paired_share_diff_interval([1.0] * 10)
    assert est == 1.0 and iv.method == "paired_clopper_pearson" and iv.level == 0.95
    assert -1.0 <= iv.low < iv.high <= 1.0
    est2, iv2 = paired_share_diff_interval([1.0] * 9 + [float("nan")])
    assert est2 == 1.0  # the known seeds' mean
    assert iv2.low < iv.low and iv2.high == iv.high  # an unknown seed only widens it
    est3, iv3 = paired_share_diff_interval([1.0, -1.0, 0.0, 0.0] * 5)
    assert est3 == 0.0 and iv3.low < 0.0 < iv3.high
    assert "at least 95 %" in iv3.label()
