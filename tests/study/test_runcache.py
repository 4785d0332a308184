"""The run cache: identical runs reused (tagged with their source), --no-cache, code versions."""

from __future__ import annotations

import math

from mlflow import MlflowClient

from harness.runcache import TAG_SOURCE, RunCache, code_version, run_key
from harness.runconfig import resolve_run_config
from tests.study.test_runner import children, sweep, write_study


def _replicate_runs(client, result):
    out = {}
    for trial in children(client, result):
        if trial.data.tags.get("harness.kind") != "trial":
            continue
        reps = client.search_runs(
            [result.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{trial.info.run_id}'",
        )
        for r in reps:
            out[(trial.data.params["train.optimizer.lr"], r.data.params["seed"])] = r
    return out


def _records(result):
    return {
        (e["number"], r["replicate"]): [
            {k: v for k, v in rec.items() if not k.startswith(("time/", "throughput/"))}
            for rec in r["records"]
        ]
        for e in result.entries
        for r in e["replicates"]
    }


def test_a_second_sweep_reuses_every_run_and_names_its_source(tmp_path, tracking_uri, unique_name):
    path = write_study(tmp_path, unique_name, replicates=2, **{"search.n_trials": 2})
    cache_dir = tmp_path / "cache"
    first = sweep(
        tmp_path / "a", path, tracking_uri, experiment=unique_name + "-a", cache_dir=cache_dir
    )
    assert len(list(cache_dir.rglob("*.json"))) == 4
    second = sweep(
        tmp_path / "b", path, tracking_uri, experiment=unique_name + "-b", cache_dir=cache_dir
    )
    assert _records(first) == _records(second)
    client = MlflowClient(tracking_uri)
    a, b = _replicate_runs(client, first), _replicate_runs(client, second)
    assert a.keys() == b.keys() and len(b) == 4
    for key, run in b.items():
        assert run.data.tags[TAG_SOURCE] == a[key].info.run_id
        assert TAG_SOURCE not in a[key].data.tags
        assert client.get_metric_history(run.info.run_id, "val/loss")  # its own curves
    trials = [r for r in children(client, second) if r.data.tags.get("harness.kind") == "trial"]
    assert all(t.data.tags["cache.reused"] == "2/2" for t in trials)
    # --no-cache trains again
    third = sweep(
        tmp_path / "c",
        path,
        tracking_uri,
        experiment=unique_name + "-c",
        cache_dir=cache_dir,
        cache=False,
    )
    c = _replicate_runs(client, third)
    assert all(TAG_SOURCE not in run.data.tags for run in c.values())
    for k, recs in _records(third).items():
        for ra, rb in zip(recs, _records(first)[k], strict=True):
            for m in ra:
                assert math.isclose(ra[m], rb[m], rel_tol=1e-5, abs_tol=1e-6)


def test_a_single_replicate_trial_reuses_into_its_own_run(tmp_path, tracking_uri, unique_name):
    path = write_study(tmp_path, unique_name, **{"search.n_trials": 1})
    cache_dir = tmp_path / "cache"
    first = sweep(
        tmp_path / "a", path, tracking_uri, experiment=unique_name + "-a", cache_dir=cache_dir
    )
    second = sweep(
        tmp_path / "b", path, tracking_uri, experiment=unique_name + "-b", cache_dir=cache_dir
    )
    client = MlflowClient(tracking_uri)
    (t1,) = [r for r in children(client, first) if r.data.tags.get("harness.kind") == "trial"]
    (t2,) = [r for r in children(client, second) if r.data.tags.get("harness.kind") == "trial"]
    assert t2.data.tags[TAG_SOURCE] == t1.info.run_id
    assert second.entries[0]["state"] == "complete"
    assert _records(first) == _records(second)


def test_the_key_changes_with_config_seed_data_dir_and_code_version(tmp_path):
    cfg = resolve_run_config(
        {
            "seed": 0,
            "data": {"name": "moons"},
            "model": {"name": "mlp", "hidden": [4]},
            "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 1},
        }
    )
    base = run_key(cfg)
    assert base == run_key(dict(cfg))
    assert run_key({**cfg, "seed": 1}) != base
    assert run_key({**cfg, "train": {**cfg["train"], "batch_size": 7}}) != base
    assert run_key(cfg, data_dir=tmp_path) != base
    assert run_key(cfg, version="another code version") != base
    assert run_key(cfg) == run_key(cfg, version=code_version())


def test_entries_are_checked_before_reuse(tmp_path):
    cache = RunCache(tmp_path)
    kwargs = {
        "reason": "ok",
        "records": [{"epoch": 0.0, "val/loss": float("nan")}],
        "summary": {"x": float("inf")},
    }
    assert cache.put(
        "ab" * 32, status="completed", source_run_id="r1", timed=False, tracking_uri="u1", **kwargs
    )
    hit = cache.get("ab" * 32, tracking_uri="u1")
    assert hit is not None and hit.source_run_id == "r1" and math.isnan(hit.records[0]["val/loss"])
    assert math.isinf(hit.summary["x"])
    assert cache.get("ab" * 32, tracking_uri="another store") is None
    assert cache.get("ab" * 32, tracking_uri="u1", need_timing=True) is None  # trained stacked
    assert cache.get("ab" * 32, tracking_uri="u1", need_weights=True) is None
    assert not cache.put("cd" * 32, status="pruned", source_run_id="r2", timed=True, **kwargs)
    assert cache.get("cd" * 32) is None
    (tmp_path / "ef").mkdir()
    (tmp_path / "ef" / ("ef" * 32 + ".json")).write_text("{truncated")
    assert cache.get("ef" * 32) is None  # unreadable: trained again, never an error
    assert not list(tmp_path.rglob("*.tmp"))
