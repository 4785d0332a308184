"""A probe claim end to end: `reproduce` runs it, reports it, tags MLflow, and the book lists it."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.claims.test_probes import _claim


def test_reproduce_a_probe_claim_written_in_yaml_alone(tmp_path):
    from mlflow.tracking import MlflowClient

    from harness.reproduce import reproduce_all

    path = tmp_path / "toy_probe.yaml"
    path.write_text(yaml.safe_dump(_claim(), allow_unicode=True), encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results, index = reproduce_all(
        [str(path)],
        reports_dir=tmp_path / "reports",
        tracking_uri=uri,
        progress=False,
        echo=lambda *_: None,
    )
    (r,) = results
    assert r.verdicts == {"C1": "supported"}
    assert r.n_runs == 24  # 4 grid points × 6 seeds
    md = r.report_md.read_text(encoding="utf-8")
    assert "C1" in md
    assert "- **Probe** `p` (no training" in md and "finite_difference" in md
    assert "- **Data**" not in md  # a probe claim trains nothing: no empty data/model lines
    run = MlflowClient(uri).get_run(r.parent_run_id)
    assert run.data.tags["verdict.C1"] == "supported"
    assert run.data.tags["status"] == "completed"
    client = MlflowClient(uri)
    (child,) = client.search_runs(
        [r.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{r.parent_run_id}'"
    )
    assert child.data.tags["harness.kind"] == "probe"
    assert child.data.params["probe.grid_points"] == "4"
    assert child.data.metrics["runs/completed"] == 24
    assert set(r.outcome.protocols["p"].measures["run_id"]) == {child.info.run_id}
    book = json.loads((index.parent / "index.json").read_text(encoding="utf-8"))
    assert [c["check"] for c in book["checks"]] == ["C1"]
    assert book["claims"][0]["run_url"].endswith(r.parent_run_id)
    # the driver's CPU seconds, for benchmarks/reproduce_times.py --from-run
    assert 0 < book["claims"][0]["driver_cpu_s"] <= r.wall_time_s * 2 + 1


@pytest.mark.slow
@pytest.mark.parametrize("claim_id", ["numerics", "representation", "optimizers"])
def test_every_probe_claim_reproduces_at_the_quick_budget(tmp_path, claim_id):
    from harness.reproduce import reproduce_claim

    r = reproduce_claim(
        claim_id,
        tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        reports_dir=tmp_path,
        progress=False,
        echo=lambda *_: None,
        jobs=1,
    )
    from harness.claims import load_claim

    assert set(r.verdicts) == {c.id for c in load_claim(claim_id).checks}
    assert all(
        v in ("supported", "refuted", "conditional", "inconclusive") for v in r.verdicts.values()
    )
    assert r.report_html.is_file()
