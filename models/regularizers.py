"""Weight penalties, selectable by name: ``REGULARIZERS.build({"name": "l2", "weight_decay": 1e-4})``.

A network applies each regularizer to the parameters its layers list in ``decay_params``
(weights and kernels; never biases or batch-norm gamma/beta): the penalty is added to the loss
and its gradient to the weight gradients.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ._checks import check_number
from .base import Array, Component
from .registry import Registry

__all__ = ["L1", "L2", "REGULARIZERS", "Regularizer"]


class Regularizer(Component, ABC):
    """A penalty R(W) on weights, with ``penalty`` and an in-place ``add_gradient``."""

    weight_decay: float

    def _strength(self) -> float:
        name = getattr(type(self), "registry_name", type(self).__name__)
        return check_number(f"regularizer {name!r}", "weight_decay", self.weight_decay, low=0)

    @abstractmethod
    def penalty(self, W: Array) -> float:
        """R(W) for one array (or a flat view of all weights)."""

    @abstractmethod
    def add_gradient(self, W: Array, dW: Array) -> None:
        """``dW += dR/dW`` in place."""


REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer")


@REGULARIZERS.register("l2")
class L2(Regularizer):
    """L2 weight decay with the book's ½: R = ½·λ·‖W‖², dR/dW = λ·W (λ = ``weight_decay``)."""

    def __init__(self, weight_decay: float = 1e-4) -> None:
        self.weight_decay = weight_decay

    def penalty(self, W: Array) -> float:
        return 0.5 * self._strength() * float(np.dot(W.ravel(), W.ravel()))

    def add_gradient(self, W: Array, dW: Array) -> None:
        dW += self._strength() * W


@REGULARIZERS.register("l1")
class L1(Regularizer):
    """L1 weight decay: R = λ·Σ|W|, dR/dW = λ·sign(W) (subgradient 0 at W = 0)."""

    def __init__(self, weight_decay: float = 1e-4) -> None:
        self.weight_decay = weight_decay

    def penalty(self, W: Array) -> float:
        return self._strength() * float(np.sum(np.abs(W)))

    def add_gradient(self, W: Array, dW: Array) -> None:
        dW += self._strength() * np.sign(W)
