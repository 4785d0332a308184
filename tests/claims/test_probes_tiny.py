"""The `tiny` budget of every shipped claim: a smoke test of 1 seed and 1-2 epochs (or a few
dozen steps) per protocol, so `harness reproduce --all --budget tiny` runs the whole catalogue in
minutes. Fast: every claim resolves at tiny to such studies. Slow: every claim reproduces at tiny
and the book lists them all."""

from __future__ import annotations

import json

import pytest

from harness.claims import list_claims, load_claim
from harness.claims.outcome import Outcome
from harness.study.spec import parse_study

# verdicts, and the outcomes a check may report instead (ill-posed, not falsifiable as worded)
VERDICTS = {"supported", "refuted", "conditional", "inconclusive"} | {o.value for o in Outcome}


@pytest.mark.parametrize("claim_id", list_claims())
def test_every_claim_defines_a_tiny_budget_of_one_seed_and_few_epochs(claim_id):
    claim = load_claim(claim_id, budget="tiny")
    assert claim.budget == "tiny"
    assert "tiny" in claim.budgets
    assert claim.budgets["tiny"].get("description"), "a budget says what it runs"
    for name in claim.protocols_to_run():
        study = claim.study_for(name)
        if "probe" in study:
            continue  # a probe protocol trains nothing: its seeds are checked below only
        raw = dict(study)
        raw["name"] = f"claim-{claim_id}-{name}-tiny"
        assert parse_study(raw, source=f"{claim_id}#protocols.{name}") is not None
        assert study["replicates"] == 1, name
        train = study["train"]
        steps = train.get("max_steps") or 10**9
        assert train["epochs"] <= 3 or steps <= 40, (name, train["epochs"], steps)


@pytest.mark.parametrize("claim_id", list_claims())
def test_tiny_keeps_the_checks_and_the_protocols(claim_id):
    quick, tiny = load_claim(claim_id), load_claim(claim_id, budget="tiny")
    assert [c.id for c in tiny.checks] == [c.id for c in quick.checks]
    assert tiny.protocols_to_run() == quick.protocols_to_run()


@pytest.mark.slow
def test_reproduce_all_at_the_tiny_budget(tmp_path, monkeypatch, tracking_uri):
    """What `harness reproduce --all --budget tiny` runs: every claim, then the book."""
    from harness.reproduce import reproduce_all

    monkeypatch.chdir(tmp_path)  # study journals and ledgers go under ./mlruns
    results, index = reproduce_all(
        None,
        budget="tiny",
        jobs=2,
        tracking_uri=tracking_uri,
        reports_dir=tmp_path / "reports",
        progress=False,
        echo=lambda *_: None,
    )
    assert [r.claim_id for r in results] == list_claims()
    for r in results:
        claim = load_claim(r.claim_id, budget="tiny")
        assert set(r.verdicts) == {c.id for c in claim.checks}, r.claim_id
        assert set(r.verdicts.values()) <= VERDICTS, r.claim_id
        assert r.report_html.is_file()
    book = json.loads((index.parent / "index.json").read_text(encoding="utf-8"))
    assert {c["claim"] for c in book["claims"]} == set(list_claims())
    assert book["catalogue_missing"] == []  # every catalogue id has a check
