"""Contrast statistics and the ill-posed / not-falsifiable outcomes.

Every expected value is known by construction of the synthetic inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.claims import STATISTICS, ClaimError, Outcome, Verdict, evaluate_claim
from harness.claims.resampling import GroupedMeasures
from harness.claims.spec import parse_claim

from .synth import grid_tables


def grouped(rows: list[dict], params: list[str], measures: list[str]) -> GroupedMeasures:
    return GroupedMeasures.from_table(pd.DataFrame(rows), params, measures)


def table(
    cells: dict[tuple, list[float]], params: list[str], measure: str = "m"
) -> GroupedMeasures:
    rows = [
        {**dict(zip(params, key)), "replicate": r, "status": "completed", measure: v}
        for key, vals in cells.items()
        for r, v in enumerate(vals)
    ]
    return grouped(rows, params, [measure])


def point(spec: dict, data: GroupedMeasures) -> float:
    stat = STATISTICS.build(spec)
    assert stat.validate() == []
    return float(stat.compute(data.point()).values[0, 0])


# -- best_of ----------------------------------------------------------------------------------------
def test_best_of_set_difference_and_ratio():
    data = table(
        {
            ("small", 0.0): [0.50, 0.52, 0.48],
            ("small2", 0.0): [0.55, 0.55, 0.55],
            ("big", 0.0): [0.60, 0.60, 0.60],
            ("big", 0.5): [0.70, 0.68, 0.69],
        },
        ["size", "dropout"],
    )
    best_small = {"name": "best_of", "measure": "m", "a": {"size": ["small", "small2"]}}
    assert point(best_small, data) == pytest.approx(0.55)
    diff = {
        "name": "best_of",
        "measure": "m",
        "a": {"size": "big", "dropout": {">": 0}},
        "b": {"size": ["small", "small2"]},
    }
    assert point(diff, data) == pytest.approx(0.69 - 0.55)
    ratio = dict(diff, compare="ratio")
    assert point(ratio, data) == pytest.approx(0.69 / 0.55)
    low = {"name": "best_of", "measure": "m", "a": {"size": "big"}, "mode": "min"}
    assert point(low, data) == pytest.approx(0.60)
    stat = STATISTICS.build(diff)
    extra = stat.compute(data.point()).extra
    assert "size=big" in extra["argbest_a"] and "size=small2" in extra["argbest_b"]
    assert STATISTICS.build(dict(diff, compare="x")).validate()[0][0] == "compare"
    assert STATISTICS.build({"name": "best_of", "measure": "m", "a": 3}).validate()[0][0] == "a"


def test_best_of_with_a_failed_group_is_undefined():
    data = table({("a",): [0.5, 0.5, 0.5], ("b",): [np.nan] * 3}, ["g"])
    assert math.isnan(point({"name": "best_of", "measure": "m", "a": {"g": ["a", "b"]}}, data))


# -- top_k_share ------------------------------------------------------------------------------------
def test_top_k_share_counts_the_filter_among_the_k_best():
    # 10 trials: val rises with lr; the 4 best have lr >= 1e-3 except trial lr=5e-4 placed 3rd
    lrs = [1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 2e-3, 5e-3, 8e-3, 1e-2, 3e-6]
    vals = [0.1, 0.12, 0.3, 0.8, 0.7, 0.75, 0.85, 0.9, 0.6, 0.11]
    data = table({(lr,): [v] for lr, v in zip(lrs, vals)}, ["lr"])
    spec = {"name": "top_k_share", "measure": "m", "k": 4, "share": {"lr": {">=": 1e-3}}}
    # top 4 by value: 0.9 (8e-3), 0.85 (5e-3), 0.8 (5e-4), 0.75 (2e-3) → 3 of 4
    assert point(spec, data) == pytest.approx(0.75)
    assert point(dict(spec, k=2), data) == pytest.approx(1.0)
    assert point(dict(spec, k=100), data) == pytest.approx(5 / 10)
    # lowest is best: the 2 lowest values are lr 1e-6 and 3e-6
    assert point(dict(spec, k=2, mode="min"), data) == pytest.approx(0.0)
    assert STATISTICS.build(dict(spec, k=0)).validate()[0][0] == "k"


def _engine_interval(stat, data):
    """What the engine does: the point value, then the per-seed pass and the statistic's own
    interval (``seed_interval``)."""
    from harness.claims.engine import seed_statistic, seeds_sample

    ((_, est, iv, _),) = seed_statistic(stat, seeds_sample(data), 0.95)
    return est, iv


def _trials(n: int, seeds: int, rng: np.random.Generator) -> GroupedMeasures:
    lrs = 10 ** rng.uniform(-6, -2, size=n)
    cells = {
        (lr,): list(np.clip(0.2 * (np.log10(lr) + 6) + rng.normal(0, 0.05, seeds), 0, 1))
        for lr in lrs
    }
    return table(cells, ["lr"])


def test_group_bootstrap_gives_a_nonzero_interval_for_random_search_trials():
    data = _trials(40, 2, np.random.default_rng(0))
    inner = {"name": "top_k_share", "measure": "m", "k": 10, "share": {"lr": {">=": 1e-3}}}
    wrapped = STATISTICS.build(
        {"name": "group_bootstrap", "statistic": inner, "seed": 1, "n_boot": 300}
    )
    assert wrapped.validate() == []
    assert wrapped.measures() == ["m"] and wrapped.filter_params() == {"lr"}
    est, iv = _engine_interval(wrapped, data)
    assert est == pytest.approx(point(inner, data))
    assert iv.method == "group_bootstrap" and "bootstrap over 40 groups" in iv.label()
    assert iv.low < est <= iv.high and iv.high - iv.low > 0.1
    est2, iv2 = _engine_interval(wrapped, data)
    assert (est2, iv2.low, iv2.high) == (est, iv.low, iv.high)  # seeded: reports reproduce
    spear = {"name": "spearman", "measure": "m", "x": "lr"}
    sw = STATISTICS.build({"name": "group_bootstrap", "statistic": spear, "n_boot": 200})
    _, siv = _engine_interval(sw, data)
    assert 0.5 < siv.low < siv.high <= 1.0
    bad = STATISTICS.build({"name": "group_bootstrap", "statistic": {"name": "nope"}})
    assert bad.validate()[0][0] == "statistic"
    assert STATISTICS.build({"name": "group_bootstrap", "statistic": inner, "n_boot": 5}).validate()


@pytest.mark.slow
def test_group_bootstrap_interval_covers_at_its_level():
    """Coverage of the group bootstrap of a top-k share over repeated random searches."""
    # the truth: 60 % of all trials have the property and values are independent of it, so the
    # expected share among the top k equals 0.6
    covered, n_sim = 0, 100
    for s in range(n_sim):
        rng = np.random.default_rng(100 + s)
        flag = rng.random(60) < 0.6
        cells = {(i, int(f)): list(rng.normal(size=2)) for i, f in enumerate(flag)}
        data = table(cells, ["i", "f"])
        inner = {"name": "top_k_share", "measure": "m", "k": 20, "share": {"f": 1}}
        st = STATISTICS.build(
            {"name": "group_bootstrap", "statistic": inner, "seed": s, "n_boot": 300}
        )
        _, iv = _engine_interval(st, data)
        covered += iv.low <= 0.6 <= iv.high
    assert covered / n_sim >= 0.85  # nominal 95 %; a seed-only interval would cover far less


def test_group_share_counts_groups_meeting_a_condition():
    data = table(
        {
            ("digits",): [0.95, 0.96, 0.97],
            ("iris",): [0.92] * 3,
            ("moons",): [0.85] * 3,
            ("cancer",): [0.97] * 3,
        },
        ["data"],
    )
    spec = {"name": "group_share", "measure": "m", "condition": {"op": ">=", "value": 0.9}}
    assert point(spec, data) == pytest.approx(0.75)
    assert point(dict(spec, where={"data": ["moons", "iris"]}), data) == pytest.approx(0.5)
    bad = STATISTICS.build(dict(spec, condition={"op": "~", "value": 1}))
    assert bad.validate()[0][0] == "condition.op"
    failed = table({("a",): [0.95] * 3, ("b",): [np.nan] * 3}, ["data"])
    assert math.isnan(point(spec, failed))


# -- diff_of_diffs ----------------------------------------------------------------------------------
def test_diff_of_diffs_is_the_interaction():
    data = table(
        {
            ("cnn", False): [0.90, 0.92, 0.91],
            ("cnn", True): [0.55, 0.57, 0.56],
            ("mlp", False): [0.68, 0.68, 0.68],
            ("mlp", True): [0.67, 0.67, 0.67],
        },
        ["model", "shuffle"],
    )
    spec = {
        "name": "diff_of_diffs",
        "measure": "m",
        "a": {"model": "cnn", "shuffle": False},
        "b": {"model": "cnn", "shuffle": True},
        "c": {"model": "mlp", "shuffle": False},
        "d": {"model": "mlp", "shuffle": True},
    }
    assert point(spec, data) == pytest.approx((0.91 - 0.56) - (0.68 - 0.67))
    st = STATISTICS.build(spec)
    assert st.filter_params() == {"model", "shuffle"}
    assert STATISTICS.build(dict(spec, d=5)).validate()[0][0] == "d"


# -- rank_agreement ---------------------------------------------------------------------------------
def test_rank_agreement_same_reversed_and_two_groups():
    rows = []
    for g, (loss, acc) in enumerate([(0.1, 0.95), (0.2, 0.9), (0.3, 0.8), (0.4, 0.7)]):
        for r in range(3):
            rows.append({"g": g, "replicate": r, "status": "completed", "loss": loss, "acc": acc})
    data = grouped(rows, ["g"], ["loss", "acc"])
    base = {"name": "rank_agreement", "a": "loss", "b": "acc", "a_mode": "min"}
    assert point(base, data) == pytest.approx(1.0)
    assert point(dict(base, a_mode="max"), data) == pytest.approx(-1.0)
    assert point(dict(base, method="spearman"), data) == pytest.approx(1.0)
    # one discordant pair out of 6: tau = (5 - 1) / 6
    rows2 = [dict(r) for r in rows]
    for r in rows2:
        if r["g"] == 3:
            r["acc"] = 0.85
    data2 = grouped(rows2, ["g"], ["loss", "acc"])
    assert point(base, data2) == pytest.approx(4 / 6)
    # two groups: +1 when the winners agree, -1 when not; ties undefined
    two = grouped([r for r in rows if r["g"] in (0, 1)], ["g"], ["loss", "acc"])
    assert point(base, two) == pytest.approx(1.0)
    assert point(dict(base, b_mode="min"), two) == pytest.approx(-1.0)
    tie = grouped([dict(r, acc=0.5) for r in rows if r["g"] in (0, 1)], ["g"], ["loss", "acc"])
    assert math.isnan(point(base, tie))
    st = STATISTICS.build(base)
    assert st.measures() == ["loss", "acc"]
    assert STATISTICS.build(dict(base, method="pearson")).validate()[0][0] == "method"


def test_rank_agreement_inf_ranks_last():
    inf = math.inf
    rows = [
        {"g": g, "replicate": r, "status": "completed", "ep": ep, "acc": acc}
        for g, (ep, acc) in enumerate([(3, 0.9), (10, 0.8), (inf, 0.5)])
        for r in range(2)
    ]
    data = grouped(rows, ["g"], ["ep", "acc"])
    spec = {"name": "rank_agreement", "a": "ep", "b": "acc", "a_mode": "min"}
    assert point(spec, data) == pytest.approx(1.0)


# -- outcomes through the engine --------------------------------------------------------------------
def _claim(checks: list[dict]) -> dict:
    return {
        "id": "toy_outcomes",
        "title": "toy",
        "source": {
            "seed_file": "004_352f0f9202e8b3b3.txt",
            "quotes": [{"text": "q", "gloss": "g", "checks": ["L5", "N4"]}],
        },
        "study": {
            "name": "toy",
            "data": {"name": "digits"},
            "model": {"name": "mlp"},
            "train": {"loss": "cross_entropy", "optimizer": {"name": "sgd", "lr": 0.1}},
            "search": {
                "sampler": {"name": "grid"},
                "params": {
                    "train.loss": {
                        "type": "categorical",
                        "choices": ["cross_entropy", "mse"],
                        "role": "scientific",
                    },
                    "train.optimizer.lr": {
                        "type": "categorical",
                        "choices": [0.1, 1.0],
                        "role": "scientific",
                    },
                },
            },
            "replicates": 6,  # fewer seeds decide nothing (4: their range, 87.5 %)
        },
        "protocols": {"grid": {"description": "loss × lr grid"}},
        "measures": {
            "loss": {"name": "final", "metric": "train/loss"},
            "acc": {"name": "final", "metric": "val/accuracy"},
        },
        "checks": checks,
        "bootstrap": {"n_boot": 300},
    }


L5 = {
    "id": "L5",
    "claim": "compare loss curves to choose a loss",
    "why": "rank by loss value vs by accuracy",
    "statistic": {
        "name": "rank_agreement",
        "a": "loss",
        "a_mode": "min",
        "b": "acc",
        "by": "train.optimizer.lr",
        "reduce": "min",
    },
    "rule": {"op": ">=", "value": 1},
    "outcome": {"kind": "ill_posed", "why": "the two losses have different scales"},
}
N4 = {
    "id": "N4",
    "claim": "usually before, sometimes after",
    "why": "no pass/fail",
    "statistic": {
        "name": "diff",
        "measure": "acc",
        "param": "train.loss",
        "a": "mse",
        "b": "cross_entropy",
    },
    "outcome": {"kind": "not_falsifiable", "why": "'sometimes' is true of any result"},
}


def _world(mse_loss_scale: float):
    def world(p, r, rng):
        ce = p["train.loss"] == "cross_entropy"
        acc = (0.95 if ce else 0.85) + rng.normal(0, 0.005)
        loss = (0.2 if ce else 0.2 * mse_loss_scale) + rng.normal(0, 0.001)
        return {"curve": [{"epoch": 1, "train/loss": loss, "val/accuracy": acc}]}

    return world


def test_ill_posed_when_loss_ranking_disagrees_with_accuracy():
    claim = parse_claim(_claim([L5, N4]))
    # MSE loss values 10× smaller although MSE is less accurate: rankings disagree at every lr
    out = evaluate_claim(claim, grid_tables(claim, _world(0.1)))
    l5, n4 = out.checks
    assert l5.verdict is Verdict.REFUTED and l5.outcome is Outcome.ILL_POSED
    assert l5.label == "ill-posed" and "different scales" in l5.explanation
    assert n4.outcome is Outcome.NOT_FALSIFIABLE and "Reported, not judged" in n4.explanation
    cond = n4.conditions[0]
    assert (
        cond.estimate == pytest.approx(-0.10, abs=0.01) and cond.ci[0] < cond.estimate < cond.ci[1]
    )
    d = out.to_dict()["checks"]
    assert d[0]["verdict"] == "ill-posed" and d[0]["rule_verdict"] == "refuted"
    assert d[1]["verdict"] == "not falsifiable as worded"
    # same scale: the loss ranks CE first as accuracy does → the rule holds, no outcome
    ok = evaluate_claim(claim, grid_tables(claim, _world(2.0)))
    assert ok.checks[0].verdict is Verdict.SUPPORTED and ok.checks[0].outcome is None
    assert ok.checks[0].label == "supported"


def test_outcome_spec_errors_name_the_field():
    with pytest.raises(ClaimError, match=r"checks\[0\]\.outcome\.kind"):
        parse_claim(_claim([dict(L5, outcome={"kind": "vague", "why": "x"})]))
    with pytest.raises(ClaimError, match=r"checks\[0\]\.rule"):
        parse_claim(_claim([{k: v for k, v in L5.items() if k != "rule"}]))
    with pytest.raises(ClaimError, match=r"checks\[0\]\.outcome\.on"):
        parse_claim(
            _claim([dict(N4, outcome={"kind": "not_falsifiable", "why": "x", "on": "refuted"})])
        )
    with pytest.raises(ClaimError, match=r"checks\[0\]\.outcome\.why"):
        parse_claim(_claim([dict(L5, outcome={"kind": "ill_posed"})]))
