"""Per-run measures on toy curves: targets, divergence, telemetry layers, missing metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.claims import MEASURES, ClaimError, RunTable
from harness.claims.measures import compute_measures, layer_columns


def curve(**cols):
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"epoch": np.arange(n), **cols})


ACC = [0.1, 0.5, 0.96, 0.97, 0.97]
RUN = {"status": "completed"}


def build(spec):
    m = MEASURES.build(spec)
    assert m.validate() == []
    return m


def test_epochs_to_first_epoch_at_target_and_inf_when_never():
    m = build({"name": "epochs_to", "metric": "val/accuracy", "target": 0.95})
    assert m.value(RUN, curve(**{"val/accuracy": ACC})) == 2
    assert m.value(RUN, curve(**{"val/accuracy": [0.1, 0.5, 0.9]})) == math.inf
    # NaN metrics (a run that stopped recording) never count as reaching the target
    assert m.value(RUN, curve(**{"val/accuracy": [0.1, np.nan, np.nan]})) == math.inf


def test_diverged_run_never_counts_as_reaching_the_target():
    m = build({"name": "epochs_to", "metric": "val/accuracy", "target": 0.95})
    c = curve(**{"val/accuracy": ACC})
    assert m.value({"status": "diverged"}, c) == math.inf
    assert math.isnan(m.value({"status": "failed"}, c))
    keep = build(
        {"name": "epochs_to", "metric": "val/accuracy", "target": 0.95, "on_diverged": "value"}
    )
    assert keep.value({"status": "diverged"}, c) == 2


def test_final_with_divergence_rules():
    c = curve(**{"val/accuracy": [0.1, 0.8, np.nan]})
    plain = build({"name": "final", "metric": "val/accuracy"})
    assert math.isnan(plain.value({"status": "diverged"}, c))
    chance = build({"name": "final", "metric": "val/accuracy", "on_diverged": 0.1})
    assert chance.value({"status": "diverged"}, c) == pytest.approx(0.1)
    assert build({"name": "best", "metric": "val/accuracy"}).value(RUN, c) == pytest.approx(0.8)
    # no curve: the summary column is used
    assert plain.value({"status": "completed", "final/val/accuracy": 0.7}, c.iloc[0:0]) == 0.7


def test_lower_is_better_target_and_time_to():
    loss = [2.3, 1.0, 0.4, 0.2]
    m = build({"name": "epochs_to", "metric": "train/loss", "target": 0.5, "mode": "<="})
    assert m.value(RUN, curve(**{"train/loss": loss})) == 2
    t = build({"name": "time_to", "metric": "val/accuracy", "target": 0.95})
    c = curve(**{"val/accuracy": ACC, "time/epoch_train_s": [np.nan, 1.0, 2.0, 4.0, 8.0]})
    assert t.value(RUN, c) == pytest.approx(3.0)  # epochs 1 and 2; the at-init row adds nothing
    s = build({"name": "steps_to", "metric": "val/accuracy", "target": 0.95, "n_train": 100})
    assert s.value({**RUN, "train.batch_size": 32}, c) == 2 * 4  # ceil(100 / 32) = 4 steps/epoch


def test_layer_ratio_orders_layers_by_number_not_text():
    cols = {
        "grad_norm/dense_10.W": [2.0, 2.0],
        "grad_norm/dense_0.W": [1e-6, 1e-5],
        "grad_norm/dense_2.W": [1e-3, 1e-3],
        "grad_norm/dense_2.b": [5.0, 5.0],
    }
    c = curve(**cols)
    assert layer_columns(c.columns, "grad_norm/", ".W") == [
        "grad_norm/dense_0.W",
        "grad_norm/dense_2.W",
        "grad_norm/dense_10.W",
    ]
    r = build({"name": "layer_ratio", "prefix": "grad_norm/", "suffix": ".W", "epoch": 0})
    assert r.value(RUN, c) == pytest.approx(0.5e-6)
    last = build({"name": "layer_ratio", "prefix": "grad_norm/", "suffix": ".W", "epoch": "last"})
    assert last.value(RUN, c) == pytest.approx(0.5e-5)
    st = build({"name": "layer_stat", "prefix": "grad_norm/", "suffix": ".W", "how": "max"})
    assert st.value(RUN, c) == 2.0


def test_layers_of_a_shallower_run_in_a_table_of_deeper_nets():
    # the deepest run created dense_4; this run (3 layers) has NaN there: its last layer is dense_2
    c = curve(
        **{
            "grad_norm/dense_0.W": [1e-3],
            "grad_norm/dense_2.W": [1.0],
            "grad_norm/dense_4.W": [np.nan],
        }
    )
    r = build({"name": "layer_ratio", "prefix": "grad_norm/", "suffix": ".W", "epoch": 0})
    assert r.value(RUN, c) == pytest.approx(1e-3)
    st = build({"name": "layer_stat", "prefix": "grad_norm/", "suffix": ".W", "layers": "last"})
    assert st.value(RUN, c) == 1.0


def test_aggregate_skips_warmup_epochs():
    c = curve(**{"throughput/samples_per_s": [np.nan, 10.0, 100.0, 110.0, 90.0]})
    m = build({"name": "aggregate", "metric": "throughput/samples_per_s", "from_epoch": 2})
    assert m.value(RUN, c) == 100.0


def test_bad_measure_arguments_are_reported():
    m = MEASURES.build({"name": "epochs_to", "metric": "val/accuracy", "target": "high"})
    assert [p[0] for p in m.validate()] == ["target"]
    m = MEASURES.build({"name": "final", "metric": "val/accuracy", "on_diverged": "zero"})
    assert [p[0] for p in m.validate()] == ["on_diverged"]


def _table():
    runs = pd.DataFrame(
        {
            "protocol": "p",
            "trial": [0, 1],
            "replicate": [0, 0],
            "seed": [1, 1],
            "status": ["completed", "completed"],
            "x": [1, 2],
        }
    )
    curves = pd.DataFrame(
        {
            "protocol": "p",
            "trial": [0, 0, 1, 1],
            "replicate": 0,
            "epoch": [0, 1, 0, 1],
            "val/accuracy": [0.1, 0.6, 0.1, 0.8],
        }
    )
    return RunTable(runs, curves)


def test_compute_measures_relative_target_and_missing_metric():
    t = _table()
    m = build({"name": "epochs_to", "metric": "val/accuracy", "target": {"fraction_of_best": 0.9}})
    m.prepare(t.curves, t.runs)
    assert m.resolved_target == pytest.approx(0.72)
    out = compute_measures(t, {"e": m}, ["x"])
    assert out["e"].tolist() == [math.inf, 1.0]
    missing = build({"name": "final", "metric": "val/loss"})
    with pytest.raises(ClaimError) as exc:
        compute_measures(t, {"loss": missing}, ["x"])
    assert "val/loss" in str(exc.value)
    assert exc.value.path == "measures.loss"
    with pytest.raises(ClaimError) as exc:
        compute_measures(t, {"e": m}, ["train.batch_size"])
    assert exc.value.path == "runs.train.batch_size"


def test_run_table_validates_its_contract():
    t = _table()
    with pytest.raises(ClaimError) as exc:
        RunTable(t.runs.drop(columns=["status"]), t.curves)
    assert "status" in str(exc.value)
    bad = t.runs.copy()
    bad.loc[0, "status"] = "exploded"
    with pytest.raises(ClaimError) as exc:
        RunTable(bad, t.curves)
    assert "exploded" in str(exc.value)
    assert "diverged" in str(exc.value)
    with pytest.raises(ClaimError):
        RunTable(pd.concat([t.runs, t.runs]), t.curves)


def test_saturated_output_gradient_separates_cross_entropy_from_mse_on_softmax():
    from harness.claims.measures import SaturatedOutputGrad

    m = SaturatedOutputGrad(param="train.loss", z=-10.0, n_classes=10)
    ce = m.raw({"train.loss": "cross_entropy"}, None)
    mse = m.raw({"train.loss": {"name": "mse", "output": "softmax"}}, None)
    assert abs(ce - 1.0) < 1e-3  # catalogue L3: |∂CE/∂z| ≈ 1
    assert mse < 1e-3  # |∂MSE/∂z| < 1e-3 once the softmax saturates
    assert m.raw({"train.loss": "mse(output=softmax)"}, None) == mse  # the runs table's label
