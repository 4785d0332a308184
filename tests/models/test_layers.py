"""Forward values and modes of layers, activations, losses and initializers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES, SpecError
from models.base import Layer
from models.gradcheck import build_example_layer
from models.initializers import compute_fans


def built(spec: Any, input_shape: tuple[int, ...], dtype: Any = np.float64, seed: int = 0) -> Layer:
    layer: Layer = LAYERS.build(spec)
    layer.build(input_shape, rng=np.random.default_rng(seed), dtype=dtype)
    return layer


# -- registry-wide config round trip ---------------------------------------------------------
@pytest.mark.parametrize("name", LAYERS.names())
def test_layer_config_round_trip(name: str) -> None:
    layer, x = build_example_layer(LAYERS.get(name))
    config = layer.get_config()
    clone = LAYERS.build(config)
    assert clone.get_config() == config
    clone.build(layer.input_shape, rng=np.random.default_rng(0), dtype=np.float64)
    for key, value in layer.params.items():
        clone.params[key][...] = value
    if not layer.stochastic and name != "step":
        np.testing.assert_array_equal(clone.forward(x, train=False), layer.forward(x, train=False))


# -- activations -----------------------------------------------------------------------------
def test_activation_values() -> None:
    x = np.array([[-2.0, -0.5, 0.5, 1.0, 2.0]])

    def act(spec: Any) -> np.ndarray:
        layer = ACTIVATIONS.build(spec)
        layer.build((5,), rng=np.random.default_rng(0), dtype=np.float64)
        return layer.forward(x)[0]

    np.testing.assert_allclose(act("sigmoid")[3:], [0.7310585786, 0.8807970780])  # σ(1), σ(2)
    np.testing.assert_allclose(act("relu"), [0, 0, 0.5, 1, 2])
    np.testing.assert_allclose(act({"name": "leaky_relu", "alpha": 0.1}), [-0.2, -0.05, 0.5, 1, 2])
    np.testing.assert_allclose(act("elu")[:2], np.expm1([-2.0, -0.5]))
    np.testing.assert_allclose(act("softplus"), np.log1p(np.exp(x[0])))
    np.testing.assert_allclose(act("tanh"), np.tanh(x[0]))
    np.testing.assert_array_equal(act("step"), [0, 0, 1, 1, 1])
    np.testing.assert_allclose(act("softmax").sum(), 1.0)
    np.testing.assert_array_equal(act("identity"), x[0])


def test_sigmoid_is_finite_without_warnings_at_extremes() -> None:
    with np.errstate(all="raise"):
        layer = built("sigmoid", (2,), dtype=np.float32)
        out = layer.forward(np.array([[-1e4, 1e4]], dtype=np.float32))
    np.testing.assert_array_equal(out, [[0.0, 1.0]])


def test_maxout_groups_consecutive_units() -> None:
    layer = built({"name": "maxout", "pieces": 2}, (6,))
    out = layer.forward(np.array([[1.0, 3.0, -1.0, -2.0, 5.0, 4.0]]))
    np.testing.assert_array_equal(out, [[3.0, -1.0, 5.0]])
    with pytest.raises(ValueError, match="divisible by pieces=4"):
        built({"name": "maxout", "pieces": 4}, (6,))


def test_activation_wrapper_and_direct_names_give_the_same_layer() -> None:
    a = LAYERS.build({"name": "activation", "activation": {"name": "elu", "alpha": 0.5}})
    assert type(a) is type(LAYERS.build("elu"))
    assert a.alpha == 0.5
    assert a.get_config() == {"name": "elu", "alpha": 0.5}


# -- dropout ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["inverted", "scale_at_test"])
def test_dropout_expected_train_output_matches_test_output(mode: str) -> None:
    """Claim R6: E[train output] ≈ test output (relative difference < 1 % over 1e5 draws)."""
    layer = built({"name": "dropout", "rate": 0.4, "mode": mode}, (100_000,))
    x = np.full((1, 100_000), 2.0)
    train_mean = layer.forward(x, train=True).mean()
    test_out = layer.forward(x, train=False)
    assert abs(train_mean - test_out.mean()) / test_out.mean() < 0.01
    expected_test = 2.0 if mode == "inverted" else 2.0 * 0.6
    np.testing.assert_allclose(test_out, expected_test)
    kept = layer.forward(x, train=True)
    assert set(np.unique(kept)) == ({0.0, 2.0 / 0.6} if mode == "inverted" else {0.0, 2.0})


def test_dropout_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\), got 1.0"):
        built({"name": "dropout", "rate": 1.0}, (3,))
    with pytest.raises(
        ValueError, match=r"mode must be one of \['inverted', 'scale_at_test'\], got 'book'"
    ):
        built({"name": "dropout", "mode": "book"}, (3,))


# -- batch norm ------------------------------------------------------------------------------
def test_batch_norm_train_and_eval_modes() -> None:
    layer = built({"name": "batch_norm", "momentum": 0.9}, (3,))
    rng = np.random.default_rng(0)
    x = rng.normal(loc=[1.0, -2.0, 5.0], scale=[1.0, 3.0, 0.5], size=(64, 3))
    out = layer.forward(x, train=True)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-4)
    np.testing.assert_allclose(layer.state["running_mean"], 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(layer.state["running_var"], 0.9 + 0.1 * x.var(axis=0))
    for _ in range(200):
        layer.forward(x, train=True)
    np.testing.assert_allclose(layer.state["running_mean"], x.mean(axis=0), rtol=1e-6)
    layer.params["gamma"][...] = 2.0
    layer.params["beta"][...] = 0.5
    before = layer.state["running_mean"].copy()
    out_eval = layer.forward(x[:5], train=False)
    expected = 2.0 * (x[:5] - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5) + 0.5
    np.testing.assert_allclose(out_eval, expected, rtol=1e-6)
    np.testing.assert_array_equal(layer.state["running_mean"], before)  # eval does not update


def test_batch_norm_is_per_channel_for_images() -> None:
    layer = built("batch_norm", (2, 3, 3))
    x = (
        np.random.default_rng(0).normal(size=(4, 2, 3, 3))
        * np.array([1.0, 10.0])[None, :, None, None]
    )
    out = layer.forward(x, train=True)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    assert layer.params["gamma"].shape == (2,)
    assert layer.decay_params == ()


# -- convolution and pooling -----------------------------------------------------------------
def _direct_conv2d(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, pad: int
) -> np.ndarray:
    N, _C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - kh) // stride + 1, (Wd + 2 * pad - kw) // stride + 1
    out = np.zeros((N, F, OH, OW))
    for i in range(OH):
        for j in range(OW):
            patch = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (2, 1), (3, 2)])
def test_conv2d_matches_direct_loops(stride: int, pad: int) -> None:
    layer = built(
        {"name": "conv2d", "filters": 4, "kernel_size": 3, "stride": stride, "padding": pad},
        (2, 7, 8),
    )
    layer.params["b"][...] = [0.1, -0.2, 0.3, 0.0]
    x = np.random.default_rng(1).normal(size=(3, 2, 7, 8))
    expected = _direct_conv2d(x, layer.params["W"], layer.params["b"], stride, pad)
    out = layer.forward(x)
    assert out.shape == (3, *(layer.output_shape or ()))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_conv1d_matches_numpy_correlate() -> None:
    layer = built({"name": "conv1d", "filters": 1, "kernel_size": 3}, (1, 10))
    x = np.random.default_rng(2).normal(size=(1, 1, 10))
    expected = np.correlate(x[0, 0], layer.params["W"][0, 0], mode="valid")
    np.testing.assert_allclose(layer.forward(x)[0, 0], expected)


def test_conv_initializer_fans() -> None:
    assert compute_fans((30, 3, 5, 5)) == (75, 750)
    assert compute_fans((784, 100)) == (784, 100)
    layer = built({"name": "conv2d", "filters": 64, "kernel_size": 5}, (20, 12, 12), seed=3)
    assert layer.params["W"].std() == pytest.approx(np.sqrt(2 / (20 * 25)), rel=0.03)


def test_max_and_avg_pool_values() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(
        built("max_pool2d", (1, 4, 4)).forward(x)[0, 0], [[5, 7], [13, 15]]
    )
    np.testing.assert_array_equal(
        built("avg_pool2d", (1, 4, 4)).forward(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]]
    )
    overlapping = built(
        {"name": "max_pool2d", "pool_size": 3, "stride": 1, "padding": 1}, (1, 4, 4)
    )
    assert overlapping.forward(x).shape == (1, 1, 4, 4)
    assert overlapping.forward(x)[0, 0, 0, 0] == 5
    np.testing.assert_array_equal(
        built("max_pool1d", (1, 6)).forward(np.array([[[1.0, 3, 2, 0, 5, 4]]])), [[[3, 2, 5]]]
    )


def test_max_pool_gradient_goes_to_one_maximum_on_ties() -> None:
    layer = built("max_pool2d", (1, 2, 2))
    layer.forward(np.ones((1, 1, 2, 2)))
    dx = layer.backward(np.ones((1, 1, 1, 1)))
    assert dx.sum() == 1.0


def test_conv_geometry_errors() -> None:
    with pytest.raises(ValueError, match="does not fit the input shape"):
        built({"name": "conv2d", "filters": 2, "kernel_size": 5}, (1, 3, 3))
    with pytest.raises(ValueError, match=r"expects per-sample input of shape \(C, H, W\)"):
        built({"name": "conv2d", "filters": 2}, (9,))
    with pytest.raises(ValueError, match="filters must be an integer >= 1, got 0"):
        built({"name": "conv2d", "filters": 0}, (1, 5, 5))
    with pytest.raises(ValueError, match="units must be an integer >= 1"):
        built({"name": "dense", "units": -3}, (4,))
    with pytest.raises(ValueError, match="put a 'flatten' layer before it"):
        built({"name": "dense", "units": 3}, (1, 4, 4))


# -- sigmoid precision (issue 14): scipy.special.expit is the oracle -----------------------------
def test_sigmoid_keeps_full_relative_precision_in_float64() -> None:
    from scipy.special import expit

    from models.activations import sigmoid

    x = np.concatenate([np.linspace(-700.0, 700.0, 140_001), [-36.0, -20.0, -1e-300, 0.0, 1e-9]])
    with np.errstate(all="raise"):
        got = sigmoid(x)
    ref = expit(x)
    rel = np.abs(got - ref) / ref
    assert rel.max() < 4 * np.finfo(np.float64).eps, x[rel.argmax()]
    assert sigmoid(np.array([-36.0]))[0] == pytest.approx(2.319522830243569e-16, rel=1e-15)


def test_sigmoid_is_sane_in_float32_and_at_the_extremes() -> None:
    from scipy.special import expit

    from models.activations import sigmoid

    x = np.linspace(-87.0, 87.0, 17_401, dtype=np.float32)
    out = np.empty_like(x)
    with np.errstate(all="raise"):  # no overflow/underflow warning escapes
        got = sigmoid(x, out=out)
        extremes = sigmoid(np.array([-1e4, -800.0, 800.0, 1e4, -np.inf, np.inf]))
        tiny32 = sigmoid(np.array([-1e4, -100.0, 100.0], dtype=np.float32))
    assert got is out and got.dtype == np.float32
    rel = np.abs(got.astype(np.float64) - expit(x.astype(np.float64))) / expit(x.astype(np.float64))
    assert rel.max() < 4 * np.finfo(np.float32).eps
    np.testing.assert_array_equal(extremes, [0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(tiny32, [0.0, 0.0, 1.0])
    assert np.isnan(sigmoid(np.array([np.nan]))[0])


def test_every_sigmoid_of_the_zoo_is_the_precise_one() -> None:
    """The layer, the sigmoid links of mse / binary cross-entropy, BCE's and softplus's
    gradients all agree with expit where the tanh form had no relative precision left."""
    from scipy.special import expit

    x = np.array([[-60.0, -36.0, -5.0, 3.0]])
    ref = expit(x)
    layer = built("sigmoid", (4,))
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-14)
    mse = LOSSES.build({"name": "mse", "output": "sigmoid"})
    np.testing.assert_allclose(mse.link(x), ref, rtol=1e-14)
    bce = LOSSES.build("binary_cross_entropy")
    np.testing.assert_allclose(bce.link(x), ref, rtol=1e-14)
    bce.forward(x, np.zeros_like(x))
    np.testing.assert_allclose(bce.backward(), ref / x.size, rtol=1e-14)
    softplus = built("softplus", (4,))
    softplus.forward(x)
    np.testing.assert_allclose(softplus.backward(np.ones_like(x)), ref, rtol=1e-14)


# -- losses ----------------------------------------------------------------------------------
def test_cross_entropy_is_stable_at_extreme_logits() -> None:
    loss = LOSSES.build("cross_entropy")
    y = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        value = loss.forward(y, np.array([0, 0]))
        grad = loss.backward()
    assert value == pytest.approx(1e4)  # (0 + 2e4) / 2
    np.testing.assert_allclose(grad, np.array([[0, 0, 0], [-0.5, 0.5, 0]]), atol=1e-6)
    assert loss.forward(y, np.array([[1.0, 0, 0], [0, 1.0, 0]])) == pytest.approx(0.0, abs=1e-6)


def test_cross_entropy_soft_targets_not_summing_to_one() -> None:
    """Issue 14's case: the gradient is softmax·Σt − t over N, not softmax − t."""
    loss = LOSSES.build("cross_entropy")
    y, t = np.array([[0.0, 1.0, 2.0]]), np.array([[0.5, 0.5, 0.5]])
    p = np.exp(y) / np.exp(y).sum()
    assert loss.forward(y, t) == pytest.approx(-float(np.sum(t * np.log(p))), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), [[-0.365, -0.133, 0.498]], atol=5e-4)
    np.testing.assert_allclose(loss.backward(), 1.5 * p - t, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_one_hot_gradient_is_the_class_index_one_bit_for_bit(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=(16, 10)).astype(dtype)
    idx = rng.integers(0, 10, size=16)
    by_index, by_rows = LOSSES.build("cross_entropy"), LOSSES.build("cross_entropy")
    assert by_index.forward(y, idx) == pytest.approx(by_rows.forward(y, np.eye(10)[idx]))
    np.testing.assert_array_equal(by_index.backward(), by_rows.backward())


def test_binary_cross_entropy_is_stable_at_extreme_logits() -> None:
    loss = LOSSES.build("binary_cross_entropy")
    y = np.array([[1e4], [-1e4], [1e4]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss.forward(y, np.array([1, 0, 0]))
        grad = loss.backward()
    assert value == pytest.approx(1e4 / 3)
    np.testing.assert_allclose(grad, np.array([[0], [0], [1 / 3]]), atol=1e-6)


def test_mse_uses_the_half_convention_and_links() -> None:
    y = np.array([[1.0, 2.0]])
    assert LOSSES.build("mse").forward(y, np.array([[0.0, 0.0]])) == 2.5  # ½(1 + 4)
    soft = LOSSES.build({"name": "mse", "output": "softmax"})
    p = np.exp(y) / np.exp(y).sum()
    assert soft.forward(y, np.array([1])) == pytest.approx(
        0.5 * (p[0, 0] ** 2 + (p[0, 1] - 1) ** 2)
    )
    np.testing.assert_allclose(soft.link(y), p)
    sig = LOSSES.build({"name": "mse", "output": "sigmoid"})
    s = 1 / (1 + np.exp(-y))
    assert sig.forward(y, np.array([[0.0, 1.0]])) == pytest.approx(
        0.5 * (s[0, 0] ** 2 + (s[0, 1] - 1) ** 2)
    )
    with pytest.raises(
        ValueError, match=r"output must be one of \['identity', 'softmax', 'sigmoid'\]"
    ):
        LOSSES.build({"name": "mse", "output": "tanh"}).forward(y, y)


def test_sigmoid_mse_vanishes_where_cross_entropy_does_not() -> None:
    """Claim L3's arithmetic: at z = −10, t = 1, |∂MSE/∂z| < 1e-3 while |∂BCE/∂z| ≈ 1."""
    z = np.array([[-10.0]])
    mse = LOSSES.build({"name": "mse", "output": "sigmoid"})
    mse.forward(z, np.array([[1.0]]))
    bce = LOSSES.build("binary_cross_entropy")
    bce.forward(z, np.array([[1.0]]))
    assert abs(mse.backward()[0, 0]) < 1e-3
    assert abs(bce.backward()[0, 0]) == pytest.approx(1.0, abs=1e-4)


def test_regression_and_margin_loss_values() -> None:
    y, t = np.array([[1.0], [3.0]]), np.array([[2.0], [1.0]])
    assert LOSSES.build("mae").forward(y, t) == 1.5
    assert LOSSES.build("mape").forward(y, t) == pytest.approx(100 * (0.5 + 2.0) / 2)
    assert LOSSES.build("msle").forward(y, t) == pytest.approx(
        ((np.log(2) - np.log(3)) ** 2 + (np.log(4) - np.log(2)) ** 2) / 2
    )
    margins = np.array([[0.5], [-2.0]])
    assert LOSSES.build("hinge").forward(margins, np.array([1, 0])) == pytest.approx(
        (0.5 + 0.0) / 2
    )
    assert LOSSES.build("exponential").forward(margins, np.array([1, 0])) == pytest.approx(
        (np.exp(-0.5) + np.exp(-2.0)) / 2
    )
    p = np.array([[0.7, 0.2, 0.1]])
    assert LOSSES.build("nll").forward(p, np.array([0])) == pytest.approx(-np.log(0.7 + 1e-7))


def test_loss_target_errors() -> None:
    loss = LOSSES.build("cross_entropy")
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
        loss.forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(
        ValueError,
        match=r"targets must be class indices of shape \(2,\) or an array of shape \(2, 3\)",
    ):
        loss.forward(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"expects outputs of shape \(N, K\)"):
        loss.forward(np.zeros(3), np.zeros(3))
    assert {LOSSES.get(n).task for n in ("mse", "mae", "msle", "mape")} == {"regression"}
    assert {
        LOSSES.get(n).task for n in ("cross_entropy", "nll", "hinge", "binary_cross_entropy")
    } == {"classification"}


# -- initializers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "std"),
    [
        ({"name": "normal", "std": 0.05}, 0.05),
        ({"name": "uniform", "limit": 0.3}, 0.3 / np.sqrt(3)),
        ("glorot_normal", np.sqrt(2 / (400 + 200))),
        ("glorot_uniform", np.sqrt(2 / (400 + 200))),
        ("xavier_book", np.sqrt(1 / 400)),
        ("lecun_normal", np.sqrt(1 / 400)),
        ("he_normal", np.sqrt(2 / 400)),
        ("he_uniform", np.sqrt(2 / 400)),
    ],
)
def test_initializer_scales(spec: Any, std: float) -> None:
    W = INITIALIZERS.build(spec)((400, 200), rng=np.random.default_rng(0))
    assert W.dtype == np.float32
    assert W.std() == pytest.approx(std, rel=0.02)
    assert abs(W.mean()) < 0.05 * std


def test_constant_and_zeros_and_dtype_independence() -> None:
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(
        INITIALIZERS.build({"name": "constant", "value": 0.05})((2, 3), rng=rng),
        0.05 * np.ones((2, 3), np.float32),
    )
    assert not INITIALIZERS.build("zeros")((4,), rng=rng).any()
    a = INITIALIZERS.build("he_normal")((5, 4), rng=np.random.default_rng(1), dtype=np.float64)
    b = INITIALIZERS.build("he_normal")((5, 4), rng=np.random.default_rng(1), dtype=np.float32)
    np.testing.assert_array_equal(a.astype(np.float32), b)
    with pytest.raises(ValueError, match="std must be a number > 0, got -1"):
        INITIALIZERS.build({"name": "normal", "std": -1})((2,), rng=rng)
    with pytest.raises(SpecError, match="accepted: \\['std'\\]"):
        INITIALIZERS.build({"name": "normal", "sigma": 1})
