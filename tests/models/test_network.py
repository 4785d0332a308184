"""Sequential: determinism, dtypes, errors, persistence, config round trip, evaluation, telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models import (
    LAYERS,
    LOSSES,
    NETWORKS,
    OPTIMIZERS,
    NonFiniteError,
    Sequential,
    UnknownNameError,
    build_network,
    telemetry,
)

MLP = {"name": "mlp", "hidden": [16, 12], "dropout": 0.3, "batch_norm": True}


def _data(n: int = 32, d: int = 6, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, size=n)


def _net(seed: int = 0, **kwargs: Any) -> Sequential:
    return build_network(
        MLP, input_shape=(6,), n_outputs=3, rng=np.random.default_rng(seed), **kwargs
    )


def _train(net: Sequential, steps: int = 20, optimizer: str = "adam") -> list[float]:
    x, t = _data()
    opt = OPTIMIZERS.build({"name": optimizer, "lr": 0.01})
    return [
        net.train_step(x[i % 4 * 8 : i % 4 * 8 + 8], t[i % 4 * 8 : i % 4 * 8 + 8], opt)
        for i in range(steps)
    ]


def test_same_seed_gives_bit_identical_training() -> None:
    a, b = _net(seed=7), _net(seed=7)
    losses_a, losses_b = _train(a), _train(b)
    assert losses_a == losses_b
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    for key, value in a.state().items():
        np.testing.assert_array_equal(value, b.state()[key])
    c = _net(seed=8)
    _train(c)
    assert any(not np.array_equal(a.params[k], c.params[k]) for k in a.params)


def test_dropout_masks_come_from_the_build_rng() -> None:
    a, b = _net(seed=1), _net(seed=1)
    x, _ = _data()
    np.testing.assert_array_equal(a.forward(x, train=True), b.forward(x, train=True))
    assert not np.array_equal(a.forward(x, train=True), b.forward(x, train=False))


def test_float32_by_default_without_silent_upcasts() -> None:
    net = _net()
    x, t = _data()
    assert net.dtype == np.float32
    _train(net, steps=2)
    net.compute_loss(x, t)  # float64 input is cast once at the door
    net.backward()
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert all(g.dtype == np.float32 for g in net.grads.values())
    assert all(out.dtype == np.float32 for _, out in net.layer_outputs)
    assert net.predict(x).dtype == np.float32


def test_float64_available() -> None:
    net = _net(dtype=np.float64)
    x, t = _data()
    assert all(p.dtype == np.float64 for p in net.params.values())
    assert net.forward(x).dtype == np.float64
    assert np.isfinite(net.compute_loss(x, t))


def test_params_are_the_arrays_the_layers_use() -> None:
    net = _net()
    assert list(net.params) == list(net.grads)
    assert net.params["dense_0.W"] is net.layers[0].params["W"]
    assert "dense_0.b" in net.params
    assert "batch_norm_1.gamma" in net.params
    assert net.params.decay_keys == {"dense_0.W", "dense_4.W", "dense_8.W"}
    net.params["dense_0.W"][...] = 0  # writing through net.params changes the layer
    assert not net.layers[0].params["W"].any()
    assert net.n_params == sum(p.size for p in net.params.values())


def test_wrong_input_shape_names_layer_and_shapes() -> None:
    net = _net()
    with pytest.raises(
        ValueError, match=r"'dense_0' expects input of shape \(N, 6\), received \(4, 5\)"
    ):
        net.forward(np.zeros((4, 5)))
    layer = net.layers[2]
    with pytest.raises(
        ValueError, match=r"'relu_2' expects input of shape \(N, 16\), received \(4, 3\)"
    ):
        layer.forward(np.zeros((4, 3), dtype=np.float32))


def test_conv_input_shape_error() -> None:
    net = build_network(
        "simple_conv_net", input_shape=(1, 12, 12), n_outputs=3, rng=np.random.default_rng(0)
    )
    with pytest.raises(
        ValueError,
        match=r"'conv2d_0' expects input of shape \(N, 1, 12, 12\), received \(2, 1, 10, 12\)",
    ):
        net.forward(np.zeros((2, 1, 10, 12)))


def test_nan_loss_raises_before_updating() -> None:
    net = _net()
    x, t = _data(n=8)
    x[3, 2] = np.nan
    before = {k: v.copy() for k, v in net.params.items()}
    opt = OPTIMIZERS.build("sgd")
    with pytest.raises(NonFiniteError, match=r"not finite.*the input batch"):
        net.train_step(x, t, opt)
    assert opt.iterations == 0
    for key, value in before.items():
        np.testing.assert_array_equal(net.params[key], value)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_from_diverged_weights_names_the_first_place() -> None:
    net = build_network(
        {"name": "mlp", "hidden": [4]}, input_shape=(6,), n_outputs=3, rng=np.random.default_rng(0)
    )
    net.params["dense_2.W"][0, 0] = np.inf
    x, t = _data(n=8)
    with pytest.raises(NonFiniteError, match=r"parameter 'dense_2.W'"):
        net.train_step(x, t, OPTIMIZERS.build("sgd"))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_overflowing_outputs_are_reported() -> None:
    net = build_network(
        {"name": "mlp", "hidden": [4]}, input_shape=(6,), n_outputs=3, rng=np.random.default_rng(0)
    )
    net.params["dense_0.W"][...] = 3e38  # finite weights whose products overflow float32
    x, t = _data(n=8)
    with pytest.raises(NonFiniteError, match=r"output of layer 'dense_0'"):
        net.train_step(x, t, OPTIMIZERS.build("sgd"))


def test_unknown_names_list_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match=r"valid layer names: .*dense.*"):
        LAYERS.build("densee")
    with pytest.raises(
        UnknownNameError, match=r"valid loss names: binary_cross_entropy, cross_entropy"
    ):
        LOSSES.build("crossentropy")
    with pytest.raises(UnknownNameError, match=r"valid network names: .*mlp"):
        build_network("resnet", input_shape=(4,), n_outputs=2, rng=np.random.default_rng(0))
    with pytest.raises(UnknownNameError, match=r"valid activation names"):
        build_network(
            {"name": "mlp", "activation": "relu6"},
            input_shape=(4,),
            n_outputs=2,
            rng=np.random.default_rng(0),
        )
    with pytest.raises(UnknownNameError, match=r"valid initializer names"):
        build_network(
            {"name": "mlp", "init": "kaiming"},
            input_shape=(4,),
            n_outputs=2,
            rng=np.random.default_rng(0),
        )


def test_save_load_round_trip(tmp_path: Path) -> None:
    net = _net(seed=3)
    _train(net, steps=5)
    path = tmp_path / "weights.npz"
    net.save_weights(path)
    other = _net(seed=99)
    x, _ = _data()
    assert not np.allclose(other.predict(x), net.predict(x))
    identity = dict(other.params.items())
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x), net.predict(x))  # running stats restored too
    assert all(other.params[k] is identity[k] for k in identity)  # loaded in place


def test_load_rejects_other_architectures(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    _net().save_weights(path)
    small = build_network(
        {"name": "mlp", "hidden": [4]}, input_shape=(6,), n_outputs=3, rng=np.random.default_rng(0)
    )
    with pytest.raises(ValueError, match=r"missing .*unexpected"):
        small.load_weights(path)


def test_config_round_trip() -> None:
    net = build_network(
        {
            "name": "mlp",
            "hidden": [8],
            "activation": {"name": "leaky_relu", "alpha": 0.2},
            "dropout": 0.1,
        },
        input_shape=(6,),
        n_outputs=3,
        loss={"name": "mse", "output": "softmax"},
        regularizers=[{"name": "l2", "weight_decay": 0.01}],
        rng=np.random.default_rng(0),
        dtype=np.float64,
    )
    config = net.get_config()
    assert config["input_shape"] == [6]
    assert config["dtype"] == "float64"
    assert config["loss"] == {"name": "mse", "output": "softmax"}
    assert config["regularizers"] == [{"name": "l2", "weight_decay": 0.01}]
    assert config["layers"][1] == {"name": "leaky_relu", "alpha": 0.2}
    clone = Sequential.from_config(config, rng=np.random.default_rng(5))
    assert clone.get_config() == config
    for key, value in net.params.items():
        clone.params[key][...] = value
    x, t = _data()
    np.testing.assert_array_equal(clone.predict(x), net.predict(x))
    assert clone.compute_loss(x, t, train=False) == net.compute_loss(x, t, train=False)


def test_repr_is_a_summary() -> None:
    text = repr(build_network("mlp", input_shape=(6,), n_outputs=3, rng=np.random.default_rng(0)))
    assert "dense_0" in text
    assert "(None, 100)" in text
    assert "relu_1" in text
    assert "Total params: 11,103" in text  # 6·100+100 + 100·100+100 + 100·3+3


def test_predict_and_evaluate() -> None:
    net = _net()
    x, t = _data(n=30)
    probs = net.predict(x, batch_size=7)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(probs, net.predict(x), rtol=1e-6)
    result = net.evaluate(x, t, batch_size=7)
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] == pytest.approx(np.mean(probs.argmax(axis=1) == t))
    assert result["loss"] == pytest.approx(net.evaluate(x, t)["loss"], rel=1e-5)


def test_mse_counts_as_classification_on_class_targets() -> None:
    x, t = _data()
    net = build_network(
        "mlp", input_shape=(6,), n_outputs=3, loss="mse", rng=np.random.default_rng(0)
    )
    assert "accuracy" in net.evaluate(x, t)
    assert "accuracy" in net.evaluate(x, np.eye(3)[t])
    regression = build_network(
        "mlp", input_shape=(6,), n_outputs=1, loss="mse", rng=np.random.default_rng(0)
    )
    assert set(regression.evaluate(x, x[:, 0])) == {"loss"}


def test_activations_returns_every_layer() -> None:
    net = _net()
    x, _ = _data(n=5)
    acts = net.activations(x)
    assert list(acts) == [layer.name for layer in net.layers]
    assert acts["dense_0"].shape == (5, 16)
    assert acts["dense_8"].shape == (5, 3)


def test_telemetry_keys_and_values() -> None:
    net = build_network(
        {"name": "mlp", "hidden": [8, 8], "activation": "sigmoid"},
        input_shape=(6,),
        n_outputs=3,
        rng=np.random.default_rng(0),
        telemetry=True,
    )
    x, t = _data()
    before = net.params["dense_0.W"].copy()
    net.train_step(x, t, OPTIMIZERS.build({"name": "sgd", "lr": 0.5}))
    stats = net.last_telemetry
    for key in (
        "act_mean/dense_0",
        "act_std/sigmoid_1",
        "saturation/sigmoid_1",
        "saturation/sigmoid_3",
        "grad_norm/dense_0.W",
        "update_norm/dense_4.W",
    ):
        assert key in stats
    assert stats["update_norm/dense_0.W"] == pytest.approx(
        np.linalg.norm(net.params["dense_0.W"] - before), rel=1e-5
    )
    assert stats["update_norm/dense_0.W"] == pytest.approx(
        0.5 * stats["grad_norm/dense_0.W"], rel=1e-5
    )
    assert "grad_norm/dense_0.b" not in stats
    off = _net()
    _train(off, steps=1)
    assert off.last_telemetry == {}


def test_dead_relu_fraction() -> None:
    net = build_network(
        {"name": "mlp", "hidden": [4]},
        input_shape=(6,),
        n_outputs=3,
        rng=np.random.default_rng(0),
        telemetry=True,
    )
    net.params["dense_0.b"][:2] = -100.0  # two of four units can never fire
    x, t = _data()
    stats = telemetry.layer_statistics(net, x, t)
    assert stats["dead_fraction/relu_1"] == 0.5
    leaky = build_network(
        {"name": "mlp", "hidden": [4], "activation": "leaky_relu"},
        input_shape=(6,),
        n_outputs=3,
        rng=np.random.default_rng(0),
    )
    leaky.params["dense_0.b"][:2] = -100.0
    assert telemetry.layer_statistics(leaky, x, t)["dead_fraction/leaky_relu_1"] == 0.0


def test_saturation_of_large_init_sigmoid() -> None:
    net = build_network(
        {
            "name": "mlp",
            "hidden": [50, 50],
            "activation": "sigmoid",
            "init": {"name": "normal", "std": 10.0},
        },
        input_shape=(6,),
        n_outputs=3,
        rng=np.random.default_rng(0),
    )
    x, t = _data(n=64)
    stats = telemetry.layer_statistics(net, x, t)
    assert stats["saturation/sigmoid_3"] > 0.5


def test_layer_statistics_does_not_change_the_network() -> None:
    net = _net()
    x, t = _data()
    params = {k: v.copy() for k, v in net.params.items()}
    state = {k: v.copy() for k, v in net.state().items()}
    mask_before = net.forward(x, train=True)
    net2 = _net()
    net2.forward(x, train=True)
    stats = telemetry.layer_statistics(net2, x, t)
    assert "grad_norm/dense_0.W" in stats
    assert "loss" in stats
    for k, v in params.items():
        np.testing.assert_array_equal(net2.params[k], v)
    for k, v in state.items():
        np.testing.assert_array_equal(net2.state()[k], net.state()[k])
        del v
    # dropout generators were restored: the next masks are those an untouched network draws
    np.testing.assert_array_equal(net2.forward(x, train=True), net.forward(x, train=True))
    del mask_before


def test_networks_registry_lists_the_builders() -> None:
    assert {
        "mlp",
        "perceptron",
        "two_layer_net",
        "simple_conv_net",
        "deep_conv_net",
        "conv1d_net",
    } <= set(NETWORKS.names())
