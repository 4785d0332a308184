"""Network builders: architectures, arguments, and small nets that actually learn."""

from __future__ import annotations

import numpy as np
import pytest

from models import NETWORKS, OPTIMIZERS, build_network

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_T = np.array([0, 1, 1, 0])


def names(net: object) -> list[str]:
    return [layer.name for layer in net.layers]  # type: ignore[attr-defined]


def test_mlp_layouts() -> None:
    rng = np.random.default_rng(0)
    net = build_network(
        {"name": "mlp", "depth": 2, "width": 7, "batch_norm": True, "dropout": 0.2},
        input_shape=(5,),
        n_outputs=3,
        rng=rng,
    )
    assert names(net) == [
        "dense_0",
        "batch_norm_1",
        "relu_2",
        "dropout_3",
        "dense_4",
        "batch_norm_5",
        "relu_6",
        "dropout_7",
        "dense_8",
    ]
    after = build_network(
        {"name": "mlp", "hidden": [4], "batch_norm": True, "batch_norm_position": "after"},
        input_shape=(5,),
        n_outputs=3,
        rng=rng,
    )
    assert names(after) == ["dense_0", "relu_1", "batch_norm_2", "dense_3"]
    linear = build_network({"name": "mlp", "depth": 0}, input_shape=(5,), n_outputs=3, rng=rng)
    assert names(linear) == ["dense_0"]
    assert linear.n_params == 18
    images = build_network(
        {"name": "mlp", "hidden": [6, 4]}, input_shape=(1, 3, 3), n_outputs=2, rng=rng
    )
    assert names(images)[0] == "flatten_0"
    assert images.params["dense_1.W"].shape == (9, 6)


def test_mlp_init_applies_to_every_dense_layer() -> None:
    net = build_network(
        {"name": "mlp", "hidden": [50], "init": {"name": "constant", "value": 0.05}},
        input_shape=(20,),
        n_outputs=30,
        rng=np.random.default_rng(0),
    )
    assert np.all(net.params["dense_0.W"] == np.float32(0.05))
    assert np.all(net.params["dense_2.W"] == np.float32(0.05))


def test_mlp_maxout_keeps_the_width() -> None:
    net = build_network(
        {"name": "mlp", "hidden": [4], "activation": {"name": "maxout", "pieces": 3}},
        input_shape=(5,),
        n_outputs=2,
        rng=np.random.default_rng(0),
    )
    assert net.params["dense_0.W"].shape == (5, 12)
    assert net.params["dense_2.W"].shape == (4, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "mlp", "depth": -1}, "depth must be an integer >= 0, got -1"),
        ({"name": "mlp", "dropout": 1.5}, r"dropout must be a number in \[0, 1\), got 1.5"),
        (
            {"name": "mlp", "batch_norm_position": "middle"},
            r"batch_norm_position must be one of \['before', 'after'\], got 'middle'",
        ),
        ({"name": "mlp", "dropout_mode": "book"}, "dropout_mode must be one of"),
        ({"name": "mlp", "width": 0}, "width must be an integer >= 1, got 0"),
    ],
)
def test_builder_argument_errors(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_network(spec, input_shape=(4,), n_outputs=2, rng=np.random.default_rng(0))


def test_book_networks() -> None:
    rng = np.random.default_rng(0)
    two = build_network("two_layer_net", input_shape=(784,), n_outputs=10, rng=rng)
    assert names(two) == ["dense_0", "relu_1", "dense_2"]
    assert two.n_params == 784 * 50 + 50 + 50 * 10 + 10
    assert two.params["dense_0.W"].std() == pytest.approx(0.01, rel=0.02)
    assert not two.params["dense_0.b"].any()
    conv = build_network("simple_conv_net", input_shape=(1, 28, 28), n_outputs=10, rng=rng)
    assert names(conv) == [
        "conv2d_0",
        "relu_1",
        "max_pool2d_2",
        "flatten_3",
        "dense_4",
        "relu_5",
        "dense_6",
    ]
    assert conv.n_params == (30 * 25 + 30) + (30 * 12 * 12 * 100 + 100) + (100 * 10 + 10)
    assert conv.predict(np.zeros((2, 1, 28, 28))).shape == (2, 10)
    deep = build_network("deep_conv_net", input_shape=(28, 28), n_outputs=10, rng=rng)
    assert sum(name.startswith("conv2d") for name in names(deep)) == 6
    assert sum(name.startswith("max_pool2d") for name in names(deep)) == 3
    assert deep.forward(np.zeros((2, 28, 28)), train=False).shape == (2, 10)


def test_conv1d_net_for_mnist1d_shapes() -> None:
    rng = np.random.default_rng(0)
    net = build_network("conv1d_net", input_shape=(40,), n_outputs=10, rng=rng)
    shapes = [layer.output_shape for layer in net.layers]
    assert shapes[:7] == [(1, 40), (25, 19), (25, 19), (25, 9), (25, 9), (25, 4), (25, 4)]
    assert net.forward(np.zeros((3, 40))).shape == (3, 10)
    pooled = build_network(
        {"name": "conv1d_net", "global_pool": True}, input_shape=(1, 40), n_outputs=10, rng=rng
    )
    assert pooled.layers[-2].output_shape == (25,)


def test_perceptron_logic_gates_with_the_books_weights() -> None:
    """Seed S1 / book ch02: AND (0.5, 0.5, −0.7), NAND (−0.5, −0.5, 0.7), OR (0.5, 0.5, −0.2);
    XOR = AND(NAND, OR) needs a second layer."""

    def gate(w: list[float], b: float) -> object:
        net = build_network(
            {"name": "perceptron", "activation": "step"},
            input_shape=(2,),
            n_outputs=1,
            loss="mse",
            rng=np.random.default_rng(0),
            dtype=np.float64,
        )
        net.params["dense_0.W"][:, 0] = w
        net.params["dense_0.b"][0] = b
        return net

    AND, NAND, OR = gate([0.5, 0.5], -0.7), gate([-0.5, -0.5], 0.7), gate([0.5, 0.5], -0.2)
    out = {name: g.forward(XOR_X)[:, 0] for name, g in (("and", AND), ("nand", NAND), ("or", OR))}  # type: ignore[attr-defined]
    np.testing.assert_array_equal(out["and"], [0, 0, 0, 1])
    np.testing.assert_array_equal(out["nand"], [1, 1, 1, 0])
    np.testing.assert_array_equal(out["or"], [0, 1, 1, 1])
    xor = AND.forward(np.stack([out["nand"], out["or"]], axis=1))[:, 0]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(xor, XOR_T)


def test_small_mlp_learns_xor_and_a_linear_model_cannot() -> None:
    def fit(spec: dict) -> float:
        net = build_network(spec, input_shape=(2,), n_outputs=2, rng=np.random.default_rng(3))
        opt = OPTIMIZERS.build({"name": "adam", "lr": 0.05})
        for _ in range(300):
            net.train_step(XOR_X, XOR_T, opt)
        return net.evaluate(XOR_X, XOR_T)["accuracy"]

    assert fit({"name": "mlp", "hidden": [8], "activation": "tanh"}) == 1.0
    assert fit({"name": "mlp", "depth": 0}) <= 0.75


def test_mlp_learns_noisy_blobs_with_every_optimizer() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(4, 8))
    t = rng.integers(0, 4, size=400)
    x = centers[t] + rng.normal(size=(400, 8))
    for name, lr in (
        ("sgd", 0.1),
        ("momentum", 0.05),
        ("nesterov", 0.05),
        ("adagrad", 0.1),
        ("rmsprop", 0.01),
        ("adam", 0.01),
        ("adamw", 0.01),
    ):
        net = build_network(
            {"name": "mlp", "hidden": [32], "batch_norm": True, "dropout": 0.1},
            input_shape=(8,),
            n_outputs=4,
            rng=np.random.default_rng(1),
        )
        opt = OPTIMIZERS.build(
            {"name": name, "lr": lr}, schedule={"name": "cosine", "total_steps": 200}
        )
        for step in range(200):
            i = step % 10 * 40
            net.train_step(x[i : i + 40], t[i : i + 40], opt)
        assert net.evaluate(x, t)["accuracy"] > 0.9, name


def test_simple_conv_net_learns_a_toy_image_task() -> None:
    """Bright top half vs bright bottom half: trivial for a conv net, checks conv training end to end."""
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, size=64)
    x = rng.normal(scale=0.3, size=(64, 1, 8, 8))
    x[t == 0, :, :4] += 1.0
    x[t == 1, :, 4:] += 1.0
    net = build_network(
        {
            "name": "simple_conv_net",
            "filters": 4,
            "kernel_size": 3,
            "hidden": 8,
            "init": "he_normal",
        },
        input_shape=(1, 8, 8),
        n_outputs=2,
        rng=rng,
    )
    opt = OPTIMIZERS.build({"name": "adam", "lr": 0.01})
    for _ in range(60):
        net.train_step(x, t, opt)
    assert net.evaluate(x, t)["accuracy"] == 1.0


def test_every_builder_takes_input_shape_and_n_outputs() -> None:
    shapes = {
        "mlp": (6,),
        "perceptron": (6,),
        "two_layer_net": (6,),
        "simple_conv_net": (1, 10, 10),
        "deep_conv_net": (1, 8, 8),
        "conv1d_net": (1, 20),
    }
    assert set(shapes) == set(NETWORKS.names())
    for name, shape in shapes.items():
        net = build_network(name, input_shape=shape, n_outputs=3, rng=np.random.default_rng(0))
        assert net.output_shape == (3,)
