"""Stacked replicate training equals unstacked training, run by run, over whole trainings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.experiment import build_run
from harness.runconfig import resolve_run_config
from harness.train import STACKED_TIMING_NOTE, StackedTrainer, StopTraining, needs_timing

TIMING_KEYS = ("time/epoch_train_s", "throughput/samples_per_s")


def digits_config(seed=0, dtype="float64", model=None, **train):
    cfg = {
        "seed": seed,
        "data": {"name": "digits"},
        "model": model
        or {"name": "mlp", "hidden": [32, 16], "activation": "relu", "init": "he_normal"},
        "train": {
            "optimizer": {"name": "sgd", "lr": 0.1},
            "batch_size": 64,
            "epochs": 3,
            "dtype": dtype,
        },
    }
    cfg["train"].update(train)
    return resolve_run_config(cfg)


def _trainers(configs, callbacks=()):
    return [build_run(c, resolved=True, callbacks=callbacks).trainer for c in configs]


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def _assert_same(stacked, unstacked, tol):
    for s, u in zip(stacked, unstacked):
        hs, hu = s.history, u.history
        assert (hs.status, hs.steps) == (hu.status, hu.steps), (hs.reason, hu.reason)
        assert [r["epoch"] for r in hs.records] == [r["epoch"] for r in hu.records]
        for rs, ru in zip(hs.records, hu.records):
            assert set(rs) == set(ru)
            for key in ru:
                if key in TIMING_KEYS:
                    continue
                assert math.isclose(rs[key], ru[key], rel_tol=tol, abs_tol=tol), (key, rs, ru)
        assert _rel(s.network._flat_params, u.network._flat_params) <= tol
        for key, arr in u.network.state().items():
            assert _rel(s.network.state()[key], arr) <= tol


CASES = {
    "sgd-relu": {},
    "adam-l2-l1-cosine": {
        "optimizer": {"name": "adam", "lr": 0.003},
        "weight_decay": 1e-3,
        "l1": 1e-4,
        "schedule": "cosine",
    },
    "momentum-replacement": {
        "optimizer": {"name": "momentum", "lr": 0.05},
        "sampling": "replacement",
    },
    "mse-softmax-rmsprop": {
        "loss": {"name": "mse", "output": "softmax"},
        "optimizer": {"name": "rmsprop", "lr": 0.003},
    },
    "telemetry-adamw": {"optimizer": {"name": "adamw", "lr": 0.003}, "telemetry": True},
    "telemetry-init": {"telemetry": "init"},
}


@pytest.mark.parametrize(("dtype", "tol"), [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("case", sorted(CASES))
def test_stacked_equals_unstacked_over_a_whole_training(case, dtype, tol):
    configs = [digits_config(seed=s, dtype=dtype, **CASES[case]) for s in (0, 1, 2)]
    unstacked = _trainers(configs)
    for t in unstacked:
        t.run()
    stacked = _trainers(configs)
    StackedTrainer(stacked).run()
    _assert_same(stacked, unstacked, tol)
    for t in stacked:
        assert t.history.throughput_note == STACKED_TIMING_NOTE
        assert math.isnan(t.history.throughput)


def test_dropout_batch_norm_and_other_layers_stack_exactly():
    model = {
        "name": "mlp",
        "hidden": [24, 12],
        "activation": "tanh",
        "dropout": 0.2,
        "batch_norm": True,
    }
    configs = [digits_config(seed=s, model=model) for s in (3, 4)]
    unstacked = _trainers(configs)
    for t in unstacked:
        t.run()
    stacked = _trainers(configs)
    StackedTrainer(stacked).run()
    _assert_same(stacked, unstacked, 1e-10)


DIVERGING = {
    # exploding loss (> 2 x the initial one) in seeds 2, 4 and 5 of 6; seed 0 ends at chance
    # (diverged too, judged at the end); 1 and 3 complete
    "exploding": (
        {"optimizer": {"name": "sgd", "lr": 1.0}, "divergence_factor": 2.0},
        "float64",
        1e-10,
    ),
    # float32 overflow to an infinite loss: seeds 2 and 3 of 6
    "non-finite": (
        {
            "optimizer": {"name": "momentum", "lr": 2.0, "momentum": 0.99},
            "loss": "mse",
            "divergence_factor": 1e300,
        },
        "float32",
        1e-5,
    ),
}


@pytest.mark.parametrize("case", sorted(DIVERGING))
def test_a_diverging_replicate_is_masked_out_with_its_reason_while_the_others_go_on(case):
    train, dtype, tol = DIVERGING[case]
    configs = [digits_config(seed=s, dtype=dtype, epochs=3, **train) for s in range(6)]
    unstacked = _trainers(configs)
    for t in unstacked:
        t.run()
    statuses = [t.history.status for t in unstacked]
    assert "diverged" in statuses and "completed" in statuses, statuses
    stacked = _trainers(configs)
    StackedTrainer(stacked).run()
    _assert_same(stacked, unstacked, tol)
    for s, u in zip(stacked, unstacked):
        assert s.history.reason == u.history.reason
    word = "non-finite loss at epoch" if case == "non-finite" else "exploding loss"
    assert any(word in t.history.reason for t in stacked)


def test_early_stopping_and_a_callback_stop_leave_the_stack_after_their_epoch():
    configs = [
        digits_config(seed=s, epochs=6, early_stopping={"patience": 1, "min_delta": 0.05})
        for s in (0, 1, 2)
    ]
    unstacked = _trainers(configs)
    for t in unstacked:
        t.run()
    stacked = _trainers(configs)
    StackedTrainer(stacked).run()
    _assert_same(stacked, unstacked, 1e-10)
    # a callback that stops replicate 1 after epoch 1

    def make_cb(i):
        def cb(epoch, record):
            if i == 1 and epoch == 1:
                raise StopTraining("pruned", "stopped by the test")

        return cb

    plain = [digits_config(seed=s, epochs=3) for s in (0, 1, 2)]
    ref = [build_run(c, resolved=True, callbacks=[make_cb(i)]).trainer for i, c in enumerate(plain)]
    for t in ref:
        t.run()
    st = [build_run(c, resolved=True, callbacks=[make_cb(i)]).trainer for i, c in enumerate(plain)]
    StackedTrainer(st).run()
    _assert_same(st, ref, 1e-10)
    assert st[1].history.status == "pruned" and st[1].history.records[-1]["epoch"] == 1
    assert st[0].history.records[-1]["epoch"] == 3


def test_conv_networks_and_single_replicates_are_not_stacked():
    from models import LAYERS, Sequential
    from models.stacked import StackedSequential, stacking_unsupported

    net = Sequential(
        [
            LAYERS.build({"name": "conv2d", "filters": 2, "kernel_size": 3}),
            LAYERS.build("flatten"),
            LAYERS.build({"name": "dense", "units": 3}),
        ]
    ).build((1, 5, 5), rng=np.random.default_rng(0))
    assert "no stacked form" in (stacking_unsupported(net) or "")
    with pytest.raises(ValueError, match="no stacked form"):
        StackedSequential([net, net])
    assert StackedTrainer.unsupported(_trainers([digits_config()])) is not None


def test_timing_measures_are_recognised():
    assert needs_timing("throughput/samples_per_s")
    assert needs_timing({"t": {"name": "time_to", "metric": "val/accuracy"}})
    assert needs_timing([{"metric": "time/train_s"}])
    assert not needs_timing({"name": "final", "metric": "val/accuracy"})


def test_claim_protocols_that_feed_a_timing_measure_train_unstacked():
    from harness.claims import load_claim
    from harness.reproduce import _protocol_stacking, _timed_trials, timing_protocols

    claim = load_claim("batch_size", budget="quick")
    timing = timing_protocols(claim)
    # B2 reads throughput from `timing`; B4 reads time to target from fixed_lr (which evaluates
    # the runs of tuned_lr: reuse, so those must be timed too) and sqrt_lr
    assert timing == {"timing", "fixed_lr", "sqrt_lr", "tuned_lr"}
    assert not _protocol_stacking(claim, "timing", None)
    # fixed_lr reuses only tuned_lr's runs at lr 0.1: those train unstacked, the others stack
    assert _protocol_stacking(claim, "tuned_lr", None)
    timed = _timed_trials(claim, "tuned_lr")
    base = digits_config()
    for lr, want in ((0.1, True), (0.3, False), (1.0, False)):
        cfg = dict(base, train={**base["train"], "optimizer": {"name": "sgd", "lr": lr}})
        assert timed(cfg) is want, lr
    assert _timed_trials(claim, "timing") is None and _timed_trials(claim, "sqrt_lr") is None
    other = load_claim("mse_vs_ce", budget="quick")
    assert not timing_protocols(other)
    assert all(_protocol_stacking(other, p, None) for p in other.protocols_to_run())
    assert not any(_protocol_stacking(other, p, False) for p in other.protocols_to_run())


def test_stacked_replicates_are_evaluated_in_one_pass_per_split(monkeypatch):
    """No replicate's own network evaluates a split during training: the stack does it for all
    (only the end-of-run test split and the chance check use a replicate's network)."""
    from models.network import Sequential

    calls: list[int] = []
    plain = Sequential.evaluate

    def counting(self, *args, **kwargs):
        calls.append(len(args[0]))
        return plain(self, *args, **kwargs)

    monkeypatch.setattr(Sequential, "evaluate", counting)
    configs = [digits_config(seed=s, epochs=3) for s in (0, 1, 2)]
    stacked = _trainers(configs)
    StackedTrainer(stacked).run()
    n_test = 0 if stacked[0].splits.test is None else stacked[0].splits.test.n
    assert all(n == n_test for n in calls), calls  # the test split only, once per replicate
    assert len(calls) == (3 if n_test else 0)
