"""The stacked network: gradient checks for every stackable component, equivalence per step."""

from __future__ import annotations

import numpy as np
import pytest

from models import LAYERS, OPTIMIZERS, Sequential
from models.activations import ACTIVATIONS
from models.gradcheck import check_stacked_gradients, kink_safe_input
from models.losses import LOSSES
from models.stacked import StackedSequential, stacking_unsupported

R, N, D = 3, 4, 5


def _nets(layers, loss="cross_entropy", regularizers=(), dtype=np.float64, telemetry=False):
    nets = []
    for seed in range(R):
        net = Sequential(
            [LAYERS.build(spec) for spec in layers],
            loss=loss,
            regularizers=regularizers,
            telemetry=telemetry,
        )
        nets.append(net.build((D,), rng=np.random.default_rng(seed), dtype=dtype))
    return nets


def _batch(seed=0, K=3):
    rng = np.random.default_rng(seed)
    x = np.stack([kink_safe_input(rng, (N, D)) for _ in range(R)])
    return x, rng.integers(0, K, size=(R, N))


def _activation_spec(name):
    kwargs = dict(getattr(ACTIVATIONS.get(name), "example_kwargs", {}))
    return {"name": name, **kwargs}


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS.names() if n != "step"])
def test_gradients_of_every_activation_stacked(name):
    spec = _activation_spec(name)
    layers = [{"name": "dense", "units": 6}, spec, {"name": "dense", "units": 3}]
    x, t = _batch()
    check_stacked_gradients(_nets(layers), x, t)


@pytest.mark.parametrize(
    "layers",
    [
        [
            {"name": "dense", "units": 6},
            {"name": "dropout", "rate": 0.3},
            {"name": "dense", "units": 3},
        ],
        [
            {"name": "dense", "units": 6},
            {"name": "dropout", "rate": 0.3, "mode": "scale_at_test"},
            {"name": "dense", "units": 3},
        ],
        [{"name": "dense", "units": 6}, "batch_norm", "tanh", {"name": "dense", "units": 3}],
        [{"name": "reshape", "target_shape": [5, 1]}, "flatten", {"name": "dense", "units": 3}],
        [{"name": "dense", "units": 3, "use_bias": False}],
    ],
    ids=["dropout", "dropout-scale-at-test", "batch-norm", "reshape-flatten", "no-bias"],
)
def test_gradients_of_dropout_batch_norm_and_shape_layers_stacked(layers):
    x, t = _batch()
    check_stacked_gradients(_nets(layers), x, t)


def _loss_targets(name, rng):
    """Targets for loss ``name``: the kinds its gradient check uses, one batch per replicate."""
    cls = LOSSES.get(name)
    kinds = [None, *getattr(cls, "example_targets", ())]
    out = []
    for kind in kinds:
        ts = []
        for _ in range(R):
            _, tb = cls.example_batch(
                rng, np.float64, **({} if kind is None else {"targets": kind})
            )
            ts.append(tb)
        out.append(np.stack(ts))
    return out


@pytest.mark.parametrize("name", LOSSES.names())
@pytest.mark.parametrize("regularized", [False, True])
def test_gradients_of_every_loss_and_regularizer_stacked(name, regularized):
    rng = np.random.default_rng(1)
    last = {"nll": ["softmax"], "msle": ["softplus"]}.get(name, [])
    layers = [{"name": "dense", "units": 3}, *last]
    regs = [{"name": "l2", "weight_decay": 0.1}, {"name": "l1", "weight_decay": 0.01}]
    x, _ = _batch(2)
    for t in _loss_targets(name, rng):
        nets = _nets(layers, loss=name, regularizers=regs if regularized else ())
        check_stacked_gradients(nets, x, t)
    for output in ("softmax", "sigmoid"):
        if name == "mse":
            check_stacked_gradients(_nets(layers, loss={"name": "mse", "output": output}), x, t)


@pytest.mark.parametrize(
    "optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_replicate_follows_its_unstacked_trajectory(optimizer, dtype):
    layers = [
        {"name": "dense", "units": 8},
        "relu",
        {"name": "dropout", "rate": 0.2},
        {"name": "dense", "units": 7},
        "batch_norm",
        "tanh",
        {"name": "dense", "units": 3},
    ]
    regs = [{"name": "l2", "weight_decay": 0.01}]
    spec = {"name": optimizer, "lr": 0.01, "schedule": {"name": "cosine", "total_steps": 30}}
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, R, N, D))
    T = rng.integers(0, 3, size=(30, R, N))
    ref = _nets(layers, regularizers=regs, dtype=dtype)
    opts = [OPTIMIZERS.build(spec) for _ in range(R)]
    ref_losses = np.array(
        [[ref[r].train_step(X[k, r], T[k, r], opts[r]) for r in range(R)] for k in range(30)]
    )
    stack = StackedSequential(_nets(layers, regularizers=regs, dtype=dtype))
    opt = OPTIMIZERS.build(spec)
    losses = np.array([stack.train_step(X[k], T[k], opt) for k in range(30)])
    tol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(losses, ref_losses, rtol=tol)
    stack.write_back()
    for r in range(R):
        a, b = stack.nets[r]._flat_params, ref[r]._flat_params
        assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b))
        for key, arr in ref[r].state().items():
            np.testing.assert_allclose(stack.nets[r].state()[key], arr, rtol=tol)


def test_drop_keeps_the_others_and_their_optimizer_state():
    layers = [{"name": "dense", "units": 6}, "relu", {"name": "dense", "units": 3}]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, R, N, D))
    T = rng.integers(0, 3, size=(10, R, N))
    ref = _nets(layers)
    opts = [OPTIMIZERS.build("adam") for _ in range(R)]
    for k in range(10):
        for r in (0, 2):
            ref[r].train_step(X[k, r], T[k, r], opts[r])
    stack = StackedSequential(_nets(layers))
    opt = OPTIMIZERS.build("adam")
    for k in range(10):
        if k == 4:
            stack.drop([1], opt)
        rows = [0, 1, 2] if k < 4 else [0, 2]
        stack.train_step(X[k, rows], T[k, rows], opt)
    stack.write_back()
    assert stack.members == [0, 2]
    for r in (0, 2):
        np.testing.assert_allclose(stack.nets[r]._flat_params, ref[r]._flat_params, rtol=1e-12)


def test_a_non_finite_replicate_is_reported_and_not_updated():
    layers = [{"name": "dense", "units": 3}]
    x, t = _batch()
    x[1, 0, 0] = np.nan
    stack = StackedSequential(_nets(layers))
    before = stack.group_params["decay"].copy()
    losses = stack.train_step(x, t, OPTIMIZERS.build("sgd"))
    assert not np.isfinite(losses[1]) and np.isfinite(losses[[0, 2]]).all()
    assert stack.non_finite == {
        1: f"loss is {losses[1]} (not finite); first non-finite value: the input batch"
    }
    np.testing.assert_array_equal(stack.group_params["decay"][1], before[1])
    assert not np.array_equal(stack.group_params["decay"][0], before[0])


def test_networks_that_cannot_be_stacked_are_refused_with_the_reason():
    a = _nets([{"name": "dense", "units": 3}])
    b = _nets([{"name": "dense", "units": 4}])
    with pytest.raises(ValueError, match="different config"):
        StackedSequential([a[0], b[0]])
    conv = Sequential(
        [
            LAYERS.build({"name": "conv1d", "filters": 2, "kernel_size": 2}),
            LAYERS.build("flatten"),
            LAYERS.build({"name": "dense", "units": 3}),
        ]
    ).build((1, 5), rng=np.random.default_rng(0))
    assert "conv1d" in (stacking_unsupported(conv) or "")


def test_stacking_is_chosen_only_where_it_pays():
    from models.stacked import stacking_pays

    digits, big = [64, 100, 10], [784, 100, 100, 100, 100, 10]
    assert stacking_pays(10, 1, digits) and stacking_pays(3, 512, digits)
    assert stacking_pays(10, 8, big) and not stacking_pays(10, 512, big)
    assert not stacking_pays(1, 8, digits)  # one replicate: nothing to share


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_one_steps_equal_the_unstacked_ones(dtype):
    layers = [{"name": "dense", "units": 6}, "relu", {"name": "dense", "units": 3}]
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, R, 1, D))
    T = rng.integers(0, 3, size=(20, R, 1))
    ref = _nets(layers, dtype=dtype)
    opts = [OPTIMIZERS.build("momentum") for _ in range(R)]
    for k in range(20):
        for r in range(R):
            ref[r].train_step(X[k, r], T[k, r], opts[r])
    stack = StackedSequential(_nets(layers, dtype=dtype))
    opt = OPTIMIZERS.build("momentum")
    for k in range(20):
        stack.train_step(X[k], T[k], opt)
    stack.write_back()
    tol = 1e-10 if dtype == np.float64 else 1e-5
    for r in range(R):
        a, b = stack.nets[r]._flat_params, ref[r]._flat_params
        assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b))
    x, t = _batch()
    check_stacked_gradients(_nets(layers), x[:, :1], t[:, :1])


EVAL_LAYERS = {
    "relu-dropout": [
        {"name": "dense", "units": 8},
        "relu",
        {"name": "dropout", "rate": 0.3},
        {"name": "dense", "units": 3},
    ],
    "book-dropout-batch-norm": [
        {"name": "dense", "units": 7},
        "batch_norm",
        "tanh",
        {"name": "dropout", "rate": 0.4, "mode": "scale_at_test"},
        {"name": "dense", "units": 3},
    ],
    "batch-norm-first": ["batch_norm", {"name": "dense", "units": 3}],
}


def _trained_stack(layers, loss, dtype):
    rng = np.random.default_rng(7)
    stack = StackedSequential(_nets(layers, loss=loss, dtype=dtype))
    opt = OPTIMIZERS.build("momentum")
    for _ in range(5):
        stack.train_step(rng.normal(size=(R, N, D)), rng.integers(0, 3, size=(R, N)), opt)
    stack.write_back()
    return stack, opt


@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("loss", ["cross_entropy", {"name": "mse", "output": "softmax"}, "hinge"])
@pytest.mark.parametrize("case", sorted(EVAL_LAYERS))
def test_stacked_evaluation_equals_each_replicates_own(case, loss, dtype, tol):
    """One stacked pass gives each replicate's Sequential.evaluate and predict, after training
    (batch-norm running statistics moved, dropout active in training only), in eval batches
    with a partial last one, and after a replicate left the stack."""
    stack, opt = _trained_stack(EVAL_LAYERS[case], loss, dtype)
    rng = np.random.default_rng(8)
    X, T = rng.normal(size=(23, D)), rng.integers(0, 3, size=23)
    for rows in ([0, 1, 2], [0, 2]):
        if rows == [0, 2]:
            stack.drop([1], opt)
        metrics, preds = stack.evaluate(X, T, batch_size=10, predictions=True)
        assert preds is not None and len(metrics) == len(rows)
        for r, m in enumerate(rows):
            net = stack.nets[m]
            ref = net.evaluate(X, T, batch_size=10)
            assert metrics[r].keys() == ref.keys()
            for key, value in ref.items():
                assert metrics[r][key] == pytest.approx(value, rel=tol, abs=tol), key
            np.testing.assert_allclose(preds[r], net.predict(X), rtol=tol, atol=tol)


@pytest.mark.parametrize("case", sorted(EVAL_LAYERS))
def test_stacked_evaluation_leaves_the_training_step_alone(case):
    """Evaluating between a forward pass and its backward pass changes nothing of the step."""
    grads = []
    for evaluate in (False, True):
        stack, _ = _trained_stack(EVAL_LAYERS[case], "cross_entropy", np.float64)
        rng = np.random.default_rng(9)
        x, t = rng.normal(size=(R, N, D)), rng.integers(0, 3, size=(R, N))
        stack.compute_loss(x, t)
        if evaluate:
            stack.evaluate(rng.normal(size=(N, D)), t[0], predictions=True)
        stack.backward()
        grads.append({k: v.copy() for k, v in stack.group_grads.items()})
    for key, g in grads[0].items():
        np.testing.assert_array_equal(grads[1][key], g)


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS.names() if n != "step"])
def test_telemetry_of_every_activation_stacked_equals_unstacked(name):
    """Per-layer telemetry of a stacked step (the vectorized ReLU/sigmoid/tanh statistics and
    every other activation's own) is each replicate's unstacked telemetry."""
    layers = [{"name": "dense", "units": 6}, _activation_spec(name), {"name": "dense", "units": 3}]
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3, R, N, D)) * 3  # wide inputs: some saturated and some dead units
    T = rng.integers(0, 3, size=(3, R, N))
    ref, nets = _nets(layers, telemetry=True), _nets(layers, telemetry=True)
    for r in (1, 2):  # half the units dead (or saturated) for every sample in replicates 1, 2
        for net in (ref[r], nets[r]):
            net.params["dense_0.b"][:3] = -50.0
    opts = [OPTIMIZERS.build("sgd") for _ in range(R)]
    stack = StackedSequential(nets)
    opt = OPTIMIZERS.build("sgd")
    for k in range(3):
        for r in range(R):
            ref[r].train_step(X[k, r], T[k, r], opts[r])
        stack.train_step(X[k], T[k], opt)
        for r in range(R):
            want = ref[r].last_telemetry
            assert stack.last_telemetry[r].keys() == want.keys()
            for key, value in want.items():
                assert stack.last_telemetry[r][key] == pytest.approx(value, rel=1e-10), key


@pytest.mark.parametrize("units", [100, 3])
def test_batch_one_weight_gradients_are_the_exact_outer_products(units):
    """The batch-1 weight gradient (a K = 2 GEMM with a padding row of zeros) is each entry's
    one product x_i·dout_j, bit for bit what each replicate's own Dense layer gives, signs of
    zeros included (the inputs have zeros against negative upstream gradients)."""
    d_in = 784
    nets = [
        Sequential([LAYERS.build({"name": "dense", "units": units})]).build(
            (d_in,), rng=np.random.default_rng(seed), dtype=np.float32
        )
        for seed in range(R)
    ]
    stack = StackedSequential(nets)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((R, 1, d_in), dtype=np.float32)
    x[:, :, ::3] = 0.0
    dout = rng.standard_normal((R, 1, units), dtype=np.float32)
    dense = stack.layers[0]
    dense.forward(x)
    dense.backward(dout)
    dW = dense.grads["W"]
    np.testing.assert_array_equal(dW, x.transpose(0, 2, 1) * dout)
    for r, net in enumerate(nets):
        layer = net.layers[0]
        layer.forward(x[r])
        layer.backward(dout[r])
        np.testing.assert_array_equal(dW[r], layer.grads["W"])
        np.testing.assert_array_equal(np.signbit(dW[r]), np.signbit(layer.grads["W"]))
        np.testing.assert_array_equal(dense.grads["b"][r], layer.grads["b"])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov"])
def test_scaling_gradients_in_place_changes_no_number(optimizer, monkeypatch):
    """SGD-type optimizers write lr·g over the gradient block (their 'scaled' buffer is the
    gradient); a training with a schedule and a drop equals one with their own buffer exactly."""
    import models.stacked as stacked_mod

    layers = [{"name": "dense", "units": 8}, "relu", {"name": "dense", "units": 3}]
    spec = {"name": optimizer, "lr": 0.05, "schedule": {"name": "cosine", "total_steps": 12}}
    rng = np.random.default_rng(4)
    X = rng.normal(size=(12, R, N, D)).astype(np.float32)
    T = rng.integers(0, 3, size=(12, R, N))
    runs = []
    for in_place in (True, False):
        if not in_place:
            monkeypatch.setattr(stacked_mod, "_SCALES_GRADIENT_ONCE", ())
        stack = StackedSequential(_nets(layers, dtype=np.float32))
        opt = OPTIMIZERS.build(spec)
        losses = []
        for k in range(12):
            if k == 6:
                stack.drop([1], opt)
            rows = [0, 1, 2] if k < 6 else [0, 2]
            losses.append(stack.train_step(X[k, rows], T[k, rows], opt))
            aliased = opt._state["decay"]["scaled"] is stack.group_grads["decay"]
            assert aliased == (in_place and k > 0)  # from the second update on (and after drop)
        runs.append((np.concatenate(losses), stack.group_params))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for key, p in runs[0][1].items():
        np.testing.assert_array_equal(p, runs[1][1][key])
