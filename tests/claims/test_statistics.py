"""Statistics on grouped arrays, ∞ handling, and the seed-cluster bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.claims import STATISTICS
from harness.claims.resampling import GroupedMeasures, bootstrap_indices, percentile_ci
from harness.claims.statistics import safe_ratio


def grouped(values: dict, param: str = "x", measure: str = "m") -> GroupedMeasures:
    """``{x: [per-replicate values]}`` → GroupedMeasures."""
    rows = [
        {param: x, "replicate": r, "status": "completed", measure: v}
        for x, vals in values.items()
        for r, v in enumerate(vals)
    ]
    return GroupedMeasures.from_table(pd.DataFrame(rows), [param], [measure])


def point(stat_spec: dict, data: GroupedMeasures) -> float:
    stat = STATISTICS.build(stat_spec)
    assert stat.validate() == []
    return float(stat.compute(data.point()).values[0, 0])


def test_safe_ratio_conventions():
    got = safe_ratio(
        np.array([math.inf, 1.0, math.inf, 0.0, 2.0]), np.array([3.0, math.inf, math.inf, 0.0, 0.0])
    )
    assert got[0] == math.inf
    assert got[1] == 0.0
    assert math.isnan(got[2])
    assert math.isnan(got[3])
    assert got[4] == math.inf


def test_spearman_ranks_inf_as_largest():
    inf = math.inf
    data = grouped({1: [1, 1, 1], 2: [2, 2, 2], 4: [5, 5, 5], 8: [inf, inf, inf]})
    assert point({"name": "spearman", "measure": "m", "x": "x"}, data) == pytest.approx(1.0)
    flat = grouped({1: [inf] * 3, 2: [inf] * 3, 4: [inf] * 3})
    assert math.isnan(point({"name": "spearman", "measure": "m", "x": "x"}, flat))
    where = {"name": "spearman", "measure": "m", "x": "x", "where": {"x": {">=": 2}}}
    down = grouped({1: [9, 9, 9], 2: [3, 3, 3], 4: [2, 2, 2], 8: [1, 1, 1]})
    assert point(where, down) == pytest.approx(-1.0)


def test_gap_interior_and_endpoint_statistics():
    data = grouped({1: [0.5] * 3, 2: [0.9] * 3, 4: [0.95] * 3, 8: [0.8] * 3})
    gap = point({"name": "gap_to_best", "measure": "m", "x": "x", "at": "min"}, data)
    assert gap == pytest.approx(0.45)
    margin = point({"name": "interior_optimum", "measure": "m", "x": "x"}, data)
    assert margin == pytest.approx(0.15)
    edge = grouped({1: [0.5] * 3, 2: [0.6] * 3, 4: [0.7] * 3})
    assert point({"name": "interior_optimum", "measure": "m", "x": "x"}, edge) == pytest.approx(
        -0.1
    )
    times = grouped({1: [10.0] * 3, 2: [2.0] * 3, 4: [4.0] * 3, 8: [math.inf] * 3})
    ratio = point({"name": "endpoint_ratio", "measure": "m", "x": "x", "mode": "min"}, times)
    assert ratio == pytest.approx(5.0)


def test_interior_optimum_in_seed_sd_units():
    data = grouped({1: [0.5, 0.6, 0.7], 2: [1.0, 1.1, 1.2], 4: [0.6, 0.7, 0.8]})
    stat = {"name": "interior_optimum", "measure": "m", "x": "x", "units": "sd"}
    assert point(stat, data) == pytest.approx(0.4 / 0.1)


def test_ratio_by_stratum_keeps_one_value_per_stratum():
    rows = [
        {"loss": loss, "lr": lr, "replicate": r, "status": "completed", "m": v}
        for loss, scale in (("mse", 3.0), ("ce", 1.0))
        for lr in (0.1, 1.0)
        for r, v in enumerate([scale * 2, scale * 2, scale * 2])
    ]
    data = GroupedMeasures.from_table(pd.DataFrame(rows), ["loss", "lr"], ["m"])
    stat = STATISTICS.build(
        {
            "name": "ratio",
            "measure": "m",
            "param": "loss",
            "a": "mse",
            "b": "ce",
            "by": "lr",
            "reduce": "all",
        }
    )
    out = stat.compute(data.point())
    assert out.labels == ["lr=0.1", "lr=1"]
    assert out.values[0].tolist() == pytest.approx([3.0, 3.0])
    stat_min = STATISTICS.build(
        {
            "name": "ratio",
            "measure": "m",
            "param": "loss",
            "a": "mse",
            "b": "ce",
            "by": "lr",
            "reduce": "min",
        }
    )
    assert stat_min.compute(data.point()).values.shape == (1, 1)


def test_two_group_effect_size():
    data = grouped({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.5, 2.0, 3.5]})
    stat = STATISTICS.build({"name": "diff", "measure": "m", "param": "x", "a": "a", "b": "b"})
    eff = stat.effect(data)
    d = np.array([1.0, 0.5, 1.0, 0.5])
    assert eff["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert eff["cliffs_delta"] > 0


def test_percentile_ci_handles_inf_and_reports_undefined_draws():
    lo, hi, undefined = percentile_ci(np.array([1.0, 2.0, math.inf, math.inf, math.nan]), 0.9)
    assert lo == 1.0
    assert hi == math.inf
    assert undefined == pytest.approx(0.2)


def _diff_ci(n_seeds: int, data_seed: int, delta: float = 0.2) -> tuple[float, float]:
    rng = np.random.default_rng(data_seed)
    shared = rng.normal(0, 0.1, n_seeds)  # the seed effect both groups share (paired design)
    a = 1.0 + delta + shared + rng.normal(0, 0.05, n_seeds)
    b = 1.0 + shared + rng.normal(0, 0.05, n_seeds)
    data = grouped({"a": a.tolist(), "b": b.tolist()})
    stat = STATISTICS.build(
        {"name": "diff", "measure": "m", "param": "x", "a": "a", "b": "b", "center": "mean"}
    )
    idx = bootstrap_indices(n_seeds, 1000, np.random.default_rng(123))
    lo, hi, _ = percentile_ci(stat.compute(data.sample(idx)).values[:, 0], 0.95)
    return lo, hi


def test_bootstrap_ci_covers_a_known_difference_and_shrinks_with_seeds():
    cis = [_diff_ci(20, s) for s in range(20)]
    coverage = np.mean([lo <= 0.2 <= hi for lo, hi in cis])
    assert coverage >= 0.8  # nominal 0.95; the percentile bootstrap under-covers a little at n=20
    width = {
        n: np.mean([hi - lo for lo, hi in (_diff_ci(n, s) for s in range(8))]) for n in (5, 40)
    }
    assert width[40] < 0.6 * width[5]


def test_cluster_bootstrap_resamples_the_same_seeds_in_every_group():
    # groups differ by a constant within every seed: any resample of seeds keeps the difference
    base = [0.3, 0.9, 0.1, 0.5, 0.7]
    data = grouped({"a": [v + 1.0 for v in base], "b": base})
    stat = STATISTICS.build(
        {"name": "diff", "measure": "m", "param": "x", "a": "a", "b": "b", "center": "mean"}
    )
    idx = bootstrap_indices(5, 300, np.random.default_rng(0))
    vals = stat.compute(data.sample(idx)).values[:, 0]
    assert np.allclose(vals, 1.0)
