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
