"""The MLflow curve policy (harness.tracking): fewer rows, each still meaningful in the UI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.tracking import DEFAULT_CURVE_POINTS, Tracker, resolve_curve_points


def _records(n: int, *, lr=lambda e: 0.1, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    noise = rng.normal(scale=0.05, size=n)
    return [
        {
            "epoch": float(e),
            "val/accuracy": float(1 - math.exp(-e / 10) + noise[e]),
            "val/loss": float(math.exp(-e / 10) - noise[e]),
            "lr": float(lr(e)),
            "steps": float(7 * (e + 1)),
            "grad_norm/dense_0.W": float(1 + e),
        }
        for e in range(n)
    ]


def _steps(rows, key):
    return [s for k, _, s in rows if k == key]


@pytest.mark.parametrize(("n", "points"), [(300, 50), (101, 100), (37, 5), (12, 3)])
def test_thinned_curves_keep_first_last_and_best_and_at_most_n(n, points):
    records = _records(n, seed=n)
    values = [r["val/accuracy"] for r in records]
    best = int(np.argmax(values))
    rows = Tracker.history_rows(
        records, telemetry="ends", points=points, best=[("val/accuracy", "max")]
    )
    for key in ("val/accuracy", "val/loss"):
        steps = _steps(rows, key)
        assert len(steps) == len(set(steps)) <= points
        assert len(steps) >= points - 1  # a best epoch on an even one costs one point at most
        assert {0, n - 1, best} <= set(steps)
        gaps = np.diff(steps)
        assert gaps.max() <= 2 * math.ceil((n - 1) / (points - 2))  # evenly spread, no holes
    # the values are the recorded ones at those epochs, not resampled
    by_epoch = {int(r["epoch"]): r["val/loss"] for r in records}
    assert all(v == by_epoch[s] for k, v, s in rows if k == "val/loss")


def test_short_runs_keep_every_epoch_of_their_curves():
    records = _records(20)
    rows = Tracker.history_rows(records, telemetry="ends", points=DEFAULT_CURVE_POINTS)
    assert _steps(rows, "val/loss") == list(range(20))


def test_constant_series_go_at_the_ends_derived_ones_final_and_schedules_stay_curves():
    records = _records(60)
    rows = Tracker.history_rows(records, telemetry="ends", points=10)
    assert _steps(rows, "lr") == [0, 59]  # a flat line over the run, not 60 rows of 0.1
    assert [(v, s) for k, v, s in rows if k == "steps"] == [(7.0 * 60, 59)]
    assert _steps(rows, "grad_norm/dense_0.W") == [0, 59]
    scheduled = _records(60, lr=lambda e: 0.1 * 0.9**e)
    lr_steps = _steps(Tracker.history_rows(scheduled, telemetry="ends", points=10), "lr")
    assert len(lr_steps) == 10 and lr_steps[0] == 0 and lr_steps[-1] == 59


def test_a_sparse_series_is_thinned_over_the_epochs_it_has():
    records = _records(50)
    for r in records:
        if int(r["epoch"]) % 5:
            r.pop("val/loss")
    steps = _steps(Tracker.history_rows(records, points=4), "val/loss")
    assert steps[0] == 0 and steps[-1] == 45 and len(steps) == 4


def test_curve_points_all_logs_every_value_of_every_epoch(monkeypatch, tmp_path):
    records = _records(150)
    every = Tracker.history_rows(records)
    assert len(every) == 150 * 5
    monkeypatch.setenv("HARNESS_CURVE_POINTS", "all")
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert tracker.curve_points is None
    assert tracker.curve_rows(records) == every
    assert tracker.curve_tags(records) == {"curves": "every epoch"}
    thin = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", curve_points=40)
    assert len(thin.curve_rows(records)) < len(every) / 2
    assert "at most 40 epochs per series of 150" in thin.curve_tags(records)["curves"]


def test_resolve_curve_points(monkeypatch):
    monkeypatch.delenv("HARNESS_CURVE_POINTS", raising=False)
    assert resolve_curve_points() == DEFAULT_CURVE_POINTS
    assert resolve_curve_points(7) == resolve_curve_points("7") == 7
    assert resolve_curve_points(None) is resolve_curve_points("all") is None
    monkeypatch.setenv("HARNESS_CURVE_POINTS", "12")
    assert resolve_curve_points("auto") == 12
    monkeypatch.setenv("HARNESS_CURVE_POINTS", "lots")
    with pytest.raises(ValueError, match=r"^\$HARNESS_CURVE_POINTS = 'lots' is not allowed"):
        resolve_curve_points()
    for bad in (2, "2.5", True, "-1"):
        with pytest.raises(ValueError, match=r"curve_points = .* integer >= 3"):
            resolve_curve_points(bad)


def test_newest_first_log_batch_stores_the_same_history_and_latest_values(
    tracking_uri, unique_name
):
    """Tracker.log_batch sends values newest first (MLflow then updates each key's latest
    value once); across the 1000-metric chunks the store holds what ascending calls store."""
    from mlflow.entities import Metric

    tracker = Tracker(tracking_uri)
    exp = tracker.experiment(unique_name)
    newest_first, ascending = tracker.start_run(exp), tracker.start_run(exp)
    rng = np.random.default_rng(np.random.SeedSequence(13))
    rows = [(f"val/m{k}", float(rng.normal()), step) for step in range(500) for k in range(3)]
    rows += [("val/m0", 5.0, 499), ("val/m0", -5.0, 499)]  # ties at the last step: larger wins
    rows += [("val/m2", 7.0, 250)]  # a second value mid-curve is history, not the latest
    assert tracker.log_batch(newest_first, metrics=rows, timestamp=1000) == len(rows)
    clean = [Metric(k, v, 1000, s) for k, v, s in rows]
    for i in range(0, len(clean), 1000):
        tracker.client.log_batch(ascending, metrics=clean[i : i + 1000])

    def stored(run_id):
        run = tracker.client.get_run(run_id)
        history = {
            key: sorted(
                (m.step, m.timestamp, m.value)
                for m in tracker.client.get_metric_history(run_id, key)
            )
            for key in run.data.metrics
        }
        return run.data.metrics, history

    latest, history = stored(newest_first)
    assert (latest, history) == stored(ascending)
    assert latest["val/m0"] == 5.0 and len(history["val/m0"]) == 502
    assert latest["val/m2"] == rows[3 * 499 + 2][1]


def test_a_sweep_logs_thinned_curves_with_the_best_epoch_and_says_so(
    tmp_path, tracking_uri, unique_name, monkeypatch
):
    from mlflow import MlflowClient

    from tests.study.test_runner import children, sweep, write_study

    monkeypatch.setenv("HARNESS_CURVE_POINTS", "4")
    path = write_study(
        tmp_path, unique_name, replicates=2, **{"search.n_trials": 1, "train.epochs": 9}
    )
    result = sweep(tmp_path / "s", path, tracking_uri, experiment=unique_name)
    client = MlflowClient(tracking_uri)
    (trial,) = [r for r in children(client, result) if r.data.tags.get("harness.kind") == "trial"]
    reps = client.search_runs(
        [result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{trial.info.run_id}'"
    )
    (entry,) = result.entries
    by_seed = {str(r["replicate"]): r["records"] for r in entry["replicates"]}
    assert len(reps) == 2 and set(by_seed) == {"0", "1"}
    for run in reps:
        records = by_seed[run.data.tags["replicate"]]
        accuracy = [r["val/accuracy"] for r in records]
        best = int(records[int(np.argmax(accuracy))]["epoch"])
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/accuracy")]
        assert len(steps) <= 4 and {0, 9, best} <= set(steps)
        assert [m.step for m in client.get_metric_history(run.info.run_id, "lr")] == [0, 9]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "steps")] == [9]
        assert "at most 4 epochs per series of 10" in run.data.tags["curves"]
    steps = [m.step for m in client.get_metric_history(trial.info.run_id, "val/loss")]
    assert len(steps) <= 4 and {0, 9} <= set(steps)
    assert "at most 4" in trial.data.tags["curves"]
    # the run's history.csv keeps every epoch
    local = client.download_artifacts(trial.info.run_id, "history.csv")
    with open(local) as fh:
        assert len(fh.read().strip().splitlines()) == 1 + 10
