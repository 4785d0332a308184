"""Issue 9 capabilities on inputs whose answer is known: data perturbations, run records,
their measures, and the threshold statistics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.claims import MEASURES, STATISTICS
from harness.claims.resampling import GroupedMeasures
from harness.config import ConfigError, flatten
from harness.data import DataError, load_dataset
from harness.data.base import Split
from harness.data.perturb import apply_perturbation, flip_labels, shift_outliers
from harness.run_records import (
    linear_collapse_error,
    max_unit_difference,
    resolve_record,
    unit_activity,
    window_stats,
)
from harness.runconfig import resolve_run_config


# -- data perturbations ---------------------------------------------------------------------------
def test_label_noise_flips_an_exact_count_of_training_labels_only():
    clean = load_dataset({"name": "digits"})
    noisy = load_dataset({"name": "digits", "perturb": {"label_noise": 0.2}})
    n = clean.train.n
    flipped = clean.train.y != noisy.train.y
    assert flipped.sum() == round(0.2 * n)  # exact, and every flipped label is wrong
    assert np.array_equal(clean.val.y, noisy.val.y)
    assert np.array_equal(clean.train.X, noisy.train.X)
    assert noisy.meta["perturb"]["n_flipped"] == round(0.2 * n)
    again = load_dataset({"name": "digits", "perturb": {"label_noise": 0.2}})
    assert np.array_equal(again.train.y, noisy.train.y)  # seeded by the data seed


def test_flip_labels_moves_each_label_to_another_class_uniformly():
    rng = np.random.default_rng(0)
    y = np.zeros(30000, dtype=np.int64)
    out, idx = flip_labels(y, 0.5, 4, rng)
    assert idx.size == 15000 and np.all(out[idx] != 0)
    counts = np.bincount(out[idx], minlength=4)[1:] / idx.size
    assert np.allclose(counts, 1 / 3, atol=0.02)


def test_outliers_shift_a_fraction_of_targets_by_k_standard_deviations():
    rng = np.random.default_rng(1)
    y = rng.normal(3.0, 2.0, size=(1000, 1))
    out, idx = shift_outliers(y, 0.1, 5.0, rng)
    d = (out - y)[:, 0]
    assert idx.size == 100
    assert np.allclose(np.abs(d[idx]), 5.0 * y.std())
    assert np.count_nonzero(d) == 100


def test_input_noise_on_train_only_with_the_given_std():
    X = np.zeros((4000, 5), dtype=np.float64)
    train = Split(X, np.zeros(4000, dtype=np.int64))
    out, info = apply_perturbation(
        train,
        {"label_noise": 0.0, "outlier_fraction": 0.0, "outlier_k": 5.0, "input_noise": 0.3},
        task="classification",
        n_classes=2,
        seed=0,
    )
    assert abs(out.X.std() - 0.3) < 0.01
    assert info["applied_to"] == "train"
    assert not out.X.flags.writeable


def test_regression_outliers_through_the_loader_and_params():
    clean = load_dataset({"name": "diabetes"})
    spec = {"name": "diabetes", "perturb": {"outlier_fraction": 0.1, "outlier_k": 4}}
    noisy = load_dataset(spec)
    moved = np.any(clean.train.y != noisy.train.y, axis=1)
    assert moved.sum() == round(0.1 * clean.train.n)
    assert np.array_equal(clean.val.y, noisy.val.y)
    cfg = resolve_run_config({"data": spec, "train": {"loss": "mse"}})
    flat = flatten(cfg)
    assert flat["data.perturb.outlier_fraction"] == 0.1  # logged as a param


@pytest.mark.parametrize(
    ("perturb", "field"),
    [
        ({"label_noise": 1.5}, "perturb.label_noise"),
        ({"label_noise": -0.1}, "perturb.label_noise"),
        ({"input_noise": -1}, "perturb.input_noise"),
        ({"outlier_k": 0}, "perturb.outlier_k"),
        ({"outlier_fraction": 0.1}, "perturb.outlier_fraction"),  # classification data
        ({"labels": 0.1}, "perturb.labels"),
        ({"label_noise": True}, "perturb.label_noise"),
        ("lots", "perturb"),
    ],
)
def test_bad_perturbations_name_the_field(perturb, field):
    with pytest.raises(DataError) as exc:
        load_dataset({"name": "digits", "perturb": perturb})
    assert exc.value.key == field
    with pytest.raises(ConfigError) as cexc:
        resolve_run_config({"data": {"name": "digits", "perturb": perturb}})
    assert cexc.value.path == f"data.{field}"


def test_label_noise_on_regression_is_an_error():
    with pytest.raises(DataError) as exc:
        load_dataset({"name": "diabetes", "perturb": {"label_noise": 0.1}})
    assert "regression" in str(exc.value)


# -- run records ----------------------------------------------------------------------------------
def test_max_unit_difference_known_answers():
    W = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    assert max_unit_difference(W, np.zeros(3)) == 0.0
    W2 = np.array([[1.0, 4.0, 2.0], [0.0, 0.5, -1.0]])
    # pairs: |1-4|=3 on row 0 is the largest
    assert max_unit_difference(W2) == 3.0
    assert max_unit_difference(W2, np.array([0.0, 0.0, 10.0])) == 10.0


def _net(model: dict, n_in: int = 3, n_out: int = 2, seed: int = 0, dtype=np.float64):
    import models

    net = models.build_network(
        model,
        input_shape=(n_in,),
        n_outputs=n_out,
        loss="cross_entropy",
        rng=np.random.default_rng(seed),
        dtype=dtype,
    )
    return net


def test_linear_collapse_error_is_zero_for_identity_nets_and_nan_otherwise():
    X = np.random.default_rng(0).normal(size=(50, 3))
    lin = _net({"name": "mlp", "hidden": [7, 5, 4], "activation": "identity"})
    assert linear_collapse_error(lin, X) < 1e-12
    relu = _net({"name": "mlp", "hidden": [7], "activation": "relu"})
    assert math.isnan(linear_collapse_error(relu, X))


def test_unit_activity_over_every_sample():
    net = _net({"name": "mlp", "hidden": [3], "activation": "relu", "init": "he_normal"})
    dense = net.layers[0]
    dense.params["W"][...] = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    dense.params["b"][...] = np.array([0.0, 0.0, -1.0])
    # x0 in {+1, -1}: unit 0 active on x0 > 0, unit 1 on x0 < 0, unit 2 never (dead)
    X = np.array([[1.0, 0, 0], [-1.0, 0, 0], [2.0, 0, 0], [0.5, 0, 0]])
    act = unit_activity(net, X, batch_size=3)  # two batches: deadness must hold over both
    name = next(k for k in act if not k.endswith("/active"))
    assert act[name].tolist() == [False, False, True]
    assert act[f"{name}/active"][0] == pytest.approx(4 / 12)  # unit0: 3, unit1: 1, unit2: 0


def test_window_stats_known_answer():
    s = window_stats([1.0, 3.0, 2.0, 2.0])
    assert s["mean"] == 2.0
    assert s["std"] == pytest.approx(math.sqrt(0.5))
    assert s["increase_fraction"] == pytest.approx(1 / 3)
    assert window_stats([3.0, 2.0, 1.0])["increase_fraction"] == 0.0


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"weigths": True}, "train.record.weigths"),
        ({"weights": 1}, "train.record.weights"),
        ({"step_window": -1}, "train.record.step_window"),
        ({"step_full_loss": True}, "train.record.step_full_loss"),
        ({"near_zero": 0}, "train.record.near_zero"),
        ([1, 2], "train.record"),
    ],
)
def test_bad_record_blocks_name_the_field(raw, path):
    with pytest.raises(ConfigError) as exc:
        resolve_run_config({"train": {"record": raw}})
    assert exc.value.path == path
    assert resolve_record(None) is None


def test_equal_init_keeps_units_identical_through_training():
    """I1 by construction: constant weights → every hidden unit gets the same gradient."""
    from harness.experiment import build_run

    cfg = resolve_run_config(
        {
            "data": {"name": "digits", "subset": 200},
            "model": {
                "name": "mlp",
                "hidden": [20],
                "activation": "sigmoid",
                "init": {"name": "constant", "value": 0.05},
            },
            "train": {
                "epochs": 2,
                "batch_size": 32,
                "dtype": "float64",
                "record": {
                    "weights": True,
                    "units": True,
                    "step_window": 5,
                    "step_full_loss": True,
                },
            },
        }
    )
    h = build_run(cfg, resolved=True).trainer.run()
    last = h.records[-1]
    assert last["w_unit_diff/dense_0"] < 1e-12
    assert last["w_unit_diff/dense_2"] > 1e-6  # output units differ (different targets)
    assert not any(k.startswith("dead/") for k in last)  # sigmoid: no dead units
    assert 0 <= last["step_full_loss/increase_fraction"] <= 1
    assert "step_full_loss/std" not in h.records[1]  # the full-loss window ends with the run


# -- measures of the records ----------------------------------------------------------------------
def _curve(**cols):
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"epoch": np.arange(n), **cols})


RUN = {"status": "completed"}


def test_weight_and_unit_measures_read_the_recorded_layers():
    c = _curve(
        **{
            "w_unit_diff/dense_0": [0.5, 0.0],
            "w_unit_diff/dense_2": [0.4, 0.3],
            "w_collapse_error": [1e-9, 2e-9],
            "dead/relu_1": [0.0, 0.6],
            "dead/relu_3": [0.1, 0.2],
            "revived/relu_1": [np.nan, 0.0],
            "revived/relu_3": [np.nan, 0.5],
        }
    )
    first = MEASURES.build({"name": "weight_stat", "stat": "unit_diff", "layers": "first"})
    assert first.validate() == [] and first.value(RUN, c) == 0.0
    assert MEASURES.build({"name": "weight_stat", "stat": "unit_diff"}).value(RUN, c) == 0.3
    coll = MEASURES.build({"name": "weight_stat", "stat": "collapse_error", "epoch": 0})
    assert coll.value(RUN, c) == 1e-9
    dead = MEASURES.build({"name": "unit_stat", "stat": "dead", "how": "mean"})
    assert dead.value(RUN, c) == pytest.approx(0.4)
    rev = MEASURES.build({"name": "unit_stat", "stat": "revived", "layers": "last"})
    assert rev.value(RUN, c) == 0.5
    bad = MEASURES.build({"name": "unit_stat", "stat": "zombie"})
    assert bad.validate()[0][0] == "stat"
    from harness.claims.measures import MissingMetricError

    with pytest.raises(MissingMetricError, match=r"train\.record\.weights"):
        MEASURES.build({"name": "weight_stat", "stat": "near_zero"}).value(RUN, c)


def test_step_noise_and_metric_gap():
    c = _curve(
        **{
            "step_loss/std": [np.nan, 0.2, 0.1],
            "step_full_loss/increase_fraction": [np.nan, np.nan, 0.0],
            "train/accuracy": [0.1, 0.9, 1.0],
            "val/accuracy": [0.1, 0.8, 0.7],
        }
    )
    assert MEASURES.build({"name": "step_noise", "stat": "std"}).value(RUN, c) == 0.1
    full = MEASURES.build({"name": "step_noise", "stat": "increase_fraction", "source": "full"})
    assert full.value(RUN, c) == 0.0
    gap = MEASURES.build({"name": "metric_gap"})
    assert gap.value(RUN, c) == pytest.approx(0.3)
    at_best = MEASURES.build({"name": "metric_gap", "at": "best_b"})
    assert at_best.value(RUN, c) == pytest.approx(0.1)


# -- threshold statistics -------------------------------------------------------------------------
def grouped(rows: list[dict], params: list[str], measures: list[str]) -> GroupedMeasures:
    return GroupedMeasures.from_table(pd.DataFrame(rows), params, measures)


def table(values: dict, other: dict | None = None) -> GroupedMeasures:
    """``{(arm, x): [per-seed m]}`` → grouped measures over params arm, x."""
    rows = []
    for (arm, x), vals in values.items():
        for r, v in enumerate(vals):
            row = {"arm": arm, "x": x, "replicate": r, "status": "completed", "m": v}
            if other:
                row["d"] = other[(arm, x)][r]
            rows.append(row)
    return grouped(rows, ["arm", "x"], ["m"] + (["d"] if other else []))


def point(spec: dict, data: GroupedMeasures) -> float:
    stat = STATISTICS.build(spec)
    assert stat.validate() == [], stat.validate()
    return float(stat.compute(data.point()).values[0, 0])


LR = {  # accuracy vs lr: arm "a" trains up to lr 1, arm "b" only up to 0.1
    ("a", 0.01): [0.9, 0.9, 0.9],
    ("a", 0.1): [0.95, 0.95, 0.95],
    ("a", 1.0): [0.9, 0.92, 0.91],
    ("a", 10.0): [0.1, 0.1, 0.1],
    ("b", 0.01): [0.9, 0.9, 0.9],
    ("b", 0.1): [0.9, 0.9, 0.9],
    ("b", 1.0): [0.1, 0.1, 0.1],
    ("b", 10.0): [0.1, 0.1, 0.1],
}


def test_largest_x_and_its_ratio_between_arms():
    data = table(LR)
    cond = {"op": ">=", "value": 0.5}
    base = {"name": "largest_x", "measure": "m", "x": "x", "condition": cond}
    assert point({**base, "where": {"arm": "a"}}, data) == 1.0
    assert point({**base, "where": {"arm": "b"}}, data) == 0.1
    assert point({**base, "a": {"arm": "a"}, "b": {"arm": "b"}}, data) == pytest.approx(10.0)
    none = {**base, "condition": {"op": ">=", "value": 0.99}, "where": {"arm": "a"}}
    assert math.isnan(point(none, data))
    assert point({**none, "if_none": 0}, data) == 0.0


def test_largest_x_reports_another_measure_at_that_x():
    dead = {k: [x / 20 for _ in v] for k, v in LR.items() for x in [k[1]]}
    data = table(LR, dead)
    spec = {
        "name": "largest_x",
        "measure": "m",
        "x": "x",
        "report": "d",
        "condition": {"op": ">=", "value": 0.5},
        "where": {"arm": "a"},
    }
    assert point(spec, data) == pytest.approx(1.0 / 20)


def test_count_x_and_difference():
    data = table(LR)
    base = {"name": "count_x", "measure": "m", "x": "x", "condition": {"op": ">=", "value": 0.5}}
    assert point({**base, "where": {"arm": "a"}}, data) == 3
    assert point({**base, "a": {"arm": "a"}, "b": {"arm": "b"}}, data) == 1


def test_success_fraction_single_and_paired():
    vals = {("a", 1): [0.7, 0.75, 0.8, 0.6], ("b", 1): [0.9, 0.7, 0.85, 0.95]}
    data = table(vals)
    one = {
        "name": "success_fraction",
        "measure": "m",
        "where": {"arm": "a"},
        "condition": {"op": "<=", "value": 0.75},
    }
    assert point(one, data) == 0.75
    paired = {
        "name": "success_fraction",
        "measure": "m",
        "a": {"arm": "a"},
        "b": {"arm": "b"},
        "condition": {"op": "<=", "value": -0.03},
    }
    # per seed a − b: -0.2, +0.05, -0.05, -0.35 → 3 of 4
    assert point(paired, data) == 0.75
    with_nan = table({("a", 1): [0.7, np.nan], ("b", 1): [0.9, 0.9]})
    assert point({**paired}, with_nan) == 1.0  # a failed run is left out, not a failure


def test_success_fraction_is_a_proportion_of_seeds_with_an_exact_interval():
    from scipy import stats

    from harness.claims.engine import seed_statistic, seeds_sample

    data = table({("a", 1): [0.1, 0.2, 0.3], ("b", 1): [0.5, 0.6, 0.7]})
    spec = {
        "name": "success_fraction",
        "measure": "m",
        "a": {"arm": "a"},
        "b": {"arm": "b"},
        "condition": {"op": "<", "value": 0},
    }
    ((_, est, iv, unknown),) = seed_statistic(STATISTICS.build(spec), seeds_sample(data), 0.95)
    assert est == 1.0 and unknown == 0
    assert iv.method == "clopper_pearson" and iv.high == 1.0
    assert iv.low == pytest.approx(0.025 ** (1 / 3))  # 3 of 3: not the bootstrap's [1, 1]
    two = table({("a", 1): [0.1, 0.9, 0.3, 0.2], ("b", 1): [0.5, 0.6, 0.7, 0.8]})
    ((_, est, iv, _),) = seed_statistic(STATISTICS.build(spec), seeds_sample(two), 0.95)
    assert est == 0.75
    assert iv.low == pytest.approx(stats.beta.ppf(0.025, 3, 2))


def test_proportion_interval_holds_its_level():
    """Coverage by simulation: each of n seeds succeeds with probability p."""
    from harness.claims.intervals import proportion_interval

    rng = np.random.default_rng(0)
    for n in (3, 6, 10):
        for p in (0.2, 0.5, 0.8, 0.95):
            k = rng.binomial(n, p, size=2000)
            cover = [proportion_interval(int(x), n, 0.95)[1].contains(p) for x in k]
            assert np.mean(cover) >= 0.94, (n, p, np.mean(cover))


@pytest.mark.parametrize(
    ("spec", "arg"),
    [
        (
            {"name": "largest_x", "measure": "m", "x": "x", "condition": {"op": "=", "value": 1}},
            "condition.op",
        ),
        ({"name": "largest_x", "measure": "m", "x": "x", "condition": 0.5}, "condition"),
        (
            {
                "name": "count_x",
                "measure": "m",
                "x": "x",
                "condition": {"value": 1},
                "a": {"arm": "a"},
            },
            "b",
        ),
        (
            {
                "name": "success_fraction",
                "measure": "m",
                "condition": {"value": 1},
                "compare": "quotient",
            },
            "compare",
        ),
    ],
)
def test_bad_threshold_statistics_name_the_argument(spec, arg):
    problems = STATISTICS.build(spec).validate()
    assert problems and problems[0][0] == arg


def test_ratio_to_best_compares_one_x_with_the_best_other():
    times = {("a", 16): [2.0, 2.0, 2.0], ("a", 64): [1.0, 1.2, 1.1], ("a", 1257): [1.5, 1.5, 1.5]}
    data = table(times)
    spec = {"name": "ratio_to_best", "measure": "m", "x": "x", "at": "max", "mode": "min"}
    assert point(spec, data) == pytest.approx(1.5 / 1.1)
    assert point({**spec, "at": 16}, data) == pytest.approx(2.0 / 1.1)
    assert point({**spec, "exclude_at": False, "at": 64}, data) == pytest.approx(1.0)
    assert math.isnan(point({**spec, "at": 32}, data))  # not a value of x


def test_a_protocol_computes_only_the_measures_it_reads():
    """A weight measure must not be required from a protocol that never reads it."""
    from harness.claims import load_claim
    from harness.claims.engine import used_measures

    claim = load_claim("initialization")
    used = used_measures(claim)
    assert "unit_diff" in used["equal_init"]
    assert "unit_diff" not in used["init_scale"]
    assert "final_train_loss" in used["small_init"]
