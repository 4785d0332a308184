"""A sweep trains each trial's replicates stacked by default; the numbers equal --no-stack's."""

from __future__ import annotations

import math

from mlflow import MlflowClient

from tests.study.test_runner import children, sweep, write_study


def _numbers(result):
    out = {}
    for e in result.entries:
        for r in e["replicates"]:
            out[(e["number"], r["replicate"])] = [
                {k: v for k, v in rec.items() if not k.startswith(("time/", "throughput/"))}
                for rec in r["records"]
            ]
    return out


def _close(a, b):
    assert a.keys() == b.keys()
    for key in a:
        for ra, rb in zip(a[key], b[key], strict=True):
            assert ra.keys() == rb.keys()
            for k in ra:
                assert math.isclose(ra[k], rb[k], rel_tol=1e-5, abs_tol=1e-6), (key, k)


def test_stacked_sweep_equals_unstacked_and_says_so_in_mlflow(tmp_path, tracking_uri, unique_name):
    path = write_study(tmp_path, unique_name, replicates=3, **{"search.n_trials": 2})
    stacked = sweep(tmp_path / "s", path, tracking_uri, experiment=unique_name + "-s")
    plain = sweep(tmp_path / "u", path, tracking_uri, experiment=unique_name + "-u", stack=False)
    _close(_numbers(stacked), _numbers(plain))
    client = MlflowClient(tracking_uri)
    trials = [r for r in children(client, stacked) if r.data.tags.get("harness.kind") == "trial"]
    assert trials and all(r.data.tags["train.stacked"] == "3" for r in trials)
    # every replicate is still its own MLflow run with its own curve
    for trial in trials:
        reps = client.search_runs(
            [stacked.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{trial.info.run_id}'",
        )
        assert len(reps) == 3
        assert all(client.get_metric_history(r.info.run_id, "val/loss") for r in reps)
    plain_trials = [
        r for r in children(client, plain) if r.data.tags.get("harness.kind") == "trial"
    ]
    assert all(r.data.tags["train.stacked"] == "no" for r in plain_trials)
    assert all("--no-stack" in r.data.tags["train.stack_note"] for r in plain_trials)


def test_a_study_that_measures_time_trains_unstacked(tmp_path, tracking_uri, unique_name):
    path = write_study(
        tmp_path,
        unique_name,
        replicates=2,
        objective={"metric": "throughput/samples_per_s", "direction": "maximize"},
        **{"search.n_trials": 1, "train.warmup_steps": 1},
    )
    result = sweep(tmp_path, path, tracking_uri, experiment=unique_name)
    client = MlflowClient(tracking_uri)
    (trial,) = [r for r in children(client, result) if r.data.tags.get("harness.kind") == "trial"]
    assert trial.data.tags["train.stacked"] == "no"
    assert "measures time" in trial.data.tags["train.stack_note"]
    assert all(
        math.isfinite(r["summary"]["throughput/samples_per_s"])
        for r in result.entries[0]["replicates"]
    )


def test_trials_that_feed_a_timing_measure_train_unstacked_the_others_stacked(
    tmp_path, tracking_uri, unique_name
):
    """``timed_trials`` (a claim protocol whose runs another reuses for a timing measure, at one
    learning rate): those trials train unstacked and measure time; the rest stack."""
    path = write_study(
        tmp_path,
        unique_name,
        replicates=2,
        **{
            "search.n_trials": 2,
            "search.sampler": {"name": "grid"},
            "search.params": {"train.optimizer.lr": {"type": "categorical", "choices": [0.1, 0.3]}},
            "train.warmup_steps": 1,
        },
    )
    result = sweep(
        tmp_path,
        path,
        tracking_uri,
        experiment=unique_name,
        timed_trials=lambda cfg: cfg["train"]["optimizer"]["lr"] == 0.1,
    )
    client = MlflowClient(tracking_uri)
    trials = {
        float(r.data.params["train.optimizer.lr"]): r
        for r in children(client, result)
        if r.data.tags.get("harness.kind") == "trial"
    }
    assert trials[0.3].data.tags["train.stacked"] == "2"
    assert trials[0.1].data.tags["train.stacked"] == "no"
    assert "timing measure" in trials[0.1].data.tags["train.stack_note"]
    by_lr = {e["params"]["train.optimizer.lr"]: e for e in result.entries}
    assert all(
        math.isfinite(r["summary"]["throughput/samples_per_s"]) for r in by_lr[0.1]["replicates"]
    )
    assert all(
        math.isnan(r["summary"]["throughput/samples_per_s"]) for r in by_lr[0.3]["replicates"]
    )
