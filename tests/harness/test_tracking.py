"""The tracking contract of one run, read back through MlflowClient."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from harness.cli import main


@pytest.fixture
def study_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "seed": 3,
                "data": {"name": "digits"},
                "model": {"name": "mlp", "hidden": [32], "activation": "relu"},
                "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 64, "epochs": 3},
            }
        )
    )
    return path


def _only_run(client, experiment_name):
    exp = client.get_experiment_by_name(experiment_name)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return runs[0]


def test_train_command_logs_the_documented_contract(
    study_file, tracking_uri, unique_name, capsys, monkeypatch
):
    import mlflow.pyfunc
    import pandas as pd
    from mlflow import MlflowClient

    from harness.data import load_dataset

    code = main(
        [
            "train",
            str(study_file),
            "--set",
            "train.epochs=4",
            "--experiment",
            unique_name,
            "--tracking-uri",
            tracking_uri,
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    client = MlflowClient(tracking_uri)
    run = _only_run(client, unique_name)
    assert run.info.run_id in out and "harness ui" in out
    assert run.info.status == "FINISHED"

    params = run.data.params
    assert params["train.optimizer.lr"] == "0.1"
    assert params["train.epochs"] == "4"
    assert params["model.hidden"] == "[32]"
    assert params["seed"] == "3"
    assert params["data.name"] == "digits"

    history = client.get_metric_history(run.info.run_id, "val/accuracy")
    assert sorted(m.step for m in history) == [0, 1, 2, 3, 4]
    assert {"train/loss", "val/loss", "train/accuracy", "lr"} <= set(run.data.metrics)

    tags = run.data.tags
    assert tags["status"] == "completed" and tags["reason"]
    assert tags["seed"] == "3"
    assert len(tags["git.commit"]) >= 7 and tags["git.dirty"] in ("true", "false", "unknown")
    assert tags["versions.numpy"] == np.__version__
    assert "blas.library" in tags and int(tags["blas.threads"]) >= 1
    assert tags["command"].startswith("harness train") and "train.epochs=4" in tags["command"]

    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "history.csv", "learning_curves.png", "model"} <= names
    local = client.download_artifacts(run.info.run_id, "config.yaml")
    with open(local) as fh:
        config = yaml.safe_load(fh)
    assert config["train"]["epochs"] == 4

    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.name == "digits"

    # the pyfunc model predicts exactly what the zoo network predicts ("runs:/" URIs resolve
    # against the tracking URI of the environment, as for any MLflow user)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    splits = load_dataset({"name": "digits"})
    X = splits.val.X[:20]
    pyfunc_pred = np.asarray(model.predict(pd.DataFrame(X)))
    from harness.experiment import run_config

    net = run_config(config).network
    np.testing.assert_allclose(pyfunc_pred, net.predict(X), rtol=1e-6, atol=1e-7)


def test_bad_input_exits_2_with_the_field_and_creates_no_run(
    study_file, tracking_uri, unique_name, capsys
):
    from mlflow import MlflowClient

    code = main(
        [
            "train",
            str(study_file),
            "--set",
            "model.activation=relux",
            "--experiment",
            unique_name,
            "--tracking-uri",
            tracking_uri,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "relux" in err and "relu" in err
    assert MlflowClient(tracking_uri).get_experiment_by_name(unique_name) is None


def test_diverging_run_is_failed_with_its_reason(study_file, tracking_uri, unique_name):
    from mlflow import MlflowClient

    code = main(
        [
            "train",
            str(study_file),
            "--set",
            "train.optimizer.lr=100000",
            "--experiment",
            unique_name,
            "--tracking-uri",
            tracking_uri,
            "--no-progress",
        ]
    )
    assert code == 1
    run = _only_run(MlflowClient(tracking_uri), unique_name)
    assert run.info.status == "FAILED"
    assert run.data.tags["status"] == "diverged"
    assert "loss" in run.data.tags["reason"]


def test_every_command_has_help(capsys):
    for command in ([], ["train"], ["sweep"], ["reproduce"], ["ui"], ["list"], ["demo"]):
        with pytest.raises(SystemExit) as exc:
            main([*command, "--help"])
        assert exc.value.code == 0
        assert "usage: harness" in capsys.readouterr().out


def test_ui_command_binds_localhost_on_the_same_store(tracking_uri, capsys):
    assert main(["ui", "--dry-run", "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert "--host 127.0.0.1" in out and tracking_uri in out


def test_history_rows_can_keep_telemetry_at_the_ends_only():
    from harness.tracking import Tracker

    records = [
        {"epoch": float(e), "val/loss": 1.0 / (e + 1), "grad_norm/dense_0.W": 0.5} for e in range(4)
    ]
    every = Tracker.history_rows(records)
    ends = Tracker.history_rows(records, telemetry="ends")
    assert len(every) == 8
    assert [(k, s) for k, _, s in ends if k.startswith("grad_norm/")] == [
        ("grad_norm/dense_0.W", 0),
        ("grad_norm/dense_0.W", 3),
    ]
    assert sum(k == "val/loss" for k, _, _ in ends) == 4


def test_ui_serves_the_same_store_on_localhost(tracking_uri, unique_name):
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from harness.tracking import Tracker

    Tracker(tracking_uri).experiment(unique_name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "ui",
        "--port",
        str(port),
        "--tracking-uri",
        tracking_uri,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "the UI process exited"
            assert time.monotonic() < deadline, "the UI did not come up in 90 s"
            time.sleep(0.5)
        req = urllib.request.Request(
            f"{base}/api/2.0/mlflow/experiments/search",
            data=json.dumps({"max_results": 1000}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            names = {e["name"] for e in json.load(r)["experiments"]}
        assert unique_name in names
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_tracker_log_batch_stores_what_the_client_stores(tracking_uri, unique_name):
    """Tracker.log_batch (MLflow's public log_batch in as few calls as its limits allow) stores
    what MlflowClient.log_batch stores: histories, latest values, metric search; logging again
    with the same timestamp (a repair) adds nothing, and later steps move the latest values on."""
    from mlflow.entities import Metric

    from harness.tracking import Tracker

    tracker = Tracker(tracking_uri)
    exp = tracker.experiment(unique_name)
    fast, slow = tracker.start_run(exp), tracker.start_run(exp)
    rng = np.random.default_rng(0)
    rows = [(f"val/m{k}", float(rng.normal()), step) for step in range(60) for k in range(4)]
    rows.append(("val/m0", 9.0, 59))  # two values at one step: the larger is the latest
    rows.append(("val/m1", float("nan"), 3))  # skipped, as on the client path
    client = tracker.client
    params = {"train.lr": 0.1, "model.hidden": [32, 16], "note": None}
    assert tracker.log_batch(fast, metrics=rows, params=params, timestamp=1000) == len(rows) - 1
    tracker.log_params(slow, params)
    clean = [Metric(k, v, 1000, s) for k, v, s in rows if np.isfinite(v)]
    client.log_batch(slow, metrics=clean[:1000])

    def stored(run_id):
        run = client.get_run(run_id)
        assert run.data.params == {"train.lr": "0.1", "model.hidden": "[32, 16]", "note": "null"}
        history = {
            key: sorted(
                (m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)
            )
            for key in run.data.metrics
        }
        return run.data.metrics, history

    assert stored(fast) == stored(slow)
    assert stored(fast)[0]["val/m0"] == 9.0
    found = client.search_runs([exp], filter_string="metrics.`val/m0` = 9.0")
    assert {r.info.run_id for r in found} == {fast, slow}
    # a repair logs the same rows again: nothing new (the client path deduplicates)
    tracker.log_batch(fast, metrics=rows, params=params, timestamp=1000)
    assert stored(fast) == stored(slow)
    with pytest.raises(Exception, match="Changing param values is not allowed"):
        tracker.log_batch(fast, metrics=rows[:30], params={"train.lr": 0.2}, timestamp=3000)
    more = [(f"val/m{k}", float(k), 60) for k in range(4)] * 6
    tracker.log_batch(fast, metrics=more, timestamp=2000)
    metrics, history = stored(fast)
    assert metrics == {f"val/m{k}": float(k) for k in range(4)}
    assert len(history["val/m2"]) == 61
