"""The training loop: learning, guards, determinism, targets, callbacks, telemetry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.config import ConfigError
from harness.experiment import build_run, run_config
from harness.runconfig import resolve_run_config
from harness.tracking import TELEMETRY_PREFIXES
from harness.train import StopTraining


def digits_config(**train):
    cfg = {
        "seed": 0,
        "data": {"name": "digits"},
        "model": {"name": "mlp", "hidden": [100], "activation": "relu", "init": "he_normal"},
        "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 32, "epochs": 15},
    }
    cfg["train"].update(train)
    return cfg


def test_mlp_on_digits_reaches_95_percent_validation_accuracy():
    result = run_config(digits_config())
    h = result.history
    assert h.status == "completed", h.reason
    assert h.best("val/accuracy") >= 0.95
    assert h.records[0]["epoch"] == 0 and h.records[-1]["epoch"] == 15
    assert h.final("train/loss") < h.records[0]["train/loss"] / 5
    assert h.throughput > 0 and h.train_time_s > 0
    assert all(r["time/epoch_train_s"] > 0 for r in h.records[1:])


def test_same_seed_gives_identical_histories_and_other_seed_does_not():
    a = run_config(digits_config(epochs=3))
    b = run_config(digits_config(epochs=3))
    c = run_config({**digits_config(epochs=3), "seed": 1})
    keys = ["train/loss", "val/loss", "val/accuracy"]
    for k in keys:
        assert a.history.metric(k) == b.history.metric(k)
    assert a.history.metric("val/loss") != c.history.metric("val/loss")
    for name, W in a.network.params.items():
        assert np.array_equal(W, b.network.params[name])


def test_divergence_guard_turns_an_exploding_lr_into_a_status():
    result = run_config(digits_config(optimizer={"name": "sgd", "lr": 1.0e4}, epochs=5))
    h = result.history
    assert h.status == "diverged"
    assert "loss" in h.reason and "epoch" in h.reason
    # what was measured before the divergence is kept
    assert h.records and h.records[0]["epoch"] == 0


def test_target_and_stop_at_target_record_epochs_and_time():
    cfg = digits_config(
        epochs=30, target={"metric": "val/accuracy", "value": 0.9}, stop_at_target=True
    )
    h = run_config(cfg).history
    assert h.status == "target_reached"
    assert h.epochs_to_target == h.records[-1]["epoch"]
    assert h.records[-1]["val/accuracy"] >= 0.9
    assert all(r["val/accuracy"] < 0.9 for r in h.records[:-1])
    assert 0 < h.time_to_target_s <= h.train_time_s
    summary = h.summary()
    assert summary["epochs_to_target"] == h.epochs_to_target


def test_target_never_reached_is_infinite_in_the_summary():
    cfg = digits_config(epochs=1, target={"metric": "val/accuracy", "value": 0.999})
    summary = run_config(cfg).history.summary()
    assert math.isinf(summary["epochs_to_target"]) and math.isinf(summary["time_to_target_s"])


def test_early_stopping_and_max_steps():
    cfg = digits_config(
        epochs=50,
        optimizer={"name": "sgd", "lr": 0.5},
        early_stopping={"monitor": "val/loss", "patience": 2},
    )
    h = run_config(cfg).history
    assert h.status == "early_stopped" and len(h.records) < 51
    h2 = run_config(digits_config(epochs=10, max_steps=50)).history
    assert h2.status == "max_steps" and h2.steps == 50


def test_callback_can_stop_training_with_a_status():
    def prune_at_2(epoch, record):
        if epoch == 2:
            raise StopTraining("pruned", "pruned at epoch 2")

    h = run_config(digits_config(epochs=10), callbacks=[prune_at_2]).history
    assert (h.status, h.reason) == ("pruned", "pruned at epoch 2")
    assert h.records[-1]["epoch"] == 2


def test_sampling_with_replacement_trains():
    h = run_config(digits_config(epochs=3, sampling="replacement")).history
    assert h.status == "completed" and h.final("val/accuracy") > 0.8
    assert h.steps == 3 * math.ceil(1257 / 32)


def test_regression_records_r2_and_mae():
    cfg = {
        "data": {"name": "house_prices", "preprocess": "standardize"},
        "model": {"name": "mlp", "hidden": [32], "activation": "tanh", "init": "glorot_uniform"},
        "train": {"loss": "mse", "optimizer": {"name": "adam", "lr": 0.01}, "epochs": 30},
    }
    h = run_config(cfg).history
    assert h.status == "completed", h.reason
    assert "val/r2" in h.records[-1] and "val/mae" in h.records[-1]
    assert "val/accuracy" not in h.records[-1]


def test_telemetry_records_per_layer_statistics_at_init_and_per_epoch():
    cfg = digits_config(epochs=2, telemetry=True)
    cfg["model"]["hidden"] = [32, 32]
    cfg["model"]["activation"] = "sigmoid"
    h = run_config(cfg).history
    at_init = h.records[0]
    grad_keys = [k for k in at_init if k.startswith("grad_norm/")]
    assert len(grad_keys) >= 3
    assert any(k.startswith("saturation/") for k in at_init)
    assert any(k.startswith("grad_norm/") for k in h.records[1])


def test_telemetry_at_init_only_keeps_every_other_number_of_the_run():
    # telemetry: init records epoch 0's statistics and skips the per-step ones; the training
    # itself (every loss, accuracy, step count) is the run of telemetry: true, bit for bit
    cfg = digits_config(epochs=3, telemetry=True)
    cfg["model"]["hidden"] = [32, 32]
    full = run_config(cfg).history
    cfg["train"]["telemetry"] = "init"
    init = run_config(cfg).history
    prefixes = TELEMETRY_PREFIXES
    assert init.records[0] == full.records[0]
    assert any(k.startswith("grad_norm/") for k in init.records[0])
    assert len(init.records) == len(full.records) == 4
    for ri, rf in zip(init.records[1:], full.records[1:]):
        assert not [k for k in ri if k.startswith(prefixes)]
        kept = {k: v for k, v in rf.items() if not k.startswith(prefixes)}
        assert set(ri) == set(kept)
        for key, value in kept.items():
            if not key.startswith(("time/", "throughput/")):
                assert ri[key] == value, key
    assert (init.status, init.steps) == (full.status, full.steps)


def test_bad_config_values_name_the_field():
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        resolve_run_config(digits_config(batch_size=0))
    with pytest.raises(ConfigError, match=r"train\.bacth_size.*did you mean 'batch_size'"):
        resolve_run_config({"train": {"bacth_size": 3}})
    with pytest.raises(ConfigError, match=r"train\.loss.*valid loss names"):
        resolve_run_config(digits_config(loss="cross_entropyy"))
    with pytest.raises(ConfigError, match=r"model\.activaton"):
        resolve_run_config({"model": {"name": "mlp", "activaton": "relu"}})
    with pytest.raises(ConfigError, match=r"data\.name.*valid dataset names"):
        resolve_run_config({"data": {"name": "mnist2d"}})


def test_unknown_activation_fails_at_build_naming_the_field_and_the_valid_names():
    cfg = digits_config()
    cfg["model"]["activation"] = "relux"
    with pytest.raises(ConfigError, match=r"^model\.activation = 'relux'.*did you mean 'relu'"):
        build_run(cfg)
    cfg["model"]["activation"] = "relu"
    cfg["model"]["init"] = {"name": "he_normall"}
    with pytest.raises(ConfigError, match=r"^model\.init = 'he_normall'.*valid initializer names"):
        build_run(cfg)


def test_weight_decay_and_l1_shrink_the_weights():
    base = run_config(digits_config(epochs=3)).network
    l2 = run_config(digits_config(epochs=3, weight_decay=0.05)).network
    l1 = run_config(digits_config(epochs=3, l1=0.01)).network

    def norm(net, p):
        return sum(
            float(np.abs(W).__pow__(p).sum()) for k, W in net.params.items() if k.endswith(".W")
        )

    assert norm(l2, 2) < 0.8 * norm(base, 2)
    assert norm(l1, 1) < 0.8 * norm(base, 1)
