"""Weight initializers, selectable by name: ``INITIALIZERS.build("he_normal")(shape, rng=rng)``.

Fans follow Keras: a dense weight of shape ``(fan_in, fan_out)``; a convolution kernel of shape
``(out_channels, in_channels, *kernel)`` has ``fan_in = in_channels·kh·kw`` and
``fan_out = out_channels·kh·kw``.

Samples are drawn in float64 and then cast, so one seed gives the same weights (up to rounding)
whatever the network's dtype.

References
----------
Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural networks",
https://proceedings.mlr.press/v9/glorot10a.html.
He et al. 2015, "Delving Deep into Rectifiers", https://arxiv.org/abs/1502.01852.
LeCun et al. 1998, "Efficient BackProp".
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ._checks import check_number
from .base import Array, Component, Shape
from .registry import Registry, Spec

__all__ = [
    "INITIALIZERS",
    "BookXavier",
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Initializer",
    "LecunNormal",
    "Normal",
    "Uniform",
    "Zeros",
    "compute_fans",
    "get_initializer",
]


def compute_fans(shape: Shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight array.

    Parameters
    ----------
    shape : tuple of int
        ``(D_in, D_out)`` for dense weights, ``(F, C, *kernel)`` for convolution kernels,
        ``(D,)`` for vectors (fan_in = fan_out = D).
    """
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive = math.prod(shape[2:])
    return int(shape[1]) * receptive, int(shape[0]) * receptive


class Initializer(Component, ABC):
    """Base initializer: ``init(shape, rng=rng, dtype=np.float32) -> ndarray``."""

    def __call__(self, shape: Shape, *, rng: np.random.Generator, dtype: Any = np.float32) -> Array:
        return np.asarray(self.sample(tuple(shape), rng), dtype=np.float64).astype(dtype)

    @abstractmethod
    def sample(self, shape: Shape, rng: np.random.Generator) -> Array:
        """Draw a float64 array of ``shape``."""


INITIALIZERS: Registry[type[Initializer]] = Registry("initializer")


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    """All zeros (biases; and the symmetry demonstration for weights)."""

    def sample(self, shape: Shape, rng: np.random.Generator) -> Array:
        return np.zeros(shape)


@INITIALIZERS.register("constant")
class Constant(Initializer):
    """Every entry equal to ``value``: hidden units start identical and stay identical (claim I1)."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def sample(self, shape: Shape, rng: np.random.Generator) -> Array:
        return np.full(shape, float(self.value))


@INITIALIZERS.register("normal")
class Normal(Initializer):
    """N(0, std²): the book's ``weight_init_std * np.random.randn`` (default std 0.01)."""

    def __init__(self, std: float = 0.01) -> None:
        self.std = std

    def sample(self, shape: Shape, rng: np.random.Generator) -> Array:
        return check_number(
            "initializer 'normal'", "std", self.std, low=0, low_open=True
        ) * rng.standard_normal(shape)


@INITIALIZERS.register("uniform")
class Uniform(Initializer):
    """U(−limit, limit)."""

    def __init__(self, limit: float = 0.05) -> None:
        self.limit = limit

    def sample(self, shape: Shape, rng: np.random.Generator) -> Array:
        limit = check_number("initializer 'uniform'", "limit", self.limit, low=0, low_open=True)
        return rng.uniform(-limit, limit, shape)


class _FanNormal(Initializer):
    """N(0, scale / fan) with ``fan`` chosen by the subclass."""

    scale: float = 1.0

    def fan(self, shape: Shape) -> float:
        return float(compute_fans(shape)[0])

    def sample(self, shape: Shape, rng: np.random.Generator) -> Array:
        return math.sqrt(self.scale / self.fan(shape)) * rng.standard_normal(shape)


class _FanUniform(_FanNormal):
    """U(−limit, limit) with variance ``scale / fan`` (limit = sqrt(3·scale/fan))."""

    def sample(self, shape: Shape, rng: np.random.Generator) -> Array:
        limit = math.sqrt(3.0 * self.scale / self.fan(shape))
        return rng.uniform(-limit, limit, shape)


@INITIALIZERS.register("glorot_normal")
class GlorotNormal(_FanNormal):
    """Glorot (Xavier) normal: Var = 2 / (fan_in + fan_out)."""

    scale = 2.0

    def fan(self, shape: Shape) -> float:
        return float(sum(compute_fans(shape)))


@INITIALIZERS.register("glorot_uniform")
class GlorotUniform(_FanUniform):
    """Glorot (Xavier) uniform: U(±sqrt(6 / (fan_in + fan_out))), Var = 2 / (fan_in + fan_out)."""

    scale = 2.0

    def fan(self, shape: Shape) -> float:
        return float(sum(compute_fans(shape)))


@INITIALIZERS.register("xavier_book")
class BookXavier(_FanNormal):
    """The book's "Xavier": N(0, 1/fan_in), i.e. std = 1/sqrt(fan_in).

    *Deep Learning from Scratch* (``MultiLayerNet``) calls this Xavier; it is LeCun's normal
    scheme, not Glorot's 2/(fan_in + fan_out), so it has its own name here (same numbers as
    ``lecun_normal``).
    """

    scale = 1.0


@INITIALIZERS.register("he_normal")
class HeNormal(_FanNormal):
    """He normal: N(0, 2/fan_in), for ReLU layers."""

    scale = 2.0


@INITIALIZERS.register("he_uniform")
class HeUniform(_FanUniform):
    """He uniform: U(±sqrt(6/fan_in)), Var = 2/fan_in."""

    scale = 2.0


@INITIALIZERS.register("lecun_normal")
class LecunNormal(_FanNormal):
    """LeCun normal: N(0, 1/fan_in) (untruncated)."""

    scale = 1.0


def get_initializer(spec: Spec | Initializer) -> Initializer:
    """An initializer from a spec, or the object itself."""
    if isinstance(spec, Initializer):
        return spec
    return INITIALIZERS.build(spec)
