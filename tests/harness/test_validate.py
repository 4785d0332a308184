"""The pre-flight's parts: metric names against a real run, the library path, stores, data."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.config import ConfigError
from harness.experiment import build_run, run_config
from harness.validate import blas_oversubscription, check_run

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("data", "loss"),
    [
        ({"name": "digits", "subset": 200, "test_fraction": 0.1}, "cross_entropy"),
        ({"name": "sin", "n_samples": 64}, "mse"),
        ({"name": "digits", "subset": 200}, {"name": "mse", "output": "softmax"}),
    ],
    ids=["classification-with-test", "regression", "mse-on-classes"],
)
def test_predicted_metric_names_are_exactly_what_a_run_records(data, loss):
    """The objective check is only as good as its list: it must hold every name a run records
    (no false refusal) and nothing else (no typo accepted)."""
    config = {
        "data": data,
        "model": {"name": "mlp", "depth": 1, "width": 8},
        "train": {"loss": loss, "epochs": 2, "batch_size": 64},
    }
    checked = check_run(config)
    history = run_config(config).history
    recorded = {k for r in history.records for k in r if k != "epoch"} | set(history.summary())
    assert recorded == set(checked.metrics)


def test_the_runner_validates_before_it_writes_anything(tmp_path, tracking_uri, unique_name):
    """Library users get the pre-flight too: a typo in the objective is an error before any
    study, journal, ledger or MLflow experiment exists."""
    from mlflow import MlflowClient

    from harness.study.runner import run_sweep
    from harness.study.spec import parse_study

    raw = yaml.safe_load((REPO / "studies" / "smoke.yaml").read_text())
    raw["name"] = unique_name
    raw["objective"] = {"metric": "val/acuracy", "direction": "maximize"}
    spec = parse_study(raw)
    storage = tmp_path / "s.journal"
    with pytest.raises(ConfigError, match=r"objective\.0\.metric = 'val/acuracy'"):
        run_sweep(
            spec,
            storage=str(storage),
            tracking_uri=tracking_uri,
            ledger_dir=tmp_path / "ledger",
            progress=False,
        )
    assert not storage.exists() and not (tmp_path / "ledger").exists()
    assert MlflowClient(tracking_uri).get_experiment_by_name(unique_name) is None


def test_non_finite_data_names_the_dataset_the_array_and_the_count():
    from harness.data import load_dataset
    from harness.data.loader import NonFiniteDataError

    with pytest.raises(NonFiniteDataError, match=r"'noisy_xor': X holds \d+ infinite of its"):
        load_dataset({"name": "noisy_xor", "noise": 1.0e308})
    # finite float64 values that overflow float32 are caught on the split actually used
    with pytest.raises(NonFiniteDataError, match=r"train X \(as float32\) holds"):
        load_dataset({"name": "noisy_xor", "noise": 1.0e300})
    data = load_dataset({"name": "noisy_xor", "noise": 1.0e300}, dtype=np.float64)
    assert np.isfinite(data.train.X).all()


def test_throughput_is_printed_only_when_measured():
    short = {
        "data": {"name": "digits", "subset": 64},
        "model": {"name": "mlp", "depth": 1, "width": 8},
        "train": {"epochs": 1, "batch_size": 32},
    }
    history = build_run(short).trainer.run()
    assert math.isnan(history.throughput)
    assert "shorter than the 20 warm-up steps" in history.throughput_note
    short["train"]["warmup_steps"] = 0
    history = build_run(short).trainer.run()
    assert history.throughput > 0 and history.throughput_note == ""


def test_train_prints_why_throughput_is_missing(tracking_uri, unique_name, tmp_path, capsys):
    from harness.cli import main

    run = tmp_path / "run.yaml"
    run.write_text(
        yaml.safe_dump(
            {
                "data": {"name": "digits", "subset": 64},
                "model": {"name": "mlp", "depth": 1, "width": 8},
                "train": {"epochs": 2, "batch_size": 32},
            }
        )
    )
    code = main(
        [
            "train",
            str(run),
            "--experiment",
            unique_name,
            "--tracking-uri",
            tracking_uri,
            "--no-progress",
            "--no-model",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "nan" not in out
    assert "not measured: the run (4 training steps) was shorter than the 20 warm-up" in out


def test_oversubscription_warns_only_past_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert blas_oversubscription(1, None) is None
    assert blas_oversubscription(2, None) is None
    assert "4 threads on 2 core(s)" in (blas_oversubscription(2, 2) or "")
    assert "3 worker(s)" in (blas_oversubscription(3, None) or "")


def test_port_probe_sees_a_listener_and_nothing_else():
    from harness.stores import check_port_free

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.listen(1)
        with pytest.raises(ConfigError, match="another process listens there"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # closed again: free


def test_store_probes_create_nothing(tmp_path):
    from harness.stores import check_optuna_storage, check_tracking_uri

    db = tmp_path / "deep" / "er" / "mlflow.db"
    assert check_tracking_uri(f"sqlite:///{db}") == f"sqlite:///{db}"
    check_optuna_storage(str(tmp_path / "j" / "study.journal"))
    assert list(tmp_path.iterdir()) == []


def test_every_shipped_study_and_claim_passes_the_preflight():
    """The stricter checks reject no study or claim the project ships (the stores aside)."""
    from harness.claims import list_claims, load_claim
    from harness.reproduce import _study_spec
    from harness.study.spec import load_study, study_paths
    from harness.validate import check_sweep

    for path in study_paths(REPO / "studies"):
        check_sweep(load_study(path), stores=False)
    from harness.claims.probes import check_probe_claim, is_probe_protocol

    for claim_id in list_claims():
        claim = load_claim(claim_id, budget="quick")
        check_probe_claim(claim)
        for protocol in claim.protocols_to_run():
            if is_probe_protocol(claim, protocol):  # evaluates a probe: no study to run
                continue
            check_sweep(_study_spec(claim, protocol, "quick"), stores=False)


@pytest.mark.parametrize(
    ("telemetry", "epoch", "bad"),
    [("init", 0, False), ("init", "last", True), (True, "last", False), (False, 0, True)],
)
def test_a_claim_reading_telemetry_needs_the_protocol_to_record_it(telemetry, epoch, bad):
    """Telemetry read at a later epoch of a `telemetry: init` run, or at all where it is off,
    is one line naming train.telemetry before anything trains (not a failure at evaluation)."""
    from harness.claims.spec import CLAIMS_DIR, parse_claim
    from harness.validate import check_claim_telemetry

    raw = yaml.safe_load((CLAIMS_DIR / "mse_vs_ce.yaml").read_text(encoding="utf-8"))
    raw["study"]["train"]["telemetry"] = telemetry
    raw["measures"]["output_grad_init"]["epoch"] = epoch
    for fig in raw.get("figures", []):
        if fig.get("name") == "layer_profile":
            fig["epochs"] = [epoch]
    claim = parse_claim(raw, source="mse_vs_ce.yaml")
    if not bad:
        check_claim_telemetry(claim, "best_lr")
        return
    with pytest.raises(ConfigError) as err:
        check_claim_telemetry(claim, "best_lr")
    line = str(err.value)
    assert "\n" not in line
    assert "mse_vs_ce.yaml#protocols.best_lr" in line and "train.telemetry" in line
    assert "output_grad_init" in line and "true" in line
