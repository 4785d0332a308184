"""The probe claim kind: grids, seeds, failures, validation; and every probe on inputs whose
answer is known in closed form."""

from __future__ import annotations

import copy
import math
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from harness.claims import ClaimError, evaluate_claim, list_claims, load_claim, parse_claim
from harness.claims.probes import (
    PROBES,
    Probe,
    ProbeResult,
    check_probe_claim,
    is_probe_protocol,
    pad_for_claim,
    probe_grid,
    run_probe_protocol,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def probe(name: str, **kwargs):
    p = PROBES.build({"name": name, **kwargs})
    assert p.validate() == []
    return p


# -- the claim kind ------------------------------------------------------------------------------
def _claim(**over):
    raw = {
        "id": "toy_probe",
        "title": "a probe claim",
        "source": {
            "seed_file": "001_a9e0aef2ba68dc0e.txt",
            "quotes": [{"text": "q", "gloss": "g", "checks": ["C1"]}],
        },
        # 6 seeds: fewer cannot decide a verdict (4 seeds' range reaches 87.5 %, short of 95 %)
        "study": {"name": "toy_probe", "seed": 3, "replicates": 6, "search": {"params": {}}},
        "protocols": {
            "p": {
                "description": "finite differences",
                "set": {"probe": {"name": "finite_difference", "x": 5.0}},
                "search": {
                    "probe.h": {
                        "type": "categorical",
                        "choices": [1e-2, 1e-4],
                        "role": "scientific",
                    },
                    "probe.scheme": {
                        "type": "categorical",
                        "choices": ["central", "forward"],
                        "role": "scientific",
                    },
                },
            }
        },
        "measures": {"err": {"name": "summary", "column": "probe/abs_error"}},
        "checks": [
            {
                "id": "C1",
                "claim": "forward error at h = 1e-2 is about 1e-4",
                "why": "0.01·h truncation",
                "statistic": {
                    "name": "group_center",
                    "measure": "err",
                    "where": {"probe.scheme": "forward", "probe.h": 0.01},
                },
                "rule": {"op": "between", "value": [0.9e-4, 1.1e-4]},
            }
        ],
        "figures": [{"name": "bar", "measure": "err", "x": "probe.h", "hue": "probe.scheme"}],
    }
    raw.update(over)
    return raw


def test_grid_is_the_cartesian_product_in_order_and_seeds_pair_across_points():
    claim = parse_claim(_claim())
    assert is_probe_protocol(claim, "p")
    base, points = probe_grid(claim, "p")
    assert base["name"] == "finite_difference"
    assert points == [
        {"probe.h": 1e-2, "probe.scheme": "central"},
        {"probe.h": 1e-2, "probe.scheme": "forward"},
        {"probe.h": 1e-4, "probe.scheme": "central"},
        {"probe.h": 1e-4, "probe.scheme": "forward"},
    ]
    t = run_probe_protocol(claim, "p")
    assert len(t) == 4 * 6
    assert set(t.runs["status"]) == {"completed"}
    seeds = t.runs.groupby("replicate")["seed"].nunique()
    assert (seeds == 1).all()  # replicate r has one seed at every grid point
    assert t.runs["seed"].nunique() == 6
    fwd = t.runs[(t.runs["probe.scheme"] == "forward") & (t.runs["probe.h"] == 1e-2)]
    np.testing.assert_allclose(fwd["probe/abs_error"], 0.01 * 1e-2, rtol=1e-6)


def test_a_probe_claim_gets_a_verdict_from_its_data():
    claim = parse_claim(_claim())
    out = evaluate_claim(claim, {"p": run_probe_protocol(claim, "p")}, n_boot=200)
    assert out.verdicts["C1"].value == "supported"
    raw = _claim()
    raw["checks"][0]["rule"] = {"op": "<", "value": 1e-5}
    claim = parse_claim(raw)
    out = evaluate_claim(claim, {"p": run_probe_protocol(claim, "p")}, n_boot=200)
    assert out.verdicts["C1"].value == "refuted"


def test_a_probe_that_raises_is_a_failed_run_with_its_reason():
    @PROBES.register("_test_broken")
    class Broken(Probe):
        outputs = ("v",)

        def __init__(self, *, k: int = 0) -> None:
            self.k = k

        def run(self, rng: np.random.Generator) -> ProbeResult:
            if self.k == 1:
                raise ValueError("k = 1 is broken")
            return ProbeResult({"v": float(self.k)})

    raw = _claim()
    raw["protocols"]["p"] = {
        "description": "broken at k = 1",
        "set": {"probe": {"name": "_test_broken"}},
        "search": {"probe.k": {"type": "categorical", "choices": [0, 1], "role": "scientific"}},
    }
    raw["measures"] = {"err": {"name": "summary", "column": "probe/v"}}
    raw["checks"][0]["statistic"]["where"] = {"probe.k": 1}
    raw["figures"][0].update(x="probe.k", hue=None)
    claim = parse_claim(raw)
    t = run_probe_protocol(claim, "p")
    bad = t.runs[t.runs["probe.k"] == 1]
    assert set(bad["status"]) == {"failed"}
    assert bad["reason"].str.contains("k = 1 is broken").all()
    assert bad["probe/v"].isna().all()
    out = evaluate_claim(claim, {"p": t}, n_boot=200)
    assert out.verdicts["C1"].value == "inconclusive"
    assert "failed" in out.checks[0].explanation


@pytest.mark.parametrize(
    ("search", "path_part"),
    [
        ({"train.lr": {"type": "categorical", "choices": [1], "role": "scientific"}}, "train.lr"),
        ({"probe.x": {"type": "float", "low": 1.0, "high": 2.0, "role": "scientific"}}, "type"),
    ],
)
def test_a_probe_protocol_searches_only_categorical_probe_arguments(search, path_part):
    raw = _claim()
    raw["protocols"]["p"]["search"].update(search)
    claim = parse_claim(raw)
    with pytest.raises(ClaimError) as exc:
        check_probe_claim(claim)
    assert path_part in exc.value.path


def test_bad_probe_arguments_are_one_line_before_anything_runs():
    raw = _claim()
    raw["protocols"]["p"]["search"]["probe.scheme"]["choices"] = ["central", "backward"]
    with pytest.raises(ClaimError) as exc:
        check_probe_claim(parse_claim(raw))
    assert exc.value.path == "protocols.p.search.probe.scheme"  # where the value was written
    assert "central, forward" in str(exc.value)
    raw = _claim()
    raw["protocols"]["p"]["set"] = {"probe": {"name": "finite_diference"}}
    with pytest.raises(ClaimError, match="did you mean 'finite_difference'"):
        check_probe_claim(parse_claim(raw))
    raw = _claim()
    raw["protocols"]["p"]["set"]["probe"]["rowz"] = 3
    with pytest.raises(ClaimError) as exc:
        check_probe_claim(parse_claim(raw))
    assert exc.value.path == "protocols.p.set.probe.rowz"
    assert "h, scheme, x" in str(exc.value)


def test_a_check_must_read_an_output_of_its_probe():
    raw = _claim()
    raw["measures"]["err"]["column"] = "probe/abs_eror"
    with pytest.raises(ClaimError) as exc:
        check_probe_claim(parse_claim(raw))
    assert exc.value.path == "measures.err.column"
    assert "did you mean 'probe/abs_error'" in str(exc.value)


def test_padding_adds_nan_columns_for_measures_of_other_protocols():
    raw = _claim()
    raw["measures"]["acc"] = {"name": "final", "metric": "val/accuracy"}
    claim = parse_claim(raw)
    t = pad_for_claim(claim, run_probe_protocol(claim, "p"))
    assert t.runs["final/val/accuracy"].isna().all()
    assert "val/accuracy" in t.curves.columns
    evaluate_claim(claim, {"p": t}, n_boot=100)  # every measure computes on the probe table


@pytest.mark.parametrize("budget", ["quick", "full", "tiny"])
@pytest.mark.parametrize("claim_id", list_claims())
def test_every_shipped_probe_protocol_validates(claim_id, budget):
    try:
        claim = load_claim(claim_id, budget=budget)
    except ClaimError:
        if budget == "tiny":
            pytest.skip(f"{claim_id} has no tiny budget")
        raise
    check_probe_claim(claim)
    for name in claim.protocols_to_run():
        if not is_probe_protocol(claim, name):
            continue  # the training claims' seed counts are their own tests' business
        reps = claim.study_for(name)["replicates"]
        assert reps == 1 if budget == "tiny" else reps >= 3


# -- numerics ------------------------------------------------------------------------------------
def test_finite_difference_errors_match_the_closed_form():
    fwd = probe("finite_difference", h=1e-3, scheme="forward").run(rng()).values
    assert fwd["abs_error"] == pytest.approx(0.01 * 1e-3, rel=1e-6)  # truncation 0.01·h
    cen = probe("finite_difference", h=1e-3, scheme="central").run(rng()).values
    assert cen["abs_error"] < 1e-11  # exact for a quadratic up to rounding
    tiny = probe("finite_difference", h=1e-15, scheme="central").run(rng()).values
    assert tiny["abs_error"] > 1e-3
    assert fwd["float32_underflow"] == 1.0


def test_softmax_overflow_naive_vs_stable():
    naive = probe("softmax_overflow", variant="naive", rows=10).run(rng()).values
    stable = probe("softmax_overflow", variant="stable", rows=10).run(rng()).values
    assert naive["nonfinite_fraction"] == 1.0 and math.isnan(naive["book_row_error"])
    assert stable["nonfinite_fraction"] == 0.0 and stable["book_row_error"] < 1e-15


def test_fused_cross_entropy():
    naive = probe("fused_cross_entropy", variant="naive", rows=8).run(rng()).values
    fused = probe("fused_cross_entropy", variant="fused", rows=8).run(rng()).values
    assert naive["nonfinite"] == 1.0
    assert fused["nonfinite"] == 0.0 and fused["grad_error"] < 1e-12
    small = probe("fused_cross_entropy", variant="naive", gap=1.0, rows=8).run(rng()).values
    assert small["nonfinite"] == 0.0  # the naive loss is fine when nothing underflows


def test_argmax_and_mass_shift():
    assert (
        probe("softmax_argmax", rows=1000, scale=100.0).run(rng()).values["mismatch_fraction"] == 0
    )
    ce = probe("mass_shift", loss="cross_entropy", rows=50).run(rng()).values["abs_change"]
    mse = probe("mass_shift", loss="mse", rows=50).run(rng()).values["abs_change"]
    assert ce == 0.0 and mse > 1e-3


@pytest.mark.parametrize(
    ("mode", "expected"), [("inverted", 0.0), ("scale_at_test", 0.0), ("seed_text", 3.0)]
)
def test_dropout_scaling(mode, expected):
    v = probe("dropout_scaling", mode=mode, rate=0.2, draws=20000, units=5).run(rng()).values
    assert v["rel_diff"] == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("impl", ["zoo", "numpy"])
@pytest.mark.parametrize("passes", ["forward", "forward_backward"])
def test_activation_timing_reports_a_ratio(impl, passes):
    v = probe("activation_timing", impl=impl, passes=passes, size=10_000, repeats=3).run(rng())
    assert v.values["time_ratio"] > 0 and math.isfinite(v.values["time_ratio"])
    assert v.values["sigmoid_s"] > 0 and v.values["relu_s"] > 0


def test_gradient_check_is_tiny_for_a_smooth_net():
    v = probe("gradient_check", activation="sigmoid", width=4, samples=2).run(rng()).values
    assert v["max_rel_error"] < 1e-6
    assert v["n_params"] == 64 * 4 + 4 + 4 * 10 + 10
    assert v["time_ratio"] > 1


# -- representation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("layers", "kernel", "field"), [(1, 3, 3), (2, 3, 5), (3, 3, 7), (1, 5, 5)]
)
def test_receptive_field_is_measured(layers, kernel, field):
    v = (
        probe("conv_receptive_field", layers=layers, kernel=kernel, channels=2, size=11)
        .run(rng())
        .values
    )
    assert v["receptive_field"] == field == v["expected_field"]
    assert v["param_ratio"] == pytest.approx(layers * kernel**2 / field**2)


def test_dense_equals_a_1x1_convolution():
    assert probe("dense_as_conv1x1").run(rng()).values["max_abs_diff"] < 1e-12


def test_linear_collapse_holds_for_identity_only():
    lin = probe("linear_collapse", depth=4, width=8, inputs=32).run(rng()).values
    relu = (
        probe("linear_collapse", depth=4, width=8, activation="relu", inputs=32).run(rng()).values
    )
    assert lin["max_abs_diff"] < 1e-10
    assert relu["relative_diff"] > 0.01


@pytest.mark.parametrize("fan_in", [16, 256, 1024])
def test_xavier_variance_ratio_is_two_a_over_a_plus_b(fan_in):
    v = probe("xavier_variance", fan_in=fan_in, fan_out=256, samples=4000).run(rng()).values
    assert v["forward_ratio"] == pytest.approx(2 * fan_in / (fan_in + 256), rel=0.1)
    assert v["backward_ratio"] == pytest.approx(2 * 256 / (fan_in + 256), rel=0.1)
    lecun = probe("xavier_variance", fan_in=fan_in, init="lecun_normal", samples=4000).run(rng())
    assert lecun.values["forward_ratio"] == pytest.approx(1.0, rel=0.1)


def test_activation_stats_relu_std1_explodes_and_he_keeps_scale():
    std1 = probe("activation_stats", activation="relu", init={"name": "normal", "std": 1.0}).run(
        rng()
    )
    # Var grows by fan_in·Var(W)/2 = 50 per ReLU layer: std × √50 ≈ 7
    assert std1.values["forward_growth"] == pytest.approx(math.sqrt(50), rel=0.2)
    assert std1.values["backward_growth"] > 2
    he = probe("activation_stats", activation="relu", init="he_normal").run(rng()).values
    assert 0.7 <= he["std_ratio_last_first"] <= 1.4
    assert [r["step"] for r in std1.records] == [1.0, 2.0, 3.0, 4.0, 5.0]
    sig = probe("activation_stats", activation="sigmoid", init={"name": "normal", "std": 1.0}).run(
        rng()
    )
    assert sig.values["saturated_min"] > 0.3


# -- toy objectives ------------------------------------------------------------------------------
def test_toy_descent_measures():
    sgd = probe("toy_descent", optimizer={"name": "sgd", "lr": 0.95}).run(rng()).values
    assert sgd["y_sign_changes"] == 30  # y ← −0.9·y every step
    assert sgd["eff_step_increases"] == 0  # SGD's step per unit gradient is its lr
    bad = probe("toy_descent", optimizer={"name": "seed_adagrad", "lr": 1.5}).run(rng()).values
    assert bad["value_ratio"] > 1
    rnd = (
        probe(
            "toy_descent",
            start="random",
            objective="himmelblau",
            optimizer={"name": "sgd", "lr": 0.01},
            steps=500,
        )
        .run(rng(3))
        .values
    )
    assert rnd["global_basin"] == 1.0 and rnd["final_value"] < 1e-6


def test_bad_toy_descent_arguments():
    p = PROBES.build({"name": "toy_descent", "optimizer": {"name": "sgdd"}, "start": [1, 2, 3]})
    bad = {arg for arg, _, _ in p.validate()}
    assert bad == {"optimizer", "start"}


def test_shipped_claims_are_not_mutated_by_probe_runs():
    claim = load_claim("numerics")
    before = copy.deepcopy(claim.raw)
    run_probe_protocol(claim, "mass_shift")
    assert claim.raw == before


def test_sigmoid_slope_and_saturated_output_gradient():
    v = probe("sigmoid_slope", points=2001).run(rng()).values
    assert v["max_slope"] == pytest.approx(0.25, abs=1e-12) and v["argmax_abs_z"] == 0
    assert v["sigmoid_at_1"] == pytest.approx(1 / (1 + math.exp(-1)))
    ce = probe("saturated_output_gradient", z=-10.0).run(rng()).values["abs_grad"]
    mse = probe("saturated_output_gradient", loss="mse_sigmoid", z=-10.0).run(rng()).values
    s = 1 / (1 + math.exp(10))
    assert ce == pytest.approx(1 - s)
    assert mse["abs_grad"] == pytest.approx((1 - s) * s * (1 - s))


@pytest.mark.parametrize("or_gate", ["code", "text"])
def test_xor_gates(or_gate):
    v = probe("xor_gates", or_gate=or_gate, candidates=1000).run(rng()).values
    assert v["xor_errors"] == 0
    assert v["single_best_accuracy"] == 0.75  # never 4/4, and 3/4 is easy


@pytest.mark.parametrize(
    ("claim_id", "protocol"), [("optimizers", "random_starts"), ("representation", "histogram")]
)
def test_same_seed_same_numbers(claim_id, protocol):
    claim = load_claim(claim_id, budget="tiny")
    a, b = run_probe_protocol(claim, protocol), run_probe_protocol(claim, protocol)
    cols = [c for c in a.runs.columns if c.startswith("probe/")]
    np.testing.assert_array_equal(a.runs[cols].to_numpy(float), b.runs[cols].to_numpy(float))
    np.testing.assert_array_equal(
        a.curves.drop(columns=["protocol"]).to_numpy(float),
        b.curves.drop(columns=["protocol"]).to_numpy(float),
    )


SEEDS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="the seed documents are not on this machine")
@pytest.mark.parametrize("claim_id", ["numerics", "representation", "optimizers", "depth_params"])
def test_probe_claim_quotes_are_verbatim(claim_id):
    for q in load_claim(claim_id).quotes:
        seed = (SEEDS_DIR / q.seed_file).read_text(encoding="utf-8")
        assert _norm(q.text) in _norm(seed), f"not in {q.seed_file}: {q.text[:40]}"
