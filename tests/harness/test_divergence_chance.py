"""A classifier that ends at chance accuracy has diverged (catalogue §5.6), a slow one has not."""

from __future__ import annotations

import math

import numpy as np

from harness.experiment import run_config
from harness.train import CHANCE_MARGIN, chance_level, chance_reason
from tests.harness.test_train import digits_config


def _rec(epoch, acc, loss):
    return {"epoch": float(epoch), "val/accuracy": acc, "val/loss": loss}


def test_chance_level_is_the_most_frequent_class_share():
    assert chance_level(np.array([0, 0, 1, 2])) == 0.5
    assert chance_level(np.eye(4)[[0, 1, 1, 3]]) == 0.5


def test_reasons_distinguish_collapse_stuck_and_slow():
    collapsed = [_rec(0, 0.1, 2.3), _rec(1, 0.8, 0.6), _rec(2, 0.1, 2.3)]
    assert "after reaching 0.800" in chance_reason(collapsed, 0.1)
    stuck = [_rec(0, 0.09, 2.3), _rec(1, 0.1, 2.4)]
    assert "no lower than at init" in chance_reason(stuck, 0.1)
    constant = [_rec(0, 0.09, 2.5), _rec(1, 0.1, 2.4)]
    assert "one class for 100%" in chance_reason(constant, 0.1, modal_share=1.0)
    slow = [_rec(0, 0.09, 2.5), _rec(1, 0.1, 2.4)]
    assert chance_reason(slow, 0.1, modal_share=0.4) == ""
    learned = [_rec(0, 0.09, 2.5), _rec(1, 0.1 + CHANCE_MARGIN + 0.01, 2.4)]
    assert chance_reason(learned, 0.1, modal_share=1.0) == ""
    assert chance_reason(learned, math.nan) == ""


def test_a_run_that_collapses_to_chance_with_a_finite_loss_is_diverged():
    # lr 1.0 at batch size 2 is the B1 set-up where small batches collapse to chance
    h = run_config(
        digits_config(optimizer={"name": "sgd", "lr": 1.0}, batch_size=2, epochs=3)
    ).history
    assert all(math.isfinite(r["val/loss"]) for r in h.records)
    assert h.status == "diverged", h.reason
    assert "chance" in h.reason


def test_a_slow_run_still_at_chance_is_not_diverged():
    h = run_config(digits_config(optimizer={"name": "sgd", "lr": 0.001}, epochs=1)).history
    assert h.status == "completed", h.reason


def test_probe_runs_are_not_judged_against_chance():
    # the A2 probe: dummy labels, so chance is all a network can reach
    cfg = {
        "seed": 0,
        "data": {"name": "gaussian"},
        "model": {"name": "mlp", "depth": 5, "width": 100, "activation": "sigmoid"},
        "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 256, "epochs": 5},
    }
    assert run_config(cfg).history.status == "completed"
    # a one-epoch run recording the state at init (A1's probes) has not had time to learn
    h = run_config(
        digits_config(optimizer={"name": "sgd", "lr": 1.0}, batch_size=2, epochs=1)
    ).history
    assert h.status == "completed", h.reason
