"""Gradient checks over every registered component and over whole networks.

The cases are read from the registries at collection time, so registering a layer, activation,
loss or regularizer puts it under the check with no new test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from models import (
    ACTIVATIONS,
    LAYERS,
    LOSSES,
    REGULARIZERS,
    NotDifferentiableError,
    Sequential,
    build_network,
    gradcheck,
)
from models.base import Array, Layer

# whole networks: (builder spec or layer list factory, input shape, n_outputs, loss, regularizers)
NETWORK_CASES: dict[str, dict[str, Any]] = {
    "dense_relu_l2": {
        "spec": {"name": "mlp", "hidden": [5, 4], "activation": "relu"},
        "input_shape": (4,),
        "regularizers": [{"name": "l2", "weight_decay": 0.1}],
    },
    "dense_tanh_l1": {
        "spec": {"name": "mlp", "hidden": [5], "activation": "tanh"},
        "input_shape": (4,),
        "regularizers": [{"name": "l1", "weight_decay": 0.05}],
    },
    "sigmoid_mse_softmax": {
        "spec": {"name": "mlp", "hidden": [5], "activation": "sigmoid"},
        "input_shape": (4,),
        "loss": {"name": "mse", "output": "softmax"},
    },
    "batch_norm_before": {
        "spec": {"name": "mlp", "hidden": [5, 4], "batch_norm": True},
        "input_shape": (4,),
    },
    "batch_norm_after_elu": {
        "spec": {
            "name": "mlp",
            "hidden": [5],
            "activation": "elu",
            "batch_norm": True,
            "batch_norm_position": "after",
        },
        "input_shape": (4,),
    },
    "dropout_inverted": {
        "spec": {"name": "mlp", "hidden": [6, 5], "dropout": 0.3},
        "input_shape": (4,),
    },
    "dropout_scale_at_test": {
        "spec": {"name": "mlp", "hidden": [6], "dropout": 0.5, "dropout_mode": "scale_at_test"},
        "input_shape": (4,),
    },
    "maxout": {
        "spec": {"name": "mlp", "hidden": [4], "activation": {"name": "maxout", "pieces": 3}},
        "input_shape": (4,),
    },
    "softmax_nll": {
        "spec": {"name": "mlp", "hidden": [5], "output_activation": "softmax"},
        "input_shape": (4,),
        "loss": "nll",
    },
    "binary_cross_entropy": {
        "spec": {"name": "mlp", "hidden": [5], "activation": "leaky_relu"},
        "input_shape": (4,),
        "n_outputs": 1,
        "loss": "binary_cross_entropy",
        "targets": "binary",
    },
    "conv_pool": {
        "spec": {"name": "simple_conv_net", "filters": 2, "kernel_size": 3, "hidden": 4},
        "input_shape": (1, 6, 6),
    },
    "deep_conv_dropout": {
        "spec": {"name": "deep_conv_net", "channels": [2, 2], "hidden": 3, "dropout": 0.5},
        "input_shape": (1, 6, 6),
    },
    "conv1d": {
        "spec": {"name": "conv1d_net", "channels": 2, "n_layers": 2, "kernel_size": 3},
        "input_shape": (12,),
    },
    "conv_batch_norm_avg_pool": {
        "layers": lambda: [
            LAYERS.build({"name": "conv2d", "filters": 2, "kernel_size": 3, "padding": 1}),
            LAYERS.build("batch_norm"),
            LAYERS.build("relu"),
            LAYERS.build({"name": "avg_pool2d", "pool_size": 2}),
            LAYERS.build("flatten"),
            LAYERS.build({"name": "dense", "units": 3}),
        ],
        "input_shape": (2, 4, 4),
    },
}

# layer configurations beyond each registered layer's own example (other code paths)
LAYER_VARIANTS: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "max_pool2d_overlapping_padded": (
        {"name": "max_pool2d", "pool_size": 3, "stride": 2, "padding": 1},
        (2, 5, 6),
    ),
    "avg_pool2d_overlapping": ({"name": "avg_pool2d", "pool_size": 2, "stride": 1}, (2, 4, 5)),
    "max_pool1d_padded": (
        {"name": "max_pool1d", "pool_size": 3, "stride": 2, "padding": 1},
        (2, 9),
    ),
    "avg_pool1d_tiled": ({"name": "avg_pool1d", "pool_size": 3}, (2, 9)),
    "conv2d_rectangular": (
        {"name": "conv2d", "filters": 3, "kernel_size": [2, 3], "stride": [1, 2]},
        (2, 5, 6),
    ),
    "conv1d_no_bias": (
        {"name": "conv1d", "filters": 2, "kernel_size": 4, "use_bias": False},
        (3, 7),
    ),
    "batch_norm_conv": ({"name": "batch_norm", "momentum": 0.5}, (2, 3, 3)),
    "dense_no_bias": ({"name": "dense", "units": 3, "use_bias": False}, (5,)),
    "dropout_scale_at_test": ({"name": "dropout", "rate": 0.5, "mode": "scale_at_test"}, (7,)),
    "maxout_conv": ({"name": "maxout", "pieces": 2}, (4, 3, 2)),
}

N_SAMPLES = 8  # >= 2 so batch norm's batch statistics are not degenerate


def _cases() -> list[Any]:
    cases = []
    for kind, registry in (("layer", LAYERS), ("activation", ACTIVATIONS)):
        for name in registry.names():
            for train in (True, False):
                mode = "train" if train else "eval"
                cases.append(pytest.param(kind, name, train, id=f"{kind}:{name}:{mode}"))
    for variant in LAYER_VARIANTS:
        for train in (True, False):
            mode = "train" if train else "eval"
            cases.append(pytest.param("variant", variant, train, id=f"layer:{variant}:{mode}"))
    for kind, registry in (("loss", LOSSES), ("regularizer", REGULARIZERS)):
        cases += [pytest.param(kind, name, True, id=f"{kind}:{name}") for name in registry.names()]
    for name in LOSSES.names():  # the extra target kinds a loss declares (soft labels, ...)
        for kind in getattr(LOSSES.get(name), "example_targets", ()):
            cases.append(pytest.param("loss", f"{name}[{kind}]", True, id=f"loss:{name}[{kind}]"))
    cases.append(pytest.param("loss", "mse:sigmoid", True, id="loss:mse:sigmoid"))
    cases.append(pytest.param("loss", "mse:softmax", True, id="loss:mse:softmax"))
    cases += [pytest.param("network", name, True, id=f"network:{name}") for name in NETWORK_CASES]
    return cases


def _network(name: str) -> tuple[Sequential, Array, Array]:
    case = NETWORK_CASES[name]
    rng = np.random.default_rng(1)
    n_outputs = case.get("n_outputs", 3)
    kwargs = {
        "loss": case.get("loss", "cross_entropy"),
        "regularizers": case.get("regularizers", ()),
    }
    if "layers" in case:
        net = Sequential(case["layers"](), **kwargs).build(
            case["input_shape"], rng=rng, dtype=np.float64
        )
    else:
        net = build_network(
            case["spec"],
            input_shape=case["input_shape"],
            n_outputs=n_outputs,
            rng=rng,
            dtype=np.float64,
            **kwargs,
        )
    # zero biases put ReLUs fed by all-zero windows exactly on their kink: randomize them
    for key, p in net.params.items():
        if key not in (net.params.decay_keys or ()):
            p[...] = gradcheck.kink_safe_input(rng, p.shape) + (
                1.0 if key.endswith("gamma") else 0.0
            )
    x = rng.normal(size=(N_SAMPLES, *case["input_shape"]))
    binary = case.get("targets") == "binary"
    t: Array = rng.integers(0, 2 if binary else n_outputs, size=N_SAMPLES)
    return net, x, t


@pytest.mark.parametrize(("kind", "name", "train"), _cases())
def test_gradients(kind: str, name: str, train: bool) -> None:
    """Analytic gradients match central differences (max relative error < 1e-6)."""
    tol = gradcheck.DEFAULT_TOL
    if kind in ("layer", "activation"):
        registry = LAYERS if kind == "layer" else ACTIVATIONS
        if name == "step":  # forward-only by design: backward must refuse clearly
            layer, x = gradcheck.build_example_layer(registry.get(name))
            layer.forward(x, train=train)
            with pytest.raises(NotDifferentiableError, match="step"):
                layer.backward(np.ones_like(x))
            return
        errors = gradcheck.check_registered_layer(registry, name, train=train)
        assert errors["x"] < tol
    elif kind == "variant":
        spec, shape = LAYER_VARIANTS[name]
        rng = np.random.default_rng(0)
        layer = LAYERS.build(spec)
        layer.build(shape, rng=rng, dtype=np.float64)
        x = gradcheck.kink_safe_input(rng, (4, *shape))
        assert gradcheck.check_layer_gradients(layer, x, train=train)["x"] < tol
    elif kind == "loss":
        base, _, output = name.partition(":")
        kwargs: dict[str, Any] = {"output": output} if output else {}
        if base.endswith("]"):
            base, _, kind = base[:-1].partition("[")
            kwargs["targets"] = kind
        assert gradcheck.check_registered_loss(LOSSES, base, **kwargs) < tol
    elif kind == "regularizer":
        reg = REGULARIZERS.build({"name": name, "weight_decay": 0.3})
        W = gradcheck.kink_safe_input(np.random.default_rng(0), (3, 4))
        assert gradcheck.check_regularizer_gradients(reg, W) < tol
    else:
        net, x, t = _network(name)
        errors = gradcheck.check_network_gradients(net, x, t)
        assert set(errors) == set(net.params)
        assert max(errors.values()) < tol


class _WrongDense(Layer):
    """A dense layer whose weight gradient is off by a factor 2 in one column."""

    example_input_shape = (3,)

    def build(self, input_shape: Any, *, rng: np.random.Generator, dtype: Any = np.float64) -> Any:
        self.params["W"] = rng.normal(size=(input_shape[0], 2)).astype(dtype)
        self.grads["W"] = np.zeros_like(self.params["W"])
        return super().build(input_shape, rng=rng, dtype=dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (2,)

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self._x = x
        return x @ self.params["W"]

    def backward(self, dout: Array) -> Array:
        self.grads["W"][...] = self._x.T @ dout
        self.grads["W"][:, 1] *= 2
        return dout @ self.params["W"].T


def test_gradcheck_names_the_worst_index() -> None:
    from models.registry import Registry

    registry: Registry[Callable[..., Layer]] = Registry("layer")
    registry.register("wrong_dense")(_WrongDense)
    with pytest.raises(AssertionError) as info:
        gradcheck.check_registered_layer(registry, "wrong_dense")
    message = str(info.value)
    assert "'wrong_dense.W'" in message
    assert "at index (" in message
    assert ", 1)" in message
    assert "analytic" in message
    assert "numerical" in message


def test_numerical_gradient_requires_float64() -> None:
    with pytest.raises(TypeError, match="float64"):
        gradcheck.numerical_gradient(lambda v: float(v.sum()), np.ones(3, dtype=np.float32))


def test_numerical_gradient_of_a_quadratic() -> None:
    x = np.array([1.0, -2.0, 0.5])
    grad = gradcheck.numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-9)
    np.testing.assert_array_equal(x, [1.0, -2.0, 0.5])  # restored


def test_layers_without_declared_examples_fail_loudly() -> None:
    from models.registry import Registry

    class NeedsArgs(_WrongDense):
        def __init__(self, units: int) -> None:
            self.units = units

    registry: Registry[Any] = Registry("layer")
    registry.register("needs_args")(NeedsArgs)
    with pytest.raises(TypeError, match="example_kwargs"):
        gradcheck.check_registered_layer(registry, "needs_args")
