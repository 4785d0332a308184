"""The sweep driver: parallel workers, parent/child runs, reproducibility, pruning, failures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from harness.study.runner import replicate_seed, run_sweep
from harness.study.spec import load_study


def write_study(tmp_path: Path, name: str, **overrides) -> Path:
    """A tiny study on 'moons': a trial trains in a few tens of milliseconds."""
    raw = {
        "name": name,
        "seed": 0,
        "data": {"name": "moons", "n_samples": 200},
        "model": {"name": "mlp", "hidden": [8], "activation": "tanh", "init": "glorot_uniform"},
        "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 32, "epochs": 2},
        "objective": {"metric": "val/accuracy", "direction": "maximize"},
        "search": {
            "sampler": {"name": "random"},
            "n_trials": 4,
            "params": {
                "train.optimizer.lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True},
                "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
            },
        },
        "replicates": 1,
    }
    for key, value in overrides.items():
        if key.startswith("search.params."):
            raw["search"]["params"][key[len("search.params.") :]] = value
            continue
        node = raw
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def sweep(tmp_path, path, tracking_uri, **kwargs):
    spec = load_study(path)
    kwargs.setdefault("storage", f"journal://{tmp_path / (spec.name + '.journal')}")
    kwargs.setdefault("ledger_dir", tmp_path / "ledger" / spec.name)
    kwargs.setdefault("progress", False)
    kwargs.setdefault("plots", False)
    kwargs.setdefault("log_models", "none")
    return run_sweep(spec, tracking_uri=tracking_uri, **kwargs)


def _measured(records):
    """Everything but wall-clock timings, which differ between any two runs."""
    return [
        {k: v for k, v in rec.items() if not k.startswith(("time/", "throughput/"))}
        for rec in records
    ]


def results_by_design(result):
    return {
        e["design_index"]: (e["params"], [_measured(r["records"]) for r in e["replicates"]])
        for e in result.entries
    }


def children(client, result):
    return client.search_runs(
        [result.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
        max_results=1000,
    )


def test_jobs_1_and_2_give_the_same_trials_and_the_same_numbers(
    tmp_path, tracking_uri, unique_name
):
    path = write_study(tmp_path, unique_name, replicates=2, **{"search.n_trials": 6})
    one = sweep(tmp_path / "a", path, tracking_uri, jobs=1, experiment=unique_name + "-1")
    two = sweep(tmp_path / "b", path, tracking_uri, jobs=2, experiment=unique_name + "-2")
    assert one.n_complete == two.n_complete == 6
    a, b = results_by_design(one), results_by_design(two)
    assert sorted(a) == list(range(6))
    assert a == b  # params and every per-epoch number of every seed


# 8 workers on 2 cores take the same concurrent path as 2 (results recorded out of order by one
# driver), five times slower: the fast suite runs 1 and 2, `-m slow` runs 8 too
@pytest.mark.parametrize("jobs", [1, 2, pytest.param(8, marks=pytest.mark.slow)])
def test_forty_trials_none_lost_duplicated_or_misparented(
    tmp_path, tracking_uri, unique_name, jobs
):
    path = write_study(
        tmp_path, unique_name, **{"search.n_trials": 40, "train.epochs": 1, "data.n_samples": 100}
    )
    result = sweep(tmp_path, path, tracking_uri, jobs=jobs)
    assert result.n_complete + result.n_failed == 40
    numbers = sorted(e["number"] for e in result.entries)
    assert numbers == list(range(40))
    assert sorted(e["design_index"] for e in result.entries) == list(range(40))
    client = MlflowClient(tracking_uri)
    runs = children(client, result)
    assert len(runs) == 40
    run_ids = {r.info.run_id for r in runs}
    assert run_ids == {e["run_id"] for e in result.entries}
    assert {r.info.status for r in runs} <= {"FINISHED", "FAILED"}
    assert sorted(int(r.data.params["trial.number"]) for r in runs) == list(range(40))
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials/complete"] == result.n_complete


def test_trial_runs_carry_roles_params_and_reproduction_command(
    tmp_path, tracking_uri, unique_name
):
    path = write_study(tmp_path, unique_name, replicates=2)
    raw = yaml.safe_load(path.read_text())
    raw["search"]["params"]["train.batch_size"]["role"] = "scientific"
    path.write_text(yaml.safe_dump(raw))
    result = sweep(tmp_path, path, tracking_uri, jobs=1)
    client = MlflowClient(tracking_uri)
    trial_runs = children(client, result)
    assert len(trial_runs) == 4
    run = trial_runs[0]
    assert run.data.params["role.train.batch_size"] == "scientific"
    assert run.data.params["role.train.optimizer.lr"] == "nuisance"
    assert "trial.number" in run.data.params
    assert run.data.tags["command"].startswith("harness train")
    assert f"seed={replicate_seed(0, 0)}" in run.data.tags["command"]
    # replicates are grandchildren with their own seeds and curves
    seeds = client.search_runs(
        [result.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert sorted(int(r.data.params["seed"]) for r in seeds) == sorted(
        replicate_seed(0, r) for r in range(2)
    )
    names = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"study.yaml", "trials.csv", "best.json", "summary.txt"} <= names


def test_pruned_trials_are_killed_runs_with_the_epoch(tmp_path, tracking_uri, unique_name):
    path = write_study(
        tmp_path,
        unique_name,
        **{
            "search.n_trials": 12,
            "train.epochs": 6,
            "search.pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
            "search.params.train.optimizer.lr": {
                "type": "float",
                "low": 1.0e-4,
                "high": 1.0,
                "log": True,
            },
        },
    )
    result = sweep(tmp_path, path, tracking_uri, jobs=2)
    assert result.n_pruned >= 1
    client = MlflowClient(tracking_uri)
    pruned = [r for r in children(client, result) if r.data.tags.get("optuna.state") == "PRUNED"]
    assert len(pruned) == result.n_pruned
    for run in pruned:
        assert run.info.status == "KILLED"
        assert int(run.data.tags["pruned_at_epoch"]) >= 1
        assert "pruned at epoch" in run.data.tags["reason"]


def test_diverging_trials_fail_with_their_reason_and_the_sweep_goes_on(
    tmp_path, tracking_uri, unique_name
):
    path = write_study(
        tmp_path,
        unique_name,
        **{
            "search.sampler": {"name": "grid"},
            "search.params": {
                "train.optimizer.lr": {"type": "categorical", "choices": [0.1, 1.0e6]},
            },
            "search.n_trials": 2,
        },
    )
    result = sweep(tmp_path, path, tracking_uri, jobs=1)
    assert (result.n_complete, result.n_failed) == (1, 1)
    failed = next(e for e in result.entries if e["state"] == "failed")
    assert "diverged" in failed["reason"]
    client = MlflowClient(tracking_uri)
    run = client.get_run(failed["run_id"])
    assert run.info.status == "FAILED" and "diverged" in run.data.tags["reason"]


def test_multi_objective_study_logs_the_pareto_front(tmp_path, tracking_uri, unique_name):
    path = write_study(
        tmp_path,
        unique_name,
        objective=[
            {"metric": "val/loss", "direction": "minimize"},
            {"metric": "time/train_s", "direction": "minimize", "reduce": "final"},
        ],
    )
    result = sweep(tmp_path, path, tracking_uri, jobs=1)
    assert result.n_complete == 4 and len(result.best_values) == 2
    assert all(math.isfinite(v) for v in result.best_values)


def test_changed_study_refuses_to_resume(tmp_path, tracking_uri, unique_name):
    path = write_study(tmp_path, unique_name)
    sweep(tmp_path, path, tracking_uri, jobs=1)
    raw = yaml.safe_load(path.read_text())
    raw["train"]["epochs"] = 3
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="different"):
        sweep(tmp_path, path, tracking_uri, jobs=1)


def test_rerunning_a_finished_sweep_runs_nothing_new(tmp_path, tracking_uri, unique_name):
    path = write_study(tmp_path, unique_name)
    first = sweep(tmp_path, path, tracking_uri, jobs=1)
    again = sweep(tmp_path, path, tracking_uri, jobs=1)
    assert again.parent_run_id == first.parent_run_id
    assert [e["number"] for e in again.entries] == [e["number"] for e in first.entries]
    assert again.n_complete == 4
