"""Optimizers, selectable by name: ``OPTIMIZERS.build({"name": "adam", "lr": 1e-3}, schedule=...)``.

``update(params, grads)`` follows the book: matching keys, in-place updates, per-key state created
on the first update. Every optimizer takes ``lr`` and ``schedule`` (a spec, a
:class:`~models.schedules.Schedule` or None); ``current_lr`` is the learning rate of the next
update and ``iterations`` counts the updates done. Updates write into preallocated buffers, so a
step allocates nothing.

A network passes its parameters as a :class:`ParamDict`, whose ``decay_keys`` tell ``adamw``
which arrays to decay (weights, not biases or batch-norm parameters).

References
----------
Polyak 1964 (momentum); Sutskever et al. 2013 (Nesterov momentum in this form); Duchi et al. 2011
(AdaGrad); Tieleman & Hinton 2012 (RMSProp); Kingma & Ba 2015, https://arxiv.org/abs/1412.6980
(Adam); Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101 (AdamW).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping

import numpy as np

from .base import Array, Optimizer
from .registry import Registry, Spec
from .schedules import Schedule, get_schedule

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "GradientOptimizer",
    "Momentum",
    "Nesterov",
    "ParamDict",
    "RMSProp",
]

OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")

# The book's epsilon for AdaGrad/RMSProp (it writes 1e-7 in the denominator).
BOOK_EPS = 1e-7
# Kingma & Ba's (and PyTorch's) epsilon for Adam.
ADAM_EPS = 1e-8


class ParamDict(dict[str, Array]):
    """Parameters by key, plus ``decay_keys``: the keys weight decay applies to (None: all)."""

    decay_keys: frozenset[str] | None = None


class GradientOptimizer(Optimizer):
    """Base of the zoo's optimizers: learning-rate schedule, per-key state and buffers.

    Subclasses implement :meth:`step`, which updates one array in place.
    """

    lr: float
    schedule: Spec | Schedule | None

    @property
    def _schedule(self) -> Schedule:
        schedule = self.__dict__.get("_schedule_obj")
        if schedule is None:
            schedule = self.__dict__["_schedule_obj"] = get_schedule(self.schedule)
        return schedule

    @property
    def current_lr(self) -> float:
        """Learning rate of the next update: ``lr · schedule.factor(iterations)``."""
        return float(self.lr) * self._schedule.factor(self.iterations)

    def state_for(self, key: str, *names: str, like: Array) -> list[Array]:
        """The named per-key arrays (created as zeros shaped like ``like`` on first use)."""
        state: dict[str, dict[str, Array]] = self.__dict__.setdefault("_state", {})
        slots = state.get(key)
        if slots is None or next(iter(slots.values())).shape != like.shape:
            slots = state[key] = {n: np.zeros_like(like) for n in names}
        return [slots[n] for n in names]

    def update(self, params: Mapping[str, Array], grads: Mapping[str, Array]) -> None:
        lr = self.current_lr
        if not lr >= 0 or isinstance(self.lr, bool):
            name = getattr(type(self), "registry_name", type(self).__name__)
            raise ValueError(f"optimizer {name!r}: lr must be a number >= 0, got {self.lr!r}")
        decay_keys = getattr(params, "decay_keys", None)
        for key, p in params.items():
            self.step(key, p, grads[key], lr, decay=decay_keys is None or key in decay_keys)
        self.iterations += 1

    @abstractmethod
    def step(self, key: str, p: Array, g: Array, lr: float, *, decay: bool) -> None:
        """Update ``p`` in place from ``g`` (``decay``: whether weight decay applies to ``p``)."""


@OPTIMIZERS.register("sgd")
class SGD(GradientOptimizer):
    """Plain SGD: ``p ← p − lr·g``."""

    def __init__(self, lr: float = 0.01, schedule: Spec | Schedule | None = None) -> None:
        self.lr = lr
        self.schedule = schedule

    def step(self, key: str, p: Array, g: Array, lr: float, *, decay: bool) -> None:
        (buf,) = self.state_for(key, "scaled", like=p)
        np.multiply(g, lr, out=buf)
        p -= buf


@OPTIMIZERS.register("momentum")
class Momentum(GradientOptimizer):
    """Momentum SGD (the book's form): ``v ← μ·v − lr·g``, ``p ← p + v``."""

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.9, schedule: Spec | Schedule | None = None
    ) -> None:
        self.lr = lr
        self.momentum = momentum
        self.schedule = schedule

    def step(self, key: str, p: Array, g: Array, lr: float, *, decay: bool) -> None:
        v, buf = self.state_for(key, "velocity", "scaled", like=p)
        v *= self.momentum
        np.multiply(g, lr, out=buf)
        v -= buf
        p += v


@OPTIMIZERS.register("nesterov")
class Nesterov(GradientOptimizer):
    """Nesterov momentum: ``v ← μ·v − lr·g``, ``p ← p + μ·v − lr·g``.

    The look-ahead form of Sutskever et al. (PyTorch's ``nesterov=True``). The book's
    ``Nesterov`` uses μ²·v_new instead of μ·v_new, a known slip.
    """

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.9, schedule: Spec | Schedule | None = None
    ) -> None:
        self.lr = lr
        self.momentum = momentum
        self.schedule = schedule

    def step(self, key: str, p: Array, g: Array, lr: float, *, decay: bool) -> None:
        v, buf, buf2 = self.state_for(key, "velocity", "scaled", "lookahead", like=p)
        v *= self.momentum
        np.multiply(g, lr, out=buf)
        v -= buf
        p -= buf
        np.multiply(v, self.momentum, out=buf2)
        p += buf2


@OPTIMIZERS.register("adagrad")
class AdaGrad(GradientOptimizer):
    """AdaGrad: ``h ← h + g²``, ``p ← p − lr·g / (√h + eps)`` (the book's eps 1e-7)."""

    def __init__(
        self, lr: float = 0.01, eps: float = BOOK_EPS, schedule: Spec | Schedule | None = None
    ) -> None:
        self.lr = lr
        self.eps = eps
        self.schedule = schedule

    def step(self, key: str, p: Array, g: Array, lr: float, *, decay: bool) -> None:
        h, buf = self.state_for(key, "sum_sq", "scaled", like=p)
        np.multiply(g, g, out=buf)
        h += buf
        np.sqrt(h, out=buf)
        buf += self.eps
        np.divide(g, buf, out=buf)
        buf *= lr
        p -= buf


@OPTIMIZERS.register("rmsprop")
class RMSProp(GradientOptimizer):
    """RMSProp: ``h ← ρ·h + (1 − ρ)·g²``, ``p ← p − lr·g / (√h + eps)`` (the book's ρ = 0.99)."""

    def __init__(
        self,
        lr: float = 0.01,
        decay_rate: float = 0.99,
        eps: float = BOOK_EPS,
        schedule: Spec | Schedule | None = None,
    ) -> None:
        self.lr = lr
        self.decay_rate = decay_rate
        self.eps = eps
        self.schedule = schedule

    def step(self, key: str, p: Array, g: Array, lr: float, *, decay: bool) -> None:
        h, buf = self.state_for(key, "mean_sq", "scaled", like=p)
        rho = self.decay_rate
        h *= rho
        np.multiply(g, g, out=buf)
        buf *= 1 - rho
        h += buf
        np.sqrt(h, out=buf)
        buf += self.eps
        np.divide(g, buf, out=buf)
        buf *= lr
        p -= buf


@OPTIMIZERS.register("adam")
class Adam(GradientOptimizer):
    """Adam with bias correction (Kingma & Ba 2015).

    ``m ← β1·m + (1 − β1)·g``, ``v ← β2·v + (1 − β2)·g²``,
    ``p ← p − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + eps)`` with t the 1-based update count.
    """

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = ADAM_EPS,
        schedule: Spec | Schedule | None = None,
    ) -> None:
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.schedule = schedule

    def step(self, key: str, p: Array, g: Array, lr: float, *, decay: bool) -> None:
        m, v, buf = self.state_for(key, "m", "v", "scaled", like=p)
        b1, b2, t = self.beta1, self.beta2, self.iterations + 1
        m *= b1
        np.multiply(g, 1 - b1, out=buf)
        m += buf
        v *= b2
        np.multiply(g, g, out=buf)
        buf *= 1 - b2
        v += buf
        np.sqrt(v, out=buf)
        buf *= 1.0 / math.sqrt(1 - b2**t)
        buf += self.eps
        np.divide(m, buf, out=buf)
        buf *= lr / (1 - b1**t)
        p -= buf


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019):
    ``p ← p·(1 − lr·weight_decay)`` and then the Adam step, for the keys in
    ``params.decay_keys`` (every key when ``params`` is a plain dict, like PyTorch)."""

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = ADAM_EPS,
        weight_decay: float = 0.01,
        schedule: Spec | Schedule | None = None,
    ) -> None:
        super().__init__(lr, beta1, beta2, eps, schedule)
        self.weight_decay = weight_decay

    def step(self, key: str, p: Array, g: Array, lr: float, *, decay: bool) -> None:
        if decay and self.weight_decay:
            p *= 1.0 - lr * self.weight_decay
        super().step(key, p, g, lr, decay=decay)
