"""The issue-9 training claims (initialization, activations, batch noise, input normalization,
capacity, batch norm, optimizers in training, representation, loss ranking): every file validates
at every budget, quotes are verbatim, and (slow) each runs at the tiny budget end to end."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from harness.claims import load_claim
from harness.claims.spec import leaves
from harness.study.spec import parse_study

CLAIMS = [
    "initialization",
    "activations_training",
    "batch_noise",
    "loss_choice",
    "capacity_regularization",
    "batch_norm",
    "optimizers_training",
    "representation_training",
    "loss_ranking",
]
SEEDS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"


@pytest.mark.parametrize("claim_id", CLAIMS)
@pytest.mark.parametrize("budget", ["quick", "full", "tiny"])
def test_claim_validates_and_every_protocol_is_a_study(claim_id, budget):
    claim = load_claim(claim_id, budget=budget)
    assert claim.budget == budget
    quoted = {c for q in claim.quotes for c in q.checks}
    assert {c.id for c in claim.checks} <= quoted
    for name in claim.protocols_to_run():
        if "probe" in claim.study_for(name):
            continue  # a probe protocol trains nothing (X2's multiply-add count)
        raw = dict(claim.study_for(name))
        raw["name"] = f"claim-{claim_id}-{name}-{budget}"
        spec = parse_study(raw, source=f"{claim_id}#protocols.{name}")
        assert spec is not None
        study = claim.study_for(name)
        if budget == "tiny":
            assert study["replicates"] == 1
            train = study["train"]
            assert train["epochs"] <= 3 or (train.get("max_steps") or 10**9) <= 30, name
        else:
            # a random search's trials are its random units: 2 seeds per trial (the minimum a
            # claim accepts) there, 3 or more elsewhere
            random = (study["search"].get("sampler") or {}).get("name") == "random"
            assert study["replicates"] >= (2 if random else 3)
    for check in claim.checks:
        assert check.why.strip()
        for p in check.protocols:
            for leaf in leaves(check.node):
                for m in leaf.statistic_for(p).measures():
                    assert m in claim.measures


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_full_budget_has_more_seeds(claim_id):
    quick, full = load_claim(claim_id), load_claim(claim_id, budget="full")
    for name in quick.protocols_to_run():
        assert full.study_for(name)["replicates"] >= max(10, quick.study_for(name)["replicates"])


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="the seed documents are not on this machine")
@pytest.mark.parametrize("claim_id", CLAIMS)
def test_quotes_are_verbatim(claim_id):
    for q in load_claim(claim_id).quotes:
        seed = (SEEDS_DIR / q.seed_file).read_text(encoding="utf-8")
        assert _norm(q.text) in _norm(seed), f"not in {q.seed_file}: {q.text[:30]}"


@pytest.mark.slow
@pytest.mark.parametrize("claim_id", CLAIMS)
def test_claim_runs_at_the_tiny_budget(claim_id, tmp_path, monkeypatch, tracking_uri):
    from harness.reproduce import reproduce_claim

    monkeypatch.chdir(tmp_path)  # study journals and ledgers go under ./mlruns
    result = reproduce_claim(
        claim_id,
        budget="tiny",
        jobs=2,
        tracking_uri=tracking_uri,
        reports_dir=tmp_path / "reports",
        progress=False,
        echo=lambda *_: None,
    )
    claim = load_claim(claim_id, budget="tiny")
    assert set(result.verdicts) == {c.id for c in claim.checks}
    assert all(
        v
        in (
            "supported",
            "refuted",
            "inconclusive",
            "conditional",
            "ill-posed",
            "not falsifiable as worded",
        )
        for v in result.verdicts.values()
    )
    assert result.report_html.is_file()
