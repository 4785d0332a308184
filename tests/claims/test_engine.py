"""The verdict engine on synthetic run tables whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.claims import ClaimError, RunTable, Verdict, evaluate_claim, load_claim, parse_claim
from tests.claims.synth import grid_tables, saturating_curve
from tests.claims.toy import summary_table, toy_claim

RISING = {
    1: [0.50, 0.52, 0.49, 0.51, 0.50],
    2: [0.60, 0.61, 0.62, 0.59, 0.60],
    4: [0.70, 0.72, 0.69, 0.71, 0.70],
    8: [0.80, 0.81, 0.79, 0.82, 0.80],
}
FALLING = {x: [1.3 - v for v in vals] for x, vals in RISING.items()}


def test_supported_when_the_whole_ci_satisfies_the_rule():
    out = evaluate_claim(parse_claim(toy_claim()), {"a": summary_table("a", RISING)})
    (check,) = out.checks
    assert check.verdict is Verdict.SUPPORTED
    (cond,) = check.conditions
    assert cond.estimate == pytest.approx(1.0)
    assert cond.ci[0] >= 0.8
    assert cond.n_seeds == 5
    assert cond.n_runs == 20
    assert cond.n_failed == 0
    assert "whole interval satisfies" in cond.explanation


def test_refuted_when_the_whole_ci_violates_the_rule():
    out = evaluate_claim(parse_claim(toy_claim()), {"a": summary_table("a", FALLING)})
    (check,) = out.checks
    assert check.verdict is Verdict.REFUTED
    assert check.conditions[0].ci[1] < 0.8


def test_inconclusive_when_the_ci_straddles_the_threshold():
    raw = toy_claim()
    raw["checks"][0]["statistic"] = {"name": "diff", "measure": "m", "param": "x", "a": 2, "b": 1}
    raw["checks"][0]["rule"] = {"op": ">", "value": 0.0}
    # x=2 scatters around the constant x=1 value: the median difference is 0, its CI spans it
    values = {1: [0.5] * 5, 2: [0.40, 0.60, 0.50, 0.45, 0.55]}
    out = evaluate_claim(parse_claim(raw), {"a": summary_table("a", values)})
    cond = out.checks[0].conditions[0]
    assert out.checks[0].verdict is Verdict.INCONCLUSIVE
    assert cond.ci[0] < 0.0 < cond.ci[1]
    assert "straddles" in cond.explanation


def test_conditional_when_protocols_disagree():
    raw = toy_claim(
        protocols={"a": {"description": "rising arm"}, "b": {"description": "falling arm"}}
    )
    out = evaluate_claim(
        parse_claim(raw), {"a": summary_table("a", RISING), "b": summary_table("b", FALLING)}
    )
    check = out.checks[0]
    assert check.verdict is Verdict.CONDITIONAL
    assert check.protocols["a"].verdict is Verdict.SUPPORTED
    assert check.protocols["b"].verdict is Verdict.REFUTED
    assert "holds under a (rising arm)" in check.explanation
    assert "not under b (falling arm)" in check.explanation


def test_one_table_holding_every_protocol_is_split():
    raw = toy_claim(protocols={"a": {"description": "one"}, "b": {"description": "two"}})
    both = RunTable.concat([summary_table("a", RISING), summary_table("b", RISING)])
    out = evaluate_claim(parse_claim(raw), both)
    assert out.checks[0].verdict is Verdict.SUPPORTED


def test_too_few_seeds_is_inconclusive_with_a_reason():
    few = {x: v[:2] for x, v in RISING.items()}
    out = evaluate_claim(parse_claim(toy_claim()), {"a": summary_table("a", few)})
    cond = out.checks[0].conditions[0]
    assert cond.verdict is Verdict.INCONCLUSIVE
    assert "too few seeds" in cond.reason


_SHORT = "the range of 3 seeds covers the median only ≈75 % of the time, short of 95 %"


@pytest.mark.parametrize(
    ("values", "word"), [(RISING, "held"), (FALLING, "failed")], ids=["supported", "refuted"]
)
def test_three_seeds_decide_nothing_and_the_verdict_line_says_why(values, word):
    three = {x: v[:3] for x, v in values.items()}
    out = evaluate_claim(parse_claim(toy_claim()), {"a": summary_table("a", three)})
    cond = out.checks[0].conditions[0]
    assert out.checks[0].verdict is Verdict.INCONCLUSIVE
    assert cond.reason == f"the rule {word} in each of 3 seeds, but {_SHORT}"
    assert f"inconclusive: the rule {word} in each of 3 seeds" in out.checks[0].explanation
    assert cond.level == pytest.approx(0.75)


def test_strata_and_combined_conditions_are_not_decided_by_three_seeds():
    raw = toy_claim()
    by_x = {"name": "group_center", "measure": "m", "by": "x", "reduce": "all"}
    del raw["checks"][0]["statistic"], raw["checks"][0]["rule"]
    raw["checks"][0]["all"] = [
        {"statistic": by_x, "rule": {"op": ">=", "value": 0.4}},  # holds in every stratum
        {"statistic": {**by_x, "reduce": "any"}, "rule": {"op": ">=", "value": 0.9}},  # fails
    ]
    five = evaluate_claim(parse_claim(raw), {"a": summary_table("a", RISING)}).checks[0]
    assert [c.verdict for c in five.conditions] == [Verdict.SUPPORTED, Verdict.REFUTED]
    assert five.verdict is Verdict.REFUTED  # 5 seeds reach 93.75 %, within 2 points of 95 %
    three = {x: v[:3] for x, v in RISING.items()}
    check = evaluate_claim(parse_claim(raw), {"a": summary_table("a", three)}).checks[0]
    assert check.verdict is Verdict.INCONCLUSIVE
    for cond in check.conditions:
        assert cond.verdict is Verdict.INCONCLUSIVE
        assert {s.verdict for s in cond.strata} == {Verdict.INCONCLUSIVE}
        assert _SHORT in cond.reason


def test_a_difference_of_shares_has_an_exact_interval_and_decides_at_ten_seeds():
    raw = toy_claim()
    raw["study"]["replicates"] = 10
    raw["checks"][0]["statistic"] = {
        "name": "share_diff",
        "measure": "m",
        "condition": {"op": ">=", "value": 0.5},
        "param": "x",
        "a": 2,
        "b": 1,
    }
    raw["checks"][0]["rule"] = {"op": ">=", "value": 0.1}
    # arm 2 succeeds in every seed, arm 1 in none: the difference is 1, bounded below by 0.29
    values = {1: [0.2] * 10, 2: [0.7] * 10, 4: [0.7] * 10, 8: [0.7] * 10}
    cond = evaluate_claim(parse_claim(raw), {"a": summary_table("a", values)}).checks[0]
    cond = cond.conditions[0]
    assert cond.estimate == pytest.approx(1.0)
    assert cond.ci[0] == pytest.approx(0.2904, abs=1e-3)
    assert cond.verdict is Verdict.SUPPORTED
    assert cond.method == "paired_clopper_pearson"
    assert "paired Clopper-Pearson difference (Bonferroni) over 10 seeds, at least 95 %" in (
        cond.explanation
    )
    # one success fewer in arm 2 and one more in arm 1: the low end falls below the threshold
    values[2][0], values[1][1] = 0.2, 0.7
    cond = evaluate_claim(parse_claim(raw), {"a": summary_table("a", values)}).checks[0]
    assert cond.conditions[0].estimate == pytest.approx(0.8)
    assert cond.verdict is Verdict.INCONCLUSIVE


def test_too_many_failed_runs_is_inconclusive_and_divergence_is_counted():
    status = {(x, r): "failed" for x in (1, 2) for r in range(5)}
    status[(8, 0)] = "diverged"
    out = evaluate_claim(parse_claim(toy_claim()), {"a": summary_table("a", RISING, status=status)})
    cond = out.checks[0].conditions[0]
    assert cond.verdict is Verdict.INCONCLUSIVE
    assert cond.n_failed == 11  # 10 failed + the diverged run, whose final measure is NaN
    assert cond.n_diverged == 1
    assert "too many failed runs" in cond.reason
    assert any("failed" in c for c in out.caveats)


def test_ratio_of_two_never_reached_groups_is_undefined_not_equal():
    raw = toy_claim()
    raw["measures"] = {"e": {"name": "summary", "column": "epochs"}}
    raw["checks"][0]["statistic"] = {"name": "ratio", "measure": "e", "param": "x", "a": 2, "b": 1}
    raw["checks"][0]["rule"] = {"op": ">", "value": 1.0}
    values = {1: [1.0] * 5, 2: [1.0] * 5}
    runs = summary_table("a", values).runs
    runs["epochs"] = math.inf  # neither group ever reached the target
    out = evaluate_claim(parse_claim(raw), {"a": RunTable(runs)})
    cond = out.checks[0].conditions[0]
    assert cond.verdict is Verdict.INCONCLUSIVE
    assert math.isnan(cond.estimate)
    assert "undefined" in cond.reason


def test_missing_protocol_table_is_an_error_naming_it():
    with pytest.raises(ClaimError) as exc:
        evaluate_claim(parse_claim(toy_claim()), {"other": summary_table("other", RISING)})
    assert "a" in exc.value.path
    assert "other" in str(exc.value)


def _lr_claim() -> dict:
    raw = toy_claim()
    raw["protocols"] = {
        "tuned": {
            "description": "best lr per x",
            "search": {"lr": {"type": "categorical", "choices": [0.1, 1.0], "role": "nuisance"}},
            "select": {"measure": "m", "mode": "max"},
        },
        "shared": {
            "description": "lr chosen at x=8",
            "reuse": "tuned",
            "select": {"measure": "m", "mode": "max", "at": {"x": 8}},
        },
        "low": {
            "description": "lr 0.1 only",
            "reuse": "tuned",
            "where": {"lr": 0.1},
            "roles": {"lr": "fixed"},
        },
    }
    raw["checks"][0]["statistic"] = {"name": "gap_to_best", "measure": "m", "x": "x", "at": "min"}
    raw["checks"][0]["rule"] = {"op": ">=", "value": 0.3}
    raw["checks"][0]["per_protocol"] = {"tuned": {"value": 0.05}}
    return raw


def _lr_table() -> RunTable:
    # lr 1.0 is best at every x except x=1, where it is terrible; lr 0.1 is mediocre everywhere
    runs = []
    trial = 0
    for x in (1, 2, 4, 8):
        for lr in (0.1, 1.0):
            for r in range(5):
                v = 0.7 + 0.01 * r if lr == 0.1 else (0.2 if x == 1 else 0.9) + 0.01 * r
                runs.append(
                    {
                        "protocol": "tuned",
                        "trial": trial,
                        "replicate": r,
                        "seed": r,
                        "status": "completed",
                        "x": x,
                        "lr": lr,
                        "final/val/accuracy": v,
                    }
                )
            trial += 1
    return RunTable.from_records(runs)


def test_selection_reuse_and_where_protocols():
    claim = parse_claim(_lr_claim())
    assert claim.protocols_to_run() == ["tuned"]
    out = evaluate_claim(claim, {"tuned": _lr_table()})
    by = {c.protocol: c for c in out.checks[0].conditions}
    # tuned: x=1 keeps lr 0.1 (0.72) vs best 0.92 elsewhere → gap 0.2 ≥ 0.05
    assert by["tuned"].estimate == pytest.approx(0.2)
    # shared: lr 1.0 (best at x=8) everywhere → x=1 at 0.22, gap 0.7
    assert by["shared"].estimate == pytest.approx(0.7)
    # low: lr 0.1 everywhere → no gap
    assert by["low"].estimate == pytest.approx(0.0)
    assert out.checks[0].verdict is Verdict.CONDITIONAL
    sel = out.protocols["tuned"].selection
    assert sel.set_index("group").loc["x=1", "lr"] == "0.1"
    assert sel.set_index("group").loc["x=8", "lr"] == "1"
    assert len(out.protocols["shared"].measures) == 20  # one lr kept for every x
    # a 2-value grid has no interior, so its winners are not flagged as edge choices
    assert not any("edge" in c for c in out.caveats)


def test_nuisance_without_select_is_rejected():
    raw = _lr_claim()
    del raw["protocols"]["tuned"]["select"]
    with pytest.raises(ClaimError) as exc:
        parse_claim(raw)
    assert exc.value.path == "protocols.tuned.select"
    assert "lr" in str(exc.value)


# -- a real claim file on a synthetic world ------------------------------------------------------
def mse_world(cfg, r, rng):
    """Cross-entropy converges 3× faster at every lr; MSE on logits diverges at lr 1."""
    loss, lr = cfg["train.loss"], cfg["train.optimizer.lr"]
    name = loss if isinstance(loss, str) else f"mse_{loss['output']}"
    if name == "mse_identity" and lr >= 1.0:
        return {"status": "diverged", "curve": [{"epoch": 0, "val/accuracy": 0.1}]}
    # no faster beyond lr 1 (the widened grid's lr 3 must not reach the target in epoch 0)
    tau = 0.2 / min(lr, 1.0) * (3.0 if name.startswith("mse") else 1.0) * (1 + 0.05 * r)
    acc = saturating_curve(100, 0.97, tau, rng, noise=0.002)
    curve = []
    for e, a in enumerate(acc):
        row = {"epoch": e, "val/accuracy": a}
        if e == 0:
            row.update(
                {
                    "grad_norm/dense_0.W": 0.5,
                    "grad_norm/dense_1.W": 1.0 if name == "cross_entropy" else 0.1,
                }
            )
        curve.append(row)
    return {"curve": curve}


def test_mse_vs_ce_claim_end_to_end_on_a_known_world():
    claim = load_claim("mse_vs_ce")
    tables = grid_tables(claim, mse_world)
    out = evaluate_claim(claim, tables, n_boot=300)
    v = out.verdicts
    # MSE on softmax is 3× slower at every lr and at the best lr: supported in both forms
    assert v["L1"] is Verdict.SUPPORTED
    l1_every = out.checks[0].protocols["every_lr"].conditions[0]
    lrs = claim.study_for("best_lr")["search"]["params"]["train.optimizer.lr"]["choices"]
    assert len(l1_every.strata) == len(lrs)  # one stratum per learning rate
    assert all(s.verdict is Verdict.SUPPORTED for s in l1_every.strata)
    assert out.checks[0].protocols["best_lr"].conditions[0].ci[0] >= 1.5
    # the diverged MSE-on-logits runs at lr 1 count as never reaching the target
    n_div_lrs = sum(lr >= 1.0 for lr in lrs)  # MSE on logits diverges at these
    assert out.protocols["best_lr"].status_counts["diverged"] == n_div_lrs * claim.replicates
    l1b = {p: r.conditions[0] for p, r in out.checks[1].protocols.items()}
    assert any(
        s.label == "train.optimizer.lr=1" and math.isinf(s.estimate) for s in l1b["every_lr"].strata
    )
    assert out.protocols["best_lr"].measures["output_grad_init"].notna().all()
    # nothing in the outcome came from anything but the tables
    assert np.isfinite(out.checks[2].conditions[0].estimate)


def test_verdicts_and_cis_are_reproducible():
    claim = parse_claim(toy_claim())
    table = {"a": summary_table("a", RISING)}
    one, two = evaluate_claim(claim, table), evaluate_claim(claim, table)
    assert one.conditions_frame().equals(two.conditions_frame())


def test_report_survives_a_protocol_where_every_run_failed(tmp_path):
    from harness.claims import write_report

    raw = toy_claim()
    raw["figures"] = [
        {"name": "measure_vs_param", "measure": "m", "x": "x"},
        {"name": "bar", "measure": "m", "x": "x"},
    ]
    claim = parse_claim(raw)
    status = {(x, r): "failed" for x in RISING for r in range(5)}
    tables = {"a": summary_table("a", RISING, status=status)}
    out = evaluate_claim(claim, tables)
    assert "too many failed runs (20 of 20" in out.checks[0].conditions[0].reason
    paths = write_report(claim, out, tables, out_dir=tmp_path, meta={})
    assert len(paths.figures) == 2
    assert "**INCONCLUSIVE**" in paths.markdown.read_text(encoding="utf-8")


def test_relative_targets_are_resolved_within_each_protocols_runs():
    """0.9 × the best accuracy is taken over the runs a protocol evaluates, not over every
    protocol of the claim: protocols may train on different data."""
    raw = toy_claim(
        protocols={
            "easy": {"description": "data where accuracy reaches 1.0"},
            "hard": {"description": "data where accuracy tops out at 0.5"},
        },
        measures={
            "ett": {
                "name": "epochs_to",
                "metric": "val/accuracy",
                "target": {"fraction_of_best": 0.9},
            }
        },
        checks=[
            {
                "id": "C1",
                "claim": "epochs to target stay finite",
                "why": "a test rule",
                "statistic": {"name": "group_center", "measure": "ett"},
                "rule": {"op": "<=", "value": 10},
            }
        ],
    )
    claim = parse_claim(raw)

    def table(protocol: str, top: float) -> RunTable:
        runs, curves = [], []
        for trial, x in enumerate([1, 2, 4, 8]):
            for r in range(5):
                key = {"protocol": protocol, "trial": trial, "replicate": r}
                runs.append({**key, "seed": 100 + r, "status": "completed", "x": x})
                for epoch in range(4):  # accuracy rises to `top` at epoch 3
                    curves.append({**key, "epoch": epoch, "val/accuracy": top * epoch / 3})
        return RunTable.from_records(runs, curves)

    outcome = evaluate_claim(claim, {"easy": table("easy", 1.0), "hard": table("hard", 0.5)})
    for protocol in ("easy", "hard"):
        ett = outcome.protocols[protocol].measures["ett"]
        assert (ett == 3).all(), (protocol, ett.tolist())  # 0.9 × own best is reached at epoch 3
    assert outcome.checks[0].verdict == Verdict.SUPPORTED
