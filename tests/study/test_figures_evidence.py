"""Sweep figures as evidence: seed intervals on every mean, curves grouped by the scientific
parameter, failed and pruned trials listed with their reasons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.study.plots import (
    _Axis,
    _seed_band,
    curve_groups,
    interval_label,
    metric_label,
    paper_figure,
    with_seed_intervals,
)
from harness.study.summary import _not_completed, seed_interval


def _frame() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "number": [0, 1, 2, 3, 4],
            "state": ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED", "FAIL"],
            "value": [0.5, 0.7, 0.6, math.nan, math.nan],
            "params_width": [8, 8, 32, 32, 8],
            "params_lr": [0.1, 0.01, 0.1, 0.05, 0.2],
        }
    )
    df.attrs["directions"] = ["maximize"]
    return df


AXES = [_Axis.of_choices("width", [8, 32], "scientific"), _Axis("lr", False, True, 1e-3, 1.0)]


def test_seed_intervals_join_the_trials_by_number():
    trials = pd.DataFrame(
        {
            "number": [2, 0, 1],
            "seeds/val/accuracy/median": [0.6, 0.5, 0.7],
            "seeds/val/accuracy/ci_low": [0.55, 0.4, 0.65],
            "seeds/val/accuracy/ci_high": [0.65, 0.6, 0.75],
            "seeds/val/accuracy/ci_level": [0.75, 0.75, 0.75],
        }
    )
    df = with_seed_intervals(_frame(), trials, ["val/accuracy"])
    assert df["ci_low_0"].tolist()[:3] == [0.4, 0.65, 0.55]
    assert df["median_0"].tolist()[:3] == [0.5, 0.7, 0.6]
    assert np.isnan(df["ci_low_0"].iloc[3])
    assert interval_label(df["ci_level_0"]).endswith("(75% level)")


def test_curves_are_grouped_by_the_scientific_parameter_with_the_best_of_each():
    groups = curve_groups(_frame(), AXES, direction="maximize")
    assert groups.name == "width" and groups.order == ["8", "32"]
    assert groups.best == {"8": 1, "32": 2}
    assert groups.of_trial[3] == "32" and groups.pruned == {3}


def test_the_band_is_the_seed_interval_at_every_epoch():
    rng = np.random.default_rng(0)
    rows = [
        {
            "trial": 1,
            "replicate": r,
            "epoch": e,
            "val/accuracy": 0.5 + 0.1 * e + rng.normal(0, 0.02),
        }
        for r in range(4)
        for e in range(3)
    ]
    seeds = pd.DataFrame(rows)
    band = _seed_band(seeds, 1, "val/accuracy")
    for e in range(3):
        values = seeds[seeds["epoch"] == e]["val/accuracy"].tolist()
        med, iv = seed_interval(values, (0.0, 1.0))
        got = band[band["epoch"] == e].iloc[0]
        assert (got["median"], got["low"], got["high"], got["n"]) == (med, iv.low, iv.high, 4)
        assert got["level"] == iv.level < 0.95  # 4 seeds reach 87.5 %, and the label says so
    assert _seed_band(seeds[seeds["replicate"] == 0], 1, "val/accuracy") is None  # one seed


def test_the_paper_figure_renders_with_intervals(tmp_path):
    df = _frame().assign(ci_low_0=[0.4, 0.6, 0.5, math.nan, math.nan])
    df["ci_high_0"] = df["ci_low_0"] + 0.2
    df["median_0"] = df["ci_low_0"] + 0.1
    df["ci_level_0"] = 0.75
    curves = pd.DataFrame(
        [
            {"trial": t, "epoch": e, "val/accuracy": 0.3 + 0.1 * e}
            for t in range(3)
            for e in range(3)
        ]
    )
    groups = curve_groups(df, AXES, direction="maximize")
    path = paper_figure(
        df,
        AXES,
        curves,
        tmp_path / "figure.png",
        direction="maximize",
        objective_name="val/accuracy",
        groups=groups,
        title="t",
    )
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 20_000


def test_units_on_the_axes():
    assert metric_label("val/accuracy") == "val/accuracy (fraction correct)"
    assert metric_label("time/train_s") == "time/train_s (s)"
    assert metric_label("custom") == "custom"


def test_failed_and_pruned_trials_are_listed_with_their_reasons():
    table = pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "state": ["COMPLETE", "FAIL", "PRUNED", "FAIL"],
            "interrupted": [False, False, False, True],
            "reason": [
                "",
                "seed 7: diverged: loss is NaN at step 3\ntrace",
                "pruned at epoch 2",
                "",
            ],
        }
    )
    lines = _not_completed(table)
    assert lines[1] == "failed and pruned trials (2):"
    assert lines[2] == "  #1 failed: seed 7: diverged: loss is NaN at step 3"
    assert lines[3] == "  #2 pruned: pruned at epoch 2"
