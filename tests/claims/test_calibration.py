"""A small run of benchmarks/verdict_calibration.py: the verdict intervals hold their level."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.verdict_calibration import SCENARIOS, calibrate

#: the statistic kinds shipped claims use (medians over seeds, paired two-arm statistics)
_KINDS = [
    sc
    for sc in SCENARIOS
    if sc.kind != "mean"
    and sc.dist
    in (
        "skewed (lognormal)",
        "censored (30 % ∞)",
        "paired lognormal",
        "paired, arm a censored (∞)",
        "paired heavy-tailed (t₂)",
    )
]


@pytest.mark.parametrize("sc", _KINDS, ids=lambda s: f"{s.kind}-{s.dist}")
@pytest.mark.parametrize("n_seeds", [6, 10])
def test_coverage_reaches_the_stated_level(sc, n_seeds):
    row = calibrate(sc, n_seeds, 300, np.random.default_rng(n_seeds))
    assert row.stated >= 0.95  # the budgets' seed counts reach the nominal level
    assert row.coverage >= row.stated - 0.05, row


def test_three_seeds_state_the_75_percent_they_reach():
    row = calibrate(_KINDS[0], 3, 300, np.random.default_rng(3))
    assert row.stated == pytest.approx(0.75)
    assert abs(row.coverage - 0.75) < 0.08, row
    assert "range of 3 seeds, 75 %" in row.method


@pytest.mark.parametrize("sc", _KINDS, ids=lambda s: f"{s.kind}-{s.dist}")
def test_three_seeds_give_no_false_decisive_verdict(sc):
    # the range of 3 seeds would decide a rule at its threshold 1 time in 4; the engine's rule
    # (no decisive verdict on an interval short of the nominal level) must bring that to ≤ 5 %
    row = calibrate(sc, 3, 200, np.random.default_rng(33))
    assert row.false_decisive <= 0.05, row


@pytest.mark.parametrize("n_seeds", [3, 10, 30])
def test_a_difference_of_shares_holds_at_least_its_level(n_seeds):
    (sc,) = [s for s in SCENARIOS if s.kind == "share diff"]
    row = calibrate(sc, n_seeds, 300, np.random.default_rng(n_seeds))
    assert row.stated == pytest.approx(0.95)
    assert row.coverage >= row.stated - 0.05, row
    assert row.false_decisive <= 0.05, row
