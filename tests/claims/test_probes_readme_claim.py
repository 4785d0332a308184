"""The README's worked example of a new claim ("Add a claim: what YAML alone expresses") is a
valid claim: the YAML block is loaded from README.md itself, validated at every budget (each
protocol a valid study), and reproduced end to end at the tiny budget."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness.claims import parse_claim
from harness.study.spec import parse_study

REPO = Path(__file__).resolve().parents[2]
SECTION = "### Add a claim: what YAML alone expresses"


def _readme_claim() -> dict:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, "the README's add-a-claim section"
    section = text.split(SECTION, 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "one worked example in the section"
    raw = yaml.safe_load(blocks[0])
    assert isinstance(raw, dict)
    return raw


@pytest.mark.parametrize("budget", ["quick", "full", "tiny"])
def test_the_readme_example_claim_validates(budget):
    raw = _readme_claim()
    claim = parse_claim(raw, budget=budget)
    assert claim.budget == budget
    # what the README says the example uses: a data option and the metric_gap measure
    assert raw["study"]["data"]["perturb"] == {"label_noise": 0.2}
    assert claim.measures["gap"].__class__.__name__ == "MetricGap"
    for name in claim.protocols_to_run():
        study = dict(claim.study_for(name))
        study["name"] = f"claim-{claim.id}-{name}-{budget}"
        assert parse_study(study, source=f"README#{name}") is not None
        assert study["replicates"] == {"quick": 6, "full": 10, "tiny": 1}[budget]
    assert [c.id for c in claim.checks] == ["dropout_gap"]


def test_a_typo_in_the_readme_example_is_one_clear_error():
    from harness.claims import ClaimError

    raw = _readme_claim()
    raw["measures"]["gap"]["name"] = "metric_gapp"
    with pytest.raises(ClaimError) as exc:
        parse_claim(raw)
    assert "measures.gap" in str(exc.value) and "metric_gap" in str(exc.value)


def test_the_readme_example_claim_reproduces_at_tiny(tmp_path, monkeypatch, tracking_uri):
    from harness.reproduce import reproduce_all

    monkeypatch.chdir(tmp_path)  # study journals and ledgers go under ./mlruns
    path = tmp_path / "dropout_noise.yaml"
    path.write_text(yaml.safe_dump(_readme_claim(), allow_unicode=True), encoding="utf-8")
    (r,), _ = reproduce_all(
        [str(path)],
        budget="tiny",
        jobs=1,
        tracking_uri=tracking_uri,
        reports_dir=tmp_path / "reports",
        progress=False,
        echo=lambda *_: None,
    )
    assert r.n_runs == 2
    assert set(r.verdicts) == {"dropout_gap"}
    # one seed: the order-statistic interval cannot reach 95 %, so no verdict either way
    assert r.verdicts["dropout_gap"] == "inconclusive"
    assert "dropout_gap" in r.report_md.read_text(encoding="utf-8")
