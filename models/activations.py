"""Activation layers, selectable by name: ``ACTIVATIONS.build({"name": "leaky_relu", "alpha": 0.1})``.

Every activation is a parameter-free :class:`~models.base.Layer`, registered in ``ACTIVATIONS`` and
in ``LAYERS`` under the same name, so it can sit in a network directly (``LAYERS.build("relu")``)
or through the ``activation`` layer (``{"name": "activation", "activation": "relu"}``).

Input shape: ``(N, *shape)``. Output shape: the same (``maxout`` divides axis 1 by ``pieces``).
Each activation can also report the statistics the claim studies track (:meth:`Activation.statistics`):
saturation for sigmoid/tanh, the dead-unit fraction for the ReLU family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ._checks import check_int
from ._scratch import Scratch
from .base import Array, Layer, Shape
from .layers import LAYERS
from .registry import Registry, Spec

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "Activation",
    "Identity",
    "LeakyReLU",
    "Maxout",
    "NotDifferentiableError",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Step",
    "Tanh",
    "activation",
    "register_activation",
    "sigmoid",
]

ACTIVATIONS: Registry[type[Layer]] = Registry("activation")

# Thresholds of the "saturated unit" statistic (claim A2: sigmoid output < 0.01 or > 0.99;
# tanh |output| > 0.99), where the local derivative is below 4 % (sigmoid) or 2 % (tanh) of
# its maximum.
SIGMOID_SATURATION = 0.01
TANH_SATURATION = 0.99
# per-sample element count above which ReLU broadcasts a one-sample zeros array (measured)
LARGE_SAMPLE = 4096


class NotDifferentiableError(RuntimeError):
    """``backward`` was called on a layer that has no usable gradient (``step``)."""


def register_activation(name: str) -> Callable[[type[Layer]], type[Layer]]:
    """Register an activation class in ACTIVATIONS and LAYERS under the same name."""

    def decorator(cls: type[Layer]) -> type[Layer]:
        ACTIVATIONS.register(name)(cls)
        LAYERS.register(name)(cls)
        return cls

    return decorator


def sigmoid(x: Array, out: Array | None = None) -> Array:
    """Logistic function σ(x) = 1 / (1 + e^(−x)), to full relative precision for every x.

    For x ≥ 0, e^(−x) ≤ 1 and every step is exact to rounding. For x < 0 this is algebraically
    the stable branch e^x / (1 + e^x) and just as exact: e^(−x) is large but finite, and
    1 / (1 + e^(−x)) keeps its relative precision down to the subnormals (max error ~2 ulp
    against ``scipy.special.expit`` over [−700, 700] in float64, [−87, 87] in float32). Below
    x ≈ −709 (float64; −88.7 in float32) e^(−x) overflows to inf and σ is 0, the correctly
    rounded value up to the subnormal range; the overflow is expected, so it is silenced.

    The former ``0.5·(1 + tanh(x/2))`` lost relative precision below x ≈ −20 (1 + tanh cancels:
    2.22e-16 instead of 2.32e-16 at x = −36, exactly 0 from x = −38). The literal piecewise form
    (``np.where(x < 0, ...)``) needs masked passes, each measured 10-15× slower than this whole
    function on random-sign inputs; this single expression is four dense passes (its cost
    against the tanh form: ``benchmarks/sigmoid_cost.py``).
    """
    with np.errstate(over="ignore", under="ignore"):
        out = np.negative(x, out=out)
        np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


class Activation(Layer):
    """Base of parameter-free elementwise layers; subclasses implement forward/backward."""

    _scratch: Scratch

    def build(
        self, input_shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32
    ) -> Shape:
        self._scratch = Scratch()
        self.dtype = np.dtype(dtype)
        return super().build(input_shape, rng=rng, dtype=dtype)

    def statistics(self, out: Array) -> dict[str, float]:
        """Per-batch statistics of this layer's output ``out`` for telemetry (default: none)."""
        return {}


@register_activation("identity")
class Identity(Activation):
    """f(x) = x (linear units; a network of these collapses to one linear map, claim A13)."""

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        return x

    def backward(self, dout: Array) -> Array:
        return dout


@register_activation("step")
class Step(Activation):
    """Heaviside step ``x > 0`` (the perceptron of the logic-gate examples). Forward only."""

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        return (x > 0).astype(x.dtype)

    def backward(self, dout: Array) -> Array:
        raise NotDifferentiableError(
            f"layer {self.name or 'step'!r}: the step activation has derivative 0 almost everywhere, "
            "so it cannot be trained by backpropagation; use it for forward-only demos "
            "(logic gates) and train with 'sigmoid' or 'identity' instead"
        )


@register_activation("sigmoid")
class Sigmoid(Activation):
    """σ(x) = 1 / (1 + e^(−x)) (see :func:`sigmoid`); σ'(x) = σ(1 − σ) ≤ 0.25."""

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        self._out = sigmoid(x, out=self._scratch.empty("out", x.shape, x.dtype))
        return self._out

    def backward(self, dout: Array) -> Array:
        out = self._out
        dx = self._scratch.empty("dx", out.shape, out.dtype)
        np.subtract(1.0, out, out=dx)
        dx *= out
        dx *= dout
        return dx

    def statistics(self, out: Array) -> dict[str, float]:
        saturated = (out < SIGMOID_SATURATION) | (out > 1.0 - SIGMOID_SATURATION)
        return {"saturation": float(saturated.mean())}


@register_activation("tanh")
class Tanh(Activation):
    """tanh(x); derivative 1 − tanh²."""

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        self._out = np.tanh(x, out=self._scratch.empty("out", x.shape, x.dtype))
        return self._out

    def backward(self, dout: Array) -> Array:
        out = self._out
        dx = self._scratch.empty("dx", out.shape, out.dtype)
        np.multiply(out, out, out=dx)
        np.subtract(1.0, dx, out=dx)
        dx *= dout
        return dx

    def statistics(self, out: Array) -> dict[str, float]:
        return {"saturation": float((np.abs(out) > TANH_SATURATION).mean())}


def _dead_fraction(local_grad_zero: Array) -> float:
    """Fraction of units (all axes but the batch axis) whose local gradient is 0 for every sample."""
    return float(local_grad_zero.all(axis=0).mean())


@register_activation("relu")
class ReLU(Activation):
    """max(0, x). Its gradient is taken as 0 at x = 0."""

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        # np.maximum(x, 0) takes a slow scalar path (2-3x slower than array-array). A zeros
        # array of one sample, broadcast over the batch, is fastest when a sample is large
        # (conv maps: long contiguous inner loops, a cache-resident operand); for small samples
        # the per-row loop overhead dominates and a full-size zeros array wins.
        zero_shape = x.shape[1:] if x[0].size >= LARGE_SAMPLE else x.shape
        zeros = self._scratch.zeros("zeros", zero_shape, x.dtype)
        out = np.maximum(x, zeros, out=self._scratch.empty("out", x.shape, x.dtype))
        self._mask = np.greater(x, zeros, out=self._scratch.empty("mask", x.shape, np.bool_))
        return out

    def backward(self, dout: Array) -> Array:
        return np.multiply(dout, self._mask, out=self._scratch.empty("dx", dout.shape, dout.dtype))

    def statistics(self, out: Array) -> dict[str, float]:
        return {"dead_fraction": _dead_fraction(out <= 0)}


@register_activation("leaky_relu")
class LeakyReLU(Activation):
    """x for x > 0, ``alpha·x`` otherwise (Maas et al. 2013; default alpha 0.01)."""

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = alpha

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        self._slope = np.where(x > 0, 1.0, self.alpha).astype(x.dtype)
        return np.multiply(x, self._slope, out=self._scratch.empty("out", x.shape, x.dtype))

    def backward(self, dout: Array) -> Array:
        return np.multiply(dout, self._slope, out=self._scratch.empty("dx", dout.shape, dout.dtype))

    def statistics(self, out: Array) -> dict[str, float]:
        # a leaky unit is dead only if its gradient is 0 everywhere, i.e. never when alpha != 0
        return {"dead_fraction": _dead_fraction(self._slope == 0)}


@register_activation("elu")
class ELU(Activation):
    """x for x > 0, ``alpha·(e^x − 1)`` otherwise (Clevert et al. 2015; default alpha 1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        self._positive = x > 0
        negative = self.alpha * np.expm1(np.minimum(x, 0.0))
        self._out = np.where(self._positive, x, negative).astype(x.dtype, copy=False)
        return self._out

    def backward(self, dout: Array) -> Array:
        slope = np.where(self._positive, 1.0, self._out + self.alpha).astype(dout.dtype)
        return dout * slope

    def statistics(self, out: Array) -> dict[str, float]:
        zero_grad = ~self._positive & (self._out + self.alpha == 0)
        return {"dead_fraction": _dead_fraction(zero_grad)}


@register_activation("softplus")
class Softplus(Activation):
    """log(1 + e^x), computed as ``max(x, 0) + log1p(e^(−|x|))``; derivative σ(x)."""

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        self._x = x
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))

    def backward(self, dout: Array) -> Array:
        return dout * sigmoid(self._x)


@register_activation("maxout")
class Maxout(Activation):
    """Maxout (Goodfellow et al. 2013): the max over groups of ``pieces`` consecutive units.

    Placed after a dense (or conv) layer of ``pieces·k`` units it learns a convex piecewise-linear
    activation of ``k`` units (seed 003). Input shape ``(N, C, *rest)`` with C divisible by
    ``pieces``; output shape ``(N, C // pieces, *rest)``.
    """

    example_kwargs: ClassVar[dict[str, Any]] = {"pieces": 3}
    example_input_shape: ClassVar[Shape] = (6,)

    def __init__(self, pieces: int = 2) -> None:
        self.pieces = pieces

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        p = check_int("layer 'maxout'", "pieces", self.pieces)
        if not input_shape or input_shape[0] % p:
            raise ValueError(
                f"layer 'maxout': the size of axis 1 of the input must be divisible by pieces={p}, "
                f"got input shape {input_shape}"
            )
        return (input_shape[0] // p, *input_shape[1:])

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        N, C = x.shape[:2]
        grouped = x.reshape(N, C // self.pieces, self.pieces, *x.shape[2:])
        self._argmax = np.expand_dims(grouped.argmax(axis=2), 2)
        self._grouped_shape = grouped.shape
        return np.take_along_axis(grouped, self._argmax, axis=2).squeeze(2)

    def backward(self, dout: Array) -> Array:
        dgrouped = np.zeros(self._grouped_shape, dtype=dout.dtype)
        np.put_along_axis(dgrouped, self._argmax, np.expand_dims(dout, 2), axis=2)
        return dgrouped.reshape(dout.shape[0], -1, *dout.shape[2:])


@register_activation("softmax")
class Softmax(Activation):
    """Softmax over axis 1 (max-subtracted). Use with the ``nll`` loss, or ``mse`` on probabilities."""

    def forward(self, x: Array, *, train: bool = True) -> Array:
        self.check_input(x)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        self._out = e
        return e

    def backward(self, dout: Array) -> Array:
        y = self._out
        return y * (dout - (dout * y).sum(axis=1, keepdims=True))


@LAYERS.register("activation")
def activation(activation: Spec = "relu") -> Layer:
    """The activation layer named by ``activation`` (``{"name": "activation", "activation": "tanh"}``)."""
    layer: Layer = ACTIVATIONS.build(activation)
    return layer


# the gradient-check example for the wrapper (read by models.gradcheck)
activation.example_kwargs = {"activation": "tanh"}
