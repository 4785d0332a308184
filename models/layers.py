"""Core layers, selectable by name: ``LAYERS.build({"name": "dense", "units": 100})``.

``dense``, ``dropout``, ``batch_norm``, ``flatten`` and ``reshape`` live here; activations
(:mod:`models.activations`) and convolution/pooling (:mod:`models.conv`) register themselves in the
same ``LAYERS`` registry.

Conventions shared by every layer of the zoo:

* ``forward`` caches what ``backward`` needs (the book's contract); ``backward(dout)`` fills
  ``grads`` in place (the arrays never change identity, so a network can hold views of them) and
  returns ``dx`` without modifying ``dout``.
* Returned arrays may be work buffers owned by the layer: they stay valid until the layer's next
  ``forward`` (resp. ``backward``) call. Copy an output you want to keep.
* ``example_kwargs`` / ``example_input_shape`` (class attributes) are the arguments and per-sample
  input shape the registry-wide gradient check builds the layer with; a layer whose constructor
  needs arguments must declare them, or the check fails and says so.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ._checks import check_choice, check_int, check_number
from ._scratch import Scratch
from .base import Array, Layer, Shape
from .initializers import get_initializer
from .registry import Registry, Spec

__all__ = [
    "LAYERS",
    "NO_INPUT_GRAD",
    "BatchNorm",
    "Dense",
    "Dropout",
    "Flatten",
    "Reshape",
    "add_weights",
]

LAYERS: Registry[Any] = Registry("layer")

#: What ``backward`` returns when ``needs_input_grad`` is False (nobody reads it).
NO_INPUT_GRAD: Array = np.empty(0)
NO_INPUT_GRAD.flags.writeable = False


def add_weights(
    layer: Any, kernel_shape: Shape, n_out: int, *, rng: np.random.Generator, dtype: Any
) -> None:
    """Create ``W`` (``kernel_shape``, from ``layer.init``) and, if ``layer.use_bias``, ``b``
    (``(n_out,)``, from ``layer.bias_init``), each with a zero gradient."""
    layer.params["W"] = get_initializer(layer.init)(kernel_shape, rng=rng, dtype=dtype)
    layer.grads["W"] = np.zeros_like(layer.params["W"])
    if layer.use_bias:
        layer.params["b"] = get_initializer(layer.bias_init)((n_out,), rng=rng, dtype=dtype)
        layer.grads["b"] = np.zeros_like(layer.params["b"])


@LAYERS.register("dense", aliases=("affine",))
class Dense(Layer):
    """Fully connected layer ``out = x @ W + b`` (the book's ``Affine``).

    Parameters
    ----------
    units : int
        Number of output units.
    init : spec
        Initializer of ``W`` (shape ``(D, units)``), e.g. ``"he_normal"``.
    bias_init : spec
        Initializer of ``b`` (shape ``(units,)``).
    use_bias : bool
        Whether to add ``b``.

    Input shape ``(N, D)``; output shape ``(N, units)``. Weight decay applies to ``W`` only.
    """

    decay_params: ClassVar[tuple[str, ...]] = ("W",)
    example_kwargs: ClassVar[dict[str, Any]] = {"units": 3}
    example_input_shape: ClassVar[Shape] = (4,)

    def __init__(
        self,
        units: int,
        init: Spec = "he_normal",
        bias_init: Spec = "zeros",
        use_bias: bool = True,
    ) -> None:
        self.units = units
        self.init = init
        self.bias_init = bias_init
        self.use_bias = use_bias

    def build(
        self, input_shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> Shape:
        units = check_int("layer 'dense'", "units", self.units)
        if len(input_shape) != 1:
            raise ValueError(
                f"layer {self.name or 'dense'!r} expects per-sample input of shape (D,), got "
                f"{tuple(input_shape)}; put a 'flatten' layer before it"
            )
        self._scratch = Scratch()
        add_weights(self, (input_shape[0], units), units, rng=rng, dtype=dtype)
        return super().build(input_shape, rng=rng, dtype=dtype)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (int(self.units),)

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        W = self.params["W"]
        x = x.astype(W.dtype, copy=False)
        self._x = x
        out = np.dot(x, W, out=self._scratch.empty("out", (x.shape[0], W.shape[1]), W.dtype))
        if self.use_bias:
            out += self.params["b"]
        return out

    def backward(self, dout: Array) -> Array:
        x = self._x
        W = self.params["W"]
        np.dot(x.T, dout, out=self.grads["W"])
        if self.use_bias:
            # a GEMV with a ones vector: ~10x faster than np.sum(axis=0) at batch 512
            ones = self._scratch.ones("ones", (x.shape[0],), W.dtype)
            np.dot(ones, dout, out=self.grads["b"])
        if not self.needs_input_grad:
            return NO_INPUT_GRAD
        return np.dot(dout, W.T, out=self._scratch.empty("dx", x.shape, W.dtype))


@LAYERS.register("dropout")
class Dropout(Layer):
    """Dropout (Srivastava et al. 2014, https://jmlr.org/papers/v15/srivastava14a.html): drop each
    unit with probability ``rate``.

    Parameters
    ----------
    rate : float
        Drop probability in [0, 1).
    mode : {"inverted", "scale_at_test"}
        ``"inverted"`` (default; Keras/PyTorch) scales kept units by 1/(1−rate) during training and
        is the identity at test time. ``"scale_at_test"`` is the book's and the seeds' variant:
        kept units pass unscaled during training and every unit is multiplied by (1−rate) at
        test time. Both have the same expected output (claim R6).

    Input and output shape: ``(N, *shape)``. Masks come from the generator given by ``set_rng``
    (a network spawns one per dropout layer), so a seed fixes every mask.
    """

    stochastic: ClassVar[bool] = True
    MODES: ClassVar[tuple[str, ...]] = ("inverted", "scale_at_test")
    example_kwargs: ClassVar[dict[str, Any]] = {"rate": 0.3}

    def __init__(self, rate: float = 0.5, mode: str = "inverted") -> None:
        self.rate = rate
        self.mode = mode

    def build(
        self, input_shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> Shape:
        check_number("layer 'dropout'", "rate", self.rate, low=0, high=1)
        check_choice("layer 'dropout'", "mode", self.mode, self.MODES)
        self._scratch = Scratch()
        self._rng = rng
        return super().build(input_shape, rng=rng, dtype=dtype)

    def set_rng(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        rate = float(self.rate)
        if not train or rate == 0.0:
            self._mask = None
            if rate and self.mode == "scale_at_test":
                return x * (1.0 - rate)
            return x
        draw_dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        u = self._rng.random(dtype=draw_dtype, out=self._scratch.empty("u", x.shape, draw_dtype))
        keep = np.greater_equal(u, rate, out=self._scratch.empty("keep", x.shape, np.bool_))
        scale = 1.0 / (1.0 - rate) if self.mode == "inverted" else 1.0
        self._mask = np.multiply(keep, scale, out=self._scratch.empty("mask", x.shape, x.dtype))
        return np.multiply(x, self._mask, out=self._scratch.empty("out", x.shape, x.dtype))

    def backward(self, dout: Array) -> Array:
        if self._mask is None:  # evaluation-mode forward
            rate = float(self.rate)
            return dout * (1.0 - rate) if rate and self.mode == "scale_at_test" else dout
        return np.multiply(dout, self._mask, out=self._scratch.empty("dx", dout.shape, dout.dtype))


@LAYERS.register("batch_norm")
class BatchNorm(Layer):
    """Batch normalization (Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167), per feature or
    per channel.

    Parameters
    ----------
    momentum : float
        Running-average decay: ``running = momentum·running + (1 − momentum)·batch`` (the book's
        0.9).
    eps : float
        Added to the variance before the square root.

    Input shape ``(N, D)`` (one statistic per feature) or ``(N, C, *spatial)`` (one per channel,
    pooled over N and the spatial axes); output shape: the same. In training mode the batch
    statistics are used and the running mean/variance (biased, as in the book) are updated; in
    evaluation mode the running statistics are used. ``gamma``/``beta`` are never weight-decayed.
    The running variance starts at 1 (the book starts it at 0, which makes the first evaluations
    before any update divide by sqrt(eps)).
    """

    example_input_shape: ClassVar[Shape] = (3,)

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5) -> None:
        self.momentum = momentum
        self.eps = eps

    def build(
        self, input_shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> Shape:
        check_number("layer 'batch_norm'", "momentum", self.momentum, low=0, high=1)
        check_number("layer 'batch_norm'", "eps", self.eps, low=0, low_open=True)
        if len(input_shape) < 1:
            raise ValueError("layer 'batch_norm' needs inputs with a feature/channel axis")
        C = int(input_shape[0])
        self._axes = (0, *range(2, len(input_shape) + 1))
        self._bshape = (1, C) + (1,) * (len(input_shape) - 1)
        self.params["gamma"] = np.ones(C, dtype=dtype)
        self.params["beta"] = np.zeros(C, dtype=dtype)
        self.grads["gamma"] = np.zeros(C, dtype=dtype)
        self.grads["beta"] = np.zeros(C, dtype=dtype)
        self.state["running_mean"] = np.zeros(C, dtype=dtype)
        self.state["running_var"] = np.ones(C, dtype=dtype)
        return super().build(input_shape, rng=rng, dtype=dtype)

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        axes, bshape = self._axes, self._bshape
        gamma = self.params["gamma"].reshape(bshape)
        beta = self.params["beta"].reshape(bshape)
        self._train = train
        if train:
            mu = x.mean(axis=axes, keepdims=True)
            xc = x - mu
            var = np.mean(xc * xc, axis=axes, keepdims=True)
            self._inv_std = 1.0 / np.sqrt(var + self.eps)
            m = float(self.momentum)
            running_mean, running_var = self.state["running_mean"], self.state["running_var"]
            running_mean *= m
            running_mean += (1.0 - m) * mu.ravel()
            running_var *= m
            running_var += (1.0 - m) * var.ravel()
        else:
            mean = self.state["running_mean"].reshape(bshape)
            xc = x - mean
            self._inv_std = 1.0 / np.sqrt(self.state["running_var"].reshape(bshape) + self.eps)
        self._xhat = xc * self._inv_std
        return self._xhat * gamma + beta

    def backward(self, dout: Array) -> Array:
        axes, xhat = self._axes, self._xhat
        np.sum(dout, axis=axes, out=self.grads["beta"])
        np.sum(dout * xhat, axis=axes, out=self.grads["gamma"])
        dxhat = dout * self.params["gamma"].reshape(self._bshape)
        if not self._train:  # running statistics are constants
            return dxhat * self._inv_std
        M = xhat.size // xhat.shape[1]
        # d/dx of (x − μ)/σ with μ, σ² taken over the same batch (the three-term formula)
        dx = M * dxhat
        dx -= dxhat.sum(axis=axes, keepdims=True)
        dx -= xhat * np.sum(dxhat * xhat, axis=axes, keepdims=True)
        dx *= self._inv_std / M
        return dx


@LAYERS.register("flatten")
class Flatten(Layer):
    """Flatten every axis but the batch axis. Input ``(N, *shape)``; output ``(N, prod(shape))``."""

    example_input_shape: ClassVar[Shape] = (2, 3)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: Array) -> Array:
        assert self.input_shape is not None
        return dout.reshape(dout.shape[0], *self.input_shape)


@LAYERS.register("reshape")
class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (e.g. MNIST-1D's (40,) to (1, 40) for conv1d).

    Input ``(N, *shape)``; output ``(N, *target_shape)`` with the same number of elements.
    """

    example_kwargs: ClassVar[dict[str, Any]] = {"target_shape": [3, 2]}
    example_input_shape: ClassVar[Shape] = (6,)

    def __init__(self, target_shape: list[int] | tuple[int, ...]) -> None:
        self.target_shape = target_shape

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        target = tuple(int(d) for d in self.target_shape)
        if math.prod(target) != math.prod(input_shape) or any(d < 1 for d in target):
            raise ValueError(
                f"layer 'reshape': target_shape {list(target)} must have the same number of "
                f"elements as the input shape {tuple(input_shape)}"
            )
        return target

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        assert self.output_shape is not None
        return x.reshape(x.shape[0], *self.output_shape)

    def backward(self, dout: Array) -> Array:
        assert self.input_shape is not None
        return dout.reshape(dout.shape[0], *self.input_shape)
