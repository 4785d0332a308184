"""`harness reproduce` end to end on a tiny claim: runs, MLflow structure, verdict, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

TINY_CLAIM = {
    "id": "tiny_lr",
    "title": "A learning rate that is far too small does not train in a few epochs",
    "source": {
        "seed_file": "001_a9e0aef2ba68dc0e.txt",
        "section": "ch6",
        "quotes": [
            {
                "text": "这个值过大或过小都不能抵达一个'好的位置'。",
                "gloss": "Too large or too small a value cannot reach a good point.",
                "checks": ["T1"],
            }
        ],
    },
    "study": {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "moons", "n_samples": 200},
        "model": {"name": "mlp", "hidden": [8], "activation": "tanh", "init": "glorot_uniform"},
        "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 16, "epochs": 4},
        "search": {
            "sampler": {"name": "grid"},
            "params": {
                "train.optimizer.lr": {
                    "type": "categorical",
                    "choices": [0.0001, 0.5],
                    "role": "scientific",
                }
            },
        },
        "replicates": 2,
    },
    "protocols": {"shared": {"description": "every lr as given"}},
    "budgets": {"quick": {"description": "seconds"}},
    "measures": {"final_acc": {"name": "final", "metric": "val/accuracy", "on_diverged": 0.5}},
    "checks": [
        {
            "id": "T1",
            "claim": "lr 0.5 beats lr 1e-4 by at least 0.1 in final accuracy",
            "protocols": ["shared"],
            "statistic": {
                "name": "diff",
                "measure": "final_acc",
                "param": "train.optimizer.lr",
                "a": 0.5,
                "b": 0.0001,
            },
            "rule": {"op": ">=", "value": 0.1},
            "why": "a test claim",
        }
    ],
    "figures": [
        {"name": "curves", "metric": "val/accuracy", "hue": "train.optimizer.lr"},
        {
            "name": "measure_vs_param",
            "measure": "final_acc",
            "x": "train.optimizer.lr",
            "logx": True,
        },
    ],
    "caveats": ["a toy"],
}


@pytest.fixture
def claim_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # studies' journals and ledgers go under ./mlruns
    path = tmp_path / "tiny_lr.yaml"
    path.write_text(yaml.safe_dump(TINY_CLAIM, allow_unicode=True))
    return path


def test_reproduce_a_tiny_claim_end_to_end(claim_file, tmp_path, tracking_uri):
    from harness.claims import evaluate_claim, load_claim
    from harness.reproduce import reproduce_claim, run_table
    from harness.study.ledger import Ledger, default_ledger_dir

    result = reproduce_claim(
        str(claim_file),
        jobs=2,
        tracking_uri=tracking_uri,
        reports_dir=tmp_path / "reports",
        progress=False,
        echo=lambda *_: None,
    )
    # report files, with the quote, the verdict and embedded figures
    md = result.report_md.read_text()
    html = result.report_html.read_text()
    verdict = result.verdicts["T1"]
    assert verdict in ("supported", "refuted", "inconclusive", "conditional")
    assert "过小" in md and verdict.upper() in md
    assert "data:image/png;base64" in html
    figures = list((result.report_md.parent / "figures").glob("*.png"))
    assert len(figures) == 2

    # MLflow: claim parent -> protocol study parent -> 2 trial runs -> 2 seed runs each
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["verdict.T1"] == verdict
    assert parent.data.tags["command"] == "harness reproduce tiny_lr --budget quick --jobs 2"
    assert "report/report.html" in {
        a.path for a in client.list_artifacts(result.parent_run_id, "report")
    }
    # what the artifact viewer shows first: the report's text, its figure, the verdict table
    top = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"summary.md", "figure.png", "verdicts.json"} <= top
    exp = client.get_experiment(result.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert exp.tags["mlflow.note.content"].startswith(parent.data.tags["mlflow.note.content"])

    def kids(run_id):
        return client.search_runs(
            [result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
        )

    (study_parent,) = kids(result.parent_run_id)
    assert study_parent.data.tags["claim.protocol"] == "shared"
    trials = kids(study_parent.info.run_id)
    assert len(trials) == 2
    assert all(len(kids(t.info.run_id)) == 2 for t in trials)

    # the verdict is computed from the runs: recompute it from the ledger
    claim = load_claim(str(claim_file))
    entries = list(Ledger(default_ledger_dir("claim-tiny_lr-shared-quick")).entries())
    table = run_table(entries, "shared")
    assert len(table) == 4
    again = evaluate_claim(claim, {"shared": table})
    assert str(again.checks[0].verdict.value) == verdict
    # ... and the effect is the difference of the seed medians of the final val accuracy
    runs = table.runs
    final = {
        lr: float(np.median(runs[runs["train.optimizer.lr"] == lr]["final/val/accuracy"]))
        for lr in (0.5, 0.0001)
    }
    outcome = json.loads((result.report_md.parent / "outcome.json").read_text())
    estimate = outcome["checks"][0]["protocols"]["shared"]["conditions"][0]["estimate"]
    assert estimate == pytest.approx(final[0.5] - final[0.0001])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {"blas_threads": None, "no_stack": False, "no_cache": False}),
        (
            {"blas_threads": 1, "stack": False, "cache": False},
            {"blas_threads": 1, "no_stack": True, "no_cache": True},
        ),
    ],
)
def test_the_recorded_command_parses_back_to_the_same_choices(options, expected):
    from harness.cli import build_parser
    from harness.reproduce import reproduce_command

    line = reproduce_command("batch_size", budget="full", jobs=3, **options)
    args = build_parser().parse_args(line.split()[1:])
    assert (args.claims, args.budget, args.jobs) == (["batch_size"], "full", 3)
    assert {k: getattr(args, k) for k in expected} == expected
