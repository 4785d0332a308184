"""Pooled protocols (``pool: [p1, p2]``): one check over the runs of several protocols at once.

Synthetic run tables with known answers: a cross-protocol effect, a null, a paired effect that
only pairing by seed decides, a difference of differences whose cells span two protocols, and
the one-line errors of bad pools.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from harness.claims import (
    ClaimError,
    RunTable,
    Verdict,
    evaluate_claim,
    load_claim,
    parse_claim,
    write_report,
)
from harness.claims.book import BookEntry, write_book
from tests.claims.synth import grid_tables
from tests.claims.toy import summary_table, toy_claim

R = 10  # seeds: enough for the order-statistic interval of the median to reach 95 %


def pooled_claim(statistic: dict[str, Any], rule: dict[str, Any], **protocols: Any) -> dict:
    """Protocols ``clean`` and ``noisy`` (x ∈ {1, 2}, 10 seeds) and their pool ``both``."""
    raw = toy_claim()
    raw["study"]["replicates"] = R
    raw["study"]["search"]["params"]["x"]["choices"] = [1, 2]
    raw["protocols"] = {
        "clean": {"description": "clean data"},
        "noisy": {"description": "noisy data", "set": {"train.epochs": 4}},
        "both": {"description": "clean vs noisy", "pool": ["clean", "noisy"]},
        **protocols,
    }
    raw["checks"][0].update(protocols=["both"], statistic=statistic, rule=rule)
    return raw


def diff_clean_noisy(x: int = 1) -> dict[str, Any]:
    return {
        "name": "diff",
        "measure": "m",
        "a": {"protocol": "clean", "x": x},
        "b": {"protocol": "noisy", "x": x},
    }


def tables(clean: dict, noisy: dict, *, noisy_seed: int = 100) -> dict[str, RunTable]:
    t = {"clean": summary_table("clean", clean), "noisy": summary_table("noisy", noisy)}
    t["noisy"].runs["seed"] = noisy_seed + t["noisy"].runs["replicate"]
    return t


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed))


def test_a_known_cross_protocol_effect_is_supported():
    rng = _rng(1)
    base = 0.8 + rng.normal(0, 0.01, R)
    clean = {1: list(base), 2: list(base)}
    noisy = {1: list(base - 0.1 + rng.normal(0, 0.005, R)), 2: list(base)}
    claim = parse_claim(pooled_claim(diff_clean_noisy(), {"op": ">=", "value": 0.05}))
    out = evaluate_claim(claim, tables(clean, noisy))
    (check,) = out.checks
    assert check.verdict is Verdict.SUPPORTED
    (cond,) = check.conditions
    assert cond.protocol == "both"
    assert cond.estimate == pytest.approx(0.1, abs=0.01)
    assert cond.ci[0] >= 0.05
    assert cond.n_seeds == R
    assert cond.n_runs == 2 * R  # the two compared arms only
    # the outcome names the pooled protocols; the pool's data has the protocol as a group key
    assert "pools clean, noisy" in check.explanation
    groups = out.protocols["both"].grouped.groups
    assert set(groups["protocol"]) == {"clean", "noisy"}
    assert out.protocols["both"].pool == ("clean", "noisy")
    assert not any("different seeds" in n for n in out.protocols["both"].notes)


def test_a_null_across_protocols_is_inconclusive_and_its_interval_covers_zero():
    rng = _rng(2)
    clean = {1: list(0.8 + rng.normal(0, 0.02, R)), 2: [0.8] * R}
    noisy = {1: list(0.8 + rng.normal(0, 0.02, R)), 2: [0.8] * R}
    claim = parse_claim(pooled_claim(diff_clean_noisy(), {"op": ">", "value": 0.0}))
    cond = evaluate_claim(claim, tables(clean, noisy)).checks[0].conditions[0]
    assert cond.verdict is Verdict.INCONCLUSIVE
    assert cond.ci[0] < 0.0 < cond.ci[1]
    assert "straddles" in cond.explanation
    # the same null against a 0.05 effect: the whole interval is below it, refuted
    claim = parse_claim(pooled_claim(diff_clean_noisy(), {"op": ">=", "value": 0.05}))
    cond = evaluate_claim(claim, tables(clean, noisy)).checks[0].conditions[0]
    assert cond.verdict is Verdict.REFUTED


def test_pairing_by_seed_decides_what_an_unpaired_comparison_cannot():
    # a large seed effect shared by both protocols (same seed → same offset), a small paired
    # effect: per seed the difference is 0.05 ± 0.002, across seeds each arm spreads by ± 0.2
    rng = _rng(3)
    offset = rng.normal(0, 0.2, R)
    clean = {1: list(0.5 + offset + rng.normal(0, 0.001, R)), 2: [0.5] * R}
    noisy = {1: list(0.45 + offset + rng.normal(0, 0.001, R)), 2: [0.5] * R}
    claim = parse_claim(pooled_claim(diff_clean_noisy(), {"op": ">=", "value": 0.02}))
    paired = evaluate_claim(claim, tables(clean, noisy)).checks[0].conditions[0]
    assert paired.verdict is Verdict.SUPPORTED
    assert paired.estimate == pytest.approx(0.05, abs=0.005)
    # the same values with noisy's seeds in another order: no longer paired, undecided
    perm = np.roll(np.arange(R), 3)
    shuffled = {k: [v[i] for i in perm] for k, v in noisy.items()}
    unpaired = evaluate_claim(claim, tables(clean, shuffled)).checks[0].conditions[0]
    assert unpaired.verdict is Verdict.INCONCLUSIVE
    assert unpaired.ci[1] - unpaired.ci[0] > 10 * (paired.ci[1] - paired.ci[0])


def test_replicates_with_different_seeds_are_paired_by_index_and_a_note_says_so():
    clean = {1: [0.8] * R, 2: [0.8] * R}
    noisy = {1: [0.7] * R, 2: [0.8] * R}
    claim = parse_claim(pooled_claim(diff_clean_noisy(), {"op": ">=", "value": 0.05}))
    out = evaluate_claim(claim, tables(clean, noisy, noisy_seed=500))
    notes = out.protocols["both"].notes
    assert any("paired by replicate index, not by seed" in n for n in notes)
    assert any("paired by replicate index" in c for c in out.caveats)
    assert out.checks[0].conditions[0].estimate == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("statistic", "rule", "expected"),
    [
        (
            {
                "name": "diff_of_diffs",
                "measure": "m",
                "a": {"protocol": "clean", "x": 2},
                "b": {"protocol": "noisy", "x": 2},
                "c": {"protocol": "clean", "x": 1},
                "d": {"protocol": "noisy", "x": 1},
            },
            {"op": ">=", "value": 0.1},
            0.2 - 0.02,
        ),
        (
            {**diff_clean_noisy(2), "name": "ratio"},
            {"op": ">", "value": 1.2},
            0.9 / 0.7,
        ),
        (
            {
                "name": "share_diff",
                "measure": "m",
                "condition": {"op": ">=", "value": 0.85},
                "a": {"protocol": "clean", "x": 2},
                "b": {"protocol": "noisy", "x": 2},
            },
            {"op": ">=", "value": 0.25},  # 10 of 10 seeds: the exact interval's low end is 0.29
            1.0,
        ),
        (  # the protocol as the compared parameter: arms are protocol names
            {"name": "diff", "measure": "m", "param": "protocol", "a": "clean", "b": "noisy"},
            {"op": ">=", "value": 0.05},
            (0.9 + 0.8) / 2 - (0.7 + 0.78) / 2,
        ),
        (  # per seed: does clean beat noisy by ≥ 0.1 at x = 2? (10 of 10: exact low end 0.69)
            {
                "name": "success_fraction",
                "measure": "m",
                "condition": {"op": ">=", "value": 0.1},
                "a": {"protocol": "clean", "x": 2},
                "b": {"protocol": "noisy", "x": 2},
            },
            {"op": ">=", "value": 0.6},
            1.0,
        ),
    ],
    ids=["diff_of_diffs", "ratio", "share_diff", "param_protocol", "success_fraction"],
)
def test_every_arm_statistic_reads_the_pool(statistic, rule, expected):
    # x = 2 loses 0.2 under noise, x = 1 loses 0.02 (each ± 0.002 per seed)
    rng = _rng(4)
    jitter = rng.normal(0, 0.002, (4, R))
    clean = {1: list(0.8 + jitter[0]), 2: list(0.9 + jitter[1])}
    noisy = {1: list(0.78 + jitter[2]), 2: list(0.7 + jitter[3])}
    claim = parse_claim(pooled_claim(statistic, rule))
    cond = evaluate_claim(claim, tables(clean, noisy)).checks[0].conditions[0]
    assert cond.verdict is Verdict.SUPPORTED
    assert cond.estimate == pytest.approx(expected, abs=0.01)


def test_a_pool_where_keeps_its_rows_and_a_member_reusing_runs_may_join():
    raw = pooled_claim(diff_clean_noisy(), {"op": ">=", "value": 0.05})
    raw["protocols"]["again"] = {"description": "clean again", "reuse": "clean"}
    raw["protocols"]["both"]["where"] = {"x": 1}
    raw["protocols"]["three"] = {"description": "all", "pool": ["clean", "noisy", "again"]}
    claim = parse_claim(raw)
    assert claim.protocols_to_run() == ["clean", "noisy"]
    assert claim.protocols["three"].scientific == ["protocol", "x"]
    clean = {1: [0.8] * R, 2: [0.8] * R}
    noisy = {1: [0.7] * R, 2: [0.8] * R}
    out = evaluate_claim(claim, tables(clean, noisy))
    assert set(out.protocols["both"].grouped.groups["x"]) == {1}
    assert len(out.protocols["both"].table.runs) == 2 * R
    assert out.protocols["three"].grouped.n_groups == 6
    with pytest.raises(ClaimError, match="pools the runs of clean, noisy"):
        claim.study_for("both")


def test_the_report_names_the_pool(tmp_path):
    raw = pooled_claim(diff_clean_noisy(), {"op": ">=", "value": 0.05})
    raw["figures"] = [{"name": "bar", "measure": "m", "x": "x", "hue": "protocol"}]
    claim = parse_claim(raw)
    t = tables({1: [0.8] * R, 2: [0.8] * R}, {1: [0.7] * R, 2: [0.8] * R})
    out = evaluate_claim(claim, t)
    paths = write_report(claim, out, t, out_dir=tmp_path, meta={})
    text = paths.markdown.read_text(encoding="utf-8")
    assert "pooled runs of `clean`, `noisy`, paired by seed" in text
    assert "pools clean, noisy" in text


BAD = [
    (  # an arm names a protocol the pool does not hold
        {"checks": {"statistic": {**diff_clean_noisy(), "b": {"protocol": "nosiy", "x": 1}}}},
        "checks[0].statistic.b.protocol",
        "a protocol pooled by 'both': clean, noisy",
    ),
    (  # the protocol as the compared parameter, a bad arm
        {
            "checks": {
                "statistic": {
                    "name": "diff",
                    "measure": "m",
                    "param": "protocol",
                    "a": "x",
                    "b": "noisy",
                },
            }
        },
        "checks[0].statistic.a",
        "a protocol pooled by 'both'",
    ),
    (  # a protocol filter on a check that is not over a pool
        {"checks": {"protocols": ["clean"]}},
        "checks[0].statistic.a",
        "needs a check over a pooled protocol",
    ),
    (
        {"both": {"description": "d", "pool": ["clean", "dirty"]}},
        "protocols.both.pool",
        "another protocol that is not itself a pool: clean, noisy",
    ),
    (
        {"both": {"description": "d", "pool": ["clean"]}},
        "protocols.both.pool",
        "two or more distinct protocols",
    ),
    (
        {"both": {"description": "d", "pool": ["clean", "noisy"], "set": {"train.epochs": 2}}},
        "protocols.both.set",
        "a pooled protocol has no runs of its own",
    ),
    (
        {"both": {"description": "d", "pool": ["clean", "noisy"], "where": {"y": 1}}},
        "protocols.both.where",
        "a scientific parameter of the pool: protocol, x",
    ),
    (
        {"both": {"description": "d", "pool": ["clean", "noisy"], "where": {"protocol": "dirty"}}},
        "protocols.both.where.protocol",
        "a protocol of the pool: clean, noisy",
    ),
    (
        {"again": {"description": "d", "reuse": "both"}},
        "protocols.again.reuse",
        "a protocol that has runs of its own",
    ),
    (  # a relative target would be resolved on each member's own runs
        {
            "measures": {
                "m": {
                    "name": "epochs_to",
                    "metric": "val/accuracy",
                    "target": {"fraction_of_best": 0.9},
                }
            }
        },
        "measures.m.target",
        "whose protocols have different runs (clean, noisy)",
    ),
]


@pytest.mark.parametrize(("change", "path", "allowed"), BAD)
def test_bad_pools_are_one_line_at_load(change, path, allowed):
    raw = pooled_claim(diff_clean_noisy(), {"op": ">=", "value": 0.05})
    for k, v in change.items():
        if k == "checks":
            raw["checks"][0].update(v)
        elif k == "measures":
            raw["measures"] = v
        else:
            raw["protocols"][k] = v
    with pytest.raises(ClaimError) as exc:
        parse_claim(raw)
    msg = str(exc.value)
    assert exc.value.path == path, msg
    assert allowed in msg
    assert "\n" not in msg


def test_a_relative_target_is_fine_when_the_pooled_protocols_share_their_runs():
    raw = pooled_claim(diff_clean_noisy(), {"op": ">=", "value": 0.05})
    raw["protocols"]["noisy"] = {"description": "the same runs", "reuse": "clean"}
    raw["measures"] = {
        "m": {"name": "epochs_to", "metric": "val/accuracy", "target": {"fraction_of_best": 0.9}}
    }
    assert parse_claim(raw).protocols["both"].pool == ("clean", "noisy")


def xor_world(cfg: dict, r: int, rng: np.random.Generator) -> dict:
    """No hidden layer fits 3 of 4 points; width ≥ 4 fits XOR in every seed, width 2 in 60 %."""
    width = cfg.get("model.width")
    if cfg.get("model.depth") == 0:
        acc = 0.75
    elif width is not None:
        acc = 1.0 if width >= 4 or rng.random() < 0.6 else 0.75
    else:
        acc = 0.0  # the other protocols of the claim: not read by X1_layer
    return {"final/train/accuracy": acc, "final/val/accuracy": acc, "probe/macs": 1.0}


def test_the_shipped_x1_layer_contrast_on_a_known_xor_world(tmp_path):
    claim = load_claim("representation_training", budget="quick")
    assert "layer_exact" not in claim.protocols_to_run()  # a pool trains nothing
    out = evaluate_claim(claim, grid_tables(claim, xor_world), n_boot=100)
    check = next(c for c in out.checks if c.id == "X1_layer")
    assert check.verdict is Verdict.SUPPORTED, check.explanation
    for pname in ("layer_exact", "layer_noisy"):
        (cond,) = check.protocols[pname].conditions
        assert cond.estimate == pytest.approx(1.0)  # 20 of 20 seeds fit with, none without
        assert cond.n_seeds == 20
    assert "pools single_exact, hidden_exact" in check.explanation
    # the report book lists the check with its pools' verdicts
    entry = BookEntry(claim, out, report_md="r/report.md", report_html="r/report.html")
    _md, _html, js = write_book(tmp_path, [entry], budget="quick")
    row = next(
        c for c in json.loads(js.read_text(encoding="utf-8"))["checks"] if c["check"] == "X1_layer"
    )
    assert row["protocols"] == {"layer_exact": "supported", "layer_noisy": "supported"}
    assert row["seed_files"] == ["001_a9e0aef2ba68dc0e.txt"]


def test_a_pool_reading_a_timing_measure_times_every_members_runs():
    from harness.reproduce import timing_scope

    raw = pooled_claim(diff_clean_noisy(), {"op": "<", "value": 0.0})
    raw["measures"] = {"m": {"name": "time_to", "metric": "val/accuracy", "target": 0.5}}
    raw["protocols"]["again"] = {"description": "x = 1 only", "reuse": "clean", "where": {"x": 1}}
    raw["protocols"]["both"]["pool"] = ["again", "noisy"]
    raw["checks"][0]["statistic"]["a"] = {"protocol": "again", "x": 1}
    scope = timing_scope(parse_claim(raw))
    assert scope["both"] is None and scope["noisy"] is None and scope["again"] is None
    assert scope["clean"] is not None and len(scope["clean"]) == 1  # only the runs again keeps


def test_a_pool_of_probe_protocols_checks_its_members_outputs_and_pairs_their_seeds():
    from harness.claims import ClaimSpec
    from harness.claims.probes import check_probe_claim, is_probe_protocol, run_probe_protocol
    from tests.claims.test_probes import _claim

    raw = _claim()
    fd = raw["protocols"]["p"]
    raw["protocols"] = {
        "near": {
            **fd,
            "description": "x = 5",
            "set": {"probe": {"name": "finite_difference", "x": 5.0}},
        },
        "far": {
            **fd,
            "description": "x = 50",
            "set": {"probe": {"name": "finite_difference", "x": 50.0}},
        },
        "both": {"description": "x = 5 vs 50", "pool": ["near", "far"]},
    }
    raw["checks"][0].update(
        protocols=["both"],
        statistic={
            "name": "diff",
            "measure": "err",
            "a": {"protocol": "near", "probe.scheme": "forward", "probe.h": 0.01},
            "b": {"protocol": "far", "probe.scheme": "forward", "probe.h": 0.01},
        },
        rule={"op": "between", "value": [-1.0, 1.0]},
    )
    raw["figures"] = []
    claim: ClaimSpec = parse_claim(raw)
    assert is_probe_protocol(claim, "both")
    check_probe_claim(claim)
    tabs = {p: run_probe_protocol(claim, p) for p in claim.protocols_to_run()}
    out = evaluate_claim(claim, tabs)
    assert not any("different seeds" in n for n in out.protocols["both"].notes)
    assert out.protocols["both"].grouped.n_groups == 8
    raw["measures"]["err"]["column"] = "probe/abs_eror"
    with pytest.raises(ClaimError, match="an output of the probe of protocol 'both'"):
        check_probe_claim(parse_claim(raw))
