"""Issue 9's last sub-parts on inputs whose answer is known: ``count_x_vs`` (N2's "BN ≥ no-BN at
≥ 12/16 scales") and the ``forward_macs`` probe (X2's multiply-add count)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.claims import STATISTICS
from harness.claims.engine import seed_statistic, seeds_sample
from harness.claims.probes import PROBES
from harness.claims.resampling import GroupedMeasures


def table(values: dict[tuple[str, float], list[float]]) -> GroupedMeasures:
    """``{(arm, x): [per-seed m]}`` → grouped measures over params arm, x."""
    rows = [
        {"arm": arm, "x": x, "replicate": r, "status": "completed", "m": v}
        for (arm, x), vals in values.items()
        for r, v in enumerate(vals)
    ]
    return GroupedMeasures.from_table(pd.DataFrame(rows), ["arm", "x"], ["m"])


def point(spec: dict, data: GroupedMeasures) -> float:
    stat = STATISTICS.build(spec)
    assert stat.validate() == [], stat.validate()
    return float(stat.compute(data.point()).values[0, 0])


VS = {"name": "count_x_vs", "measure": "m", "x": "x", "a": {"arm": "a"}, "b": {"arm": "b"}}
GE0 = {"op": ">=", "value": 0}


def test_count_x_vs_counts_the_x_values_where_a_is_at_least_b():
    # a beats b at x = 1, ties at x = 2, loses at x = 3 (by median over seeds)
    data = table(
        {
            ("a", 1.0): [0.9, 0.8, 0.95],
            ("b", 1.0): [0.1, 0.1, 0.1],
            ("a", 2.0): [1.0, 1.0, 1.0],
            ("b", 2.0): [1.0, 1.0, 1.0],
            ("a", 3.0): [0.2, 0.3, 0.2],
            ("b", 3.0): [0.9, 0.9, 0.9],
        }
    )
    assert point({**VS, "condition": GE0}, data) == 2
    assert point({**VS, "condition": {"op": ">", "value": 0}}, data) == 1
    assert point({**VS, "condition": GE0, "share": True}, data) == pytest.approx(2 / 3)
    # ratio a / b ≥ 2 only at x = 1
    assert point({**VS, "condition": {"op": ">=", "value": 2}, "compare": "ratio"}, data) == 1


def test_count_x_vs_is_per_seed_in_the_engine_and_undefined_without_a_side():
    # seed 0: a wins at both x; seed 1: at one; seed 2: at none
    data = table(
        {
            ("a", 1.0): [0.9, 0.9, 0.1],
            ("b", 1.0): [0.5, 0.5, 0.5],
            ("a", 2.0): [0.9, 0.1, 0.1],
            ("b", 2.0): [0.5, 0.5, 0.5],
        }
    )
    stat = STATISTICS.build({**VS, "condition": GE0})
    ((_, est, iv, unknown),) = seed_statistic(stat, seeds_sample(data), 0.95)
    assert (est, iv.low, iv.high, unknown) == (1.0, 0.0, 2.0, 0)
    failed = table({("a", 1.0): [np.nan, np.nan], ("b", 1.0): [0.5, 0.5]})
    assert math.isnan(point({**VS, "condition": GE0}, failed))
    only_a = table({("a", 1.0): [0.5], ("b", 2.0): [0.5]})  # no shared x
    assert math.isnan(point({**VS, "condition": GE0}, only_a))


def test_count_x_vs_names_a_bad_argument():
    problems = STATISTICS.build({**VS, "condition": GE0, "share": "yes"}).validate()
    assert problems and problems[0][0] == "share"
    problems = STATISTICS.build({**VS, "b": None, "condition": GE0}).validate()
    assert problems and problems[0][0] == "b"
    problems = STATISTICS.build({**VS, "a": 3, "condition": GE0}).validate()
    # one line: the sides are checked once, by _Sided
    assert [p[:2] for p in problems] == [("a", 3)]


def test_forward_macs_counts_dense_and_conv_layers_exactly():
    rng = np.random.default_rng(0)
    mlp = PROBES.build(
        {
            "name": "forward_macs",
            "model": {"name": "mlp", "hidden": [256, 256]},
            "input_shape": [40],
        }
    )
    assert mlp.validate() == []
    got = mlp.run(rng)
    assert got.values["macs"] == 40 * 256 + 256 * 256 + 256 * 10
    assert [r["layer_macs"] for r in got.records] == [40 * 256, 256 * 256, 256 * 10]
    assert got.values["n_params"] == got.values["macs"] + 256 + 256 + 10  # weights + biases
    cnn = PROBES.build({"name": "forward_macs", "model": {"name": "conv1d_net"}}).run(rng)
    # 3 convs of 25 channels, kernel 5, stride 2, padding 1: length 40 → 19 → 9 → 4, then 100 → 10
    per = [19 * 25 * 1 * 5, 9 * 25 * 25 * 5, 4 * 25 * 25 * 5, 4 * 25 * 10]
    assert [r["layer_macs"] for r in cnn.records] == per
    assert cnn.values["macs"] == sum(per) and cnn.values["largest_layer_macs"] == max(per)


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"input_shape": [0]}, "input_shape"),
        ({"n_outputs": 0}, "n_outputs"),
        ({"model": 3}, "model"),
    ],
)
def test_forward_macs_names_a_bad_argument(kwargs, arg):
    problems = PROBES.build({"name": "forward_macs", **kwargs}).validate()
    assert problems and problems[0][0] == arg
