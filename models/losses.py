"""Losses on raw network outputs, selectable by name: ``LOSSES.build("cross_entropy")``.

Every loss is a batch mean and owns the output link (see :class:`models.base.Loss`):

============================  =====================================  ===========================
name                          value for outputs y (N, K), targets t  link (``predict``)
============================  =====================================  ===========================
``mse``                       (1/N) Σ_n ½ Σ_k (link(y) − t)²          identity, softmax or sigmoid
``mae``                       mean over all entries of |y − t|       identity
``msle``                      mean of (log1p(y⁺) − log1p(t⁺))²       identity
``mape``                      100 · mean of |y − t| / max(|t|, ε)    identity
``hinge``                     mean of max(0, 1 − s·y), s = ±1        identity (margins)
``exponential``               mean of exp(−s·y), s = ±1              identity (margins)
``cross_entropy``             −(1/N) Σ_n log softmax(y)_n[t_n]       softmax
``binary_cross_entropy``      mean of −t log σ(y) − (1−t) log(1−σ(y))  sigmoid
``nll``                       −(1/N) Σ_n log(y_n[t_n] + 1e−7)        identity (y are probabilities)
============================  =====================================  ===========================

Targets are class indices of shape ``(N,)`` or an array shaped like the outputs (one-hot rows,
soft labels or regression values); ``(N,)`` targets for a single output ``(N, 1)`` are values.
``hinge`` and ``exponential`` map {0, 1} targets (and one-hot rows) to s ∈ {−1, +1}, one-vs-rest.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._scratch import Scratch
from .activations import sigmoid
from .base import Array, Loss
from .registry import Registry

__all__ = [
    "LOSSES",
    "BaseLoss",
    "Exponential",
    "Hinge",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "NegativeLogLikelihood",
    "SigmoidBinaryCrossEntropy",
    "SoftmaxCrossEntropy",
    "softmax",
]

LOSSES: Registry[type[Loss]] = Registry("loss")

# The book's `cross_entropy_error` adds delta = 1e-7 inside the log so that log(0) never occurs.
NLL_EPS = 1e-7
# Keras' epsilon: the smallest |t| MAPE divides by.
MAPE_EPS = 1e-7


def softmax(y: Array) -> Array:
    """Row-wise softmax of ``y`` (N, K), max-subtracted so that ±1e4 logits neither overflow nor
    underflow to NaN."""
    e = np.exp(y - y.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


class BaseLoss(Loss):
    """Shared target handling, shape checks and gradient-check examples of the zoo's losses."""

    #: the threshold on ``link(y)`` above which a single-output model predicts class 1
    binary_threshold: ClassVar[float] = 0.5

    @property
    def _scratch(self) -> Scratch:
        # created on first use: __init__ only stores arguments
        scratch = self.__dict__.get("_scratch_")
        if scratch is None:
            scratch = self.__dict__["_scratch_"] = Scratch()
        return scratch

    @property
    def _label(self) -> str:
        return getattr(type(self), "registry_name", type(self).__name__)

    def _check_outputs(self, y: Array) -> None:
        if y.ndim != 2:
            raise ValueError(
                f"loss {self._label!r} expects outputs of shape (N, K), received {y.shape}"
            )

    def _class_indices(self, t: Array, K: int) -> Array:
        """Validate class-index targets of shape (N,) and return them as integers."""
        if t.dtype.kind not in "iu":
            if t.dtype.kind != "f" or not np.array_equal(t, np.round(t)):
                raise ValueError(
                    f"loss {self._label!r}: targets of shape {t.shape} must be integer class "
                    f"indices in [0, {K}), got dtype {t.dtype}"
                )
            t = t.astype(np.intp)
        if t.size and (t.min() < 0 or t.max() >= K):
            raise ValueError(
                f"loss {self._label!r}: class indices must lie in [0, {K}), got values in "
                f"[{t.min()}, {t.max()}]"
            )
        return t

    def _dense_targets(self, y: Array, t: Array) -> Array:
        """Targets as an array shaped like ``y`` in ``y``'s dtype (class indices → one-hot)."""
        t = np.asarray(t)
        N, K = y.shape
        if t.shape == y.shape:
            return t.astype(y.dtype, copy=False)
        if t.shape == (N,):
            if K == 1:
                return t.reshape(N, 1).astype(y.dtype)
            onehot = np.zeros(y.shape, dtype=y.dtype)
            onehot[np.arange(N), self._class_indices(t, K)] = 1
            return onehot
        raise ValueError(
            f"loss {self._label!r}: targets must be class indices of shape ({N},) or an array "
            f"of shape {y.shape}, received shape {t.shape}"
        )

    def _signed_targets(self, y: Array, t: Array) -> Array:
        """Targets in {−1, +1}: one-vs-rest from class indices, one-hot or {0, 1} values."""
        T = self._dense_targets(y, t)
        return 2 * T - 1 if T.size and T.min() >= 0 else T

    def predict_labels(self, y: Array) -> Array:
        """Predicted class per sample: argmax for K > 1, ``link(y) > binary_threshold`` for K = 1."""
        if y.shape[1] == 1:
            return (self.link(y)[:, 0] > self.binary_threshold).astype(np.intp)
        return np.asarray(y.argmax(axis=1))

    #: further target kinds the registry-wide gradient check runs through ``example_batch(rng,
    #: dtype, targets=kind)``, besides the default example (see :func:`_example_class_targets`)
    example_targets: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Array, Array]:
        """Outputs and targets for the gradient check, away from every kink: (N=4, K=3)."""
        y = rng.normal(size=(4, 3))
        return y.astype(dtype), rng.integers(0, 3, size=4)


def _example_class_targets(
    rng: np.random.Generator, idx: Array, K: int, kind: str, dtype: Any
) -> Array:
    """Gradient-check targets of kind ``kind`` built around class indices ``idx`` (N,).

    ``indices``: ``idx`` itself; ``one_hot``: its one-hot rows; ``soft``: probability rows
    (non-negative, summing to 1); ``soft_unnormalized``: non-negative rows whose sums are not 1
    (the first row is the ``[.5, .5, .5]`` of issue 14, sum 1.5; the others sum to 0.5-2.5).
    """
    if kind == "indices":
        return idx
    if kind == "one_hot":
        return np.eye(K, dtype=dtype)[idx]
    if kind == "soft":
        w = rng.uniform(0.1, 1.0, size=(idx.size, K))
        return (w / w.sum(axis=1, keepdims=True)).astype(dtype)
    if kind == "soft_unnormalized":
        w = rng.uniform(0.1, 1.0, size=(idx.size, K))
        w *= rng.uniform(0.5, 2.5, size=(idx.size, 1)) / w.sum(axis=1, keepdims=True)
        w[0] = 0.5
        return w.astype(dtype)
    raise ValueError(
        "example targets must be one of ['indices', 'one_hot', 'soft', 'soft_unnormalized'], "
        f"got {kind!r}"
    )


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Random values with 0.2 <= |v| <= 1.2 (keeps |·| and max(0, ·) away from their kinks)."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 1.2, size=shape)


@LOSSES.register("mse")
class MeanSquaredError(BaseLoss):
    """Mean squared error with the book's ½: L = (1/N) Σ_n ½ Σ_k (p_nk − t_nk)², p = link(y).

    The ½ (the book's ``sum_squared_error``) makes dL/dp = (p − t)/N. The squared error is summed
    over the K outputs and averaged over the batch, so with K = 10 one-hot targets the loss is on
    the book's scale, not divided by K.

    Parameters
    ----------
    output : {"identity", "softmax", "sigmoid"}
        The link applied to the raw outputs before the squared error: ``"softmax"`` gives "MSE on
        probabilities", ``"identity"`` MSE on logits; the network is the same either way, which
        is what the MSE-vs-cross-entropy claims need.
    """

    task: ClassVar[str] = "regression"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("identity", "softmax", "sigmoid")

    def __init__(self, output: str = "identity") -> None:
        self.output = output

    def link(self, y: Array) -> Array:
        if self.output == "softmax":
            return softmax(y)
        if self.output == "sigmoid":
            return sigmoid(y)
        if self.output == "identity":
            return y
        raise ValueError(
            f"loss 'mse': output must be one of {list(self.OUTPUTS)}, got {self.output!r}"
        )

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        self._p = self.link(y)
        self._diff = self._p - self._dense_targets(y, t)
        return 0.5 * float(np.sum(self._diff * self._diff)) / y.shape[0]

    def backward(self) -> Array:
        p, g = self._p, self._diff / self._diff.shape[0]
        if self.output == "softmax":
            return p * (g - np.sum(g * p, axis=1, keepdims=True))
        if self.output == "sigmoid":
            return g * p * (1 - p)
        return g

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Array, Array]:
        return rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=(4, 3)).astype(dtype)


@LOSSES.register("mae")
class MeanAbsoluteError(BaseLoss):
    """Mean absolute error over all entries: mean |y − t| (gradient sign(y − t) / size)."""

    task: ClassVar[str] = "regression"

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        self._diff = y - self._dense_targets(y, t)
        return float(np.mean(np.abs(self._diff)))

    def backward(self) -> Array:
        return np.sign(self._diff) / self._diff.size

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Array, Array]:
        y = rng.normal(size=(4, 3))
        return y.astype(dtype), (y + _away_from_zero(rng, y.shape)).astype(dtype)


@LOSSES.register("msle")
class MeanSquaredLogarithmicError(BaseLoss):
    """Mean squared log error over all entries: mean (log1p(y⁺) − log1p(t⁺))².

    As in Keras, outputs and targets are clipped at 0 (``y⁺ = max(y, 0)``), so negative outputs
    get no gradient; use it for non-negative targets.
    """

    task: ClassVar[str] = "regression"

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        T = np.maximum(self._dense_targets(y, t), 0)
        self._y_pos = y > 0
        self._log_y = np.log1p(np.where(self._y_pos, y, 0))
        self._diff = self._log_y - np.log1p(T)
        return float(np.mean(self._diff * self._diff))

    def backward(self) -> Array:
        d = self._diff
        return np.where(self._y_pos, 2 * d / np.exp(self._log_y), 0).astype(d.dtype) / d.size

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Array, Array]:
        shape = (4, 3)
        return rng.uniform(0.2, 3, shape).astype(dtype), rng.uniform(0.2, 3, shape).astype(dtype)


@LOSSES.register("mape")
class MeanAbsolutePercentageError(BaseLoss):
    """Mean absolute percentage error: 100 · mean |y − t| / max(|t|, 1e−7) (Keras' definition)."""

    task: ClassVar[str] = "regression"

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        T = self._dense_targets(y, t)
        self._diff = y - T
        self._scale = 100.0 / np.maximum(np.abs(T), MAPE_EPS)
        return float(np.mean(np.abs(self._diff) * self._scale))

    def backward(self) -> Array:
        return (np.sign(self._diff) * self._scale / self._diff.size).astype(self._diff.dtype)

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Array, Array]:
        t = _away_from_zero(rng, (4, 3))
        return (t + _away_from_zero(rng, t.shape)).astype(dtype), t.astype(dtype)


@LOSSES.register("hinge")
class Hinge(BaseLoss):
    """Hinge loss, one-vs-rest: mean over all entries of max(0, 1 − s·y) with s ∈ {−1, +1}."""

    binary_threshold: ClassVar[float] = 0.0

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        self._s = self._signed_targets(y, t)
        margin = 1 - self._s * y
        self._active = margin > 0
        return float(np.mean(np.where(self._active, margin, 0)))

    def backward(self) -> Array:
        return (np.where(self._active, -self._s, 0) / self._s.size).astype(self._s.dtype)

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Array, Array]:
        t = rng.integers(0, 3, size=4)
        s = 2 * np.eye(3)[t] - 1
        y = s * (1 + _away_from_zero(rng, s.shape))  # margins 1 − s·y away from the kink at 0
        return y.astype(dtype), t


@LOSSES.register("exponential")
class Exponential(BaseLoss):
    """Exponential loss (AdaBoost's), one-vs-rest: mean over all entries of exp(−s·y), s = ±1."""

    binary_threshold: ClassVar[float] = 0.0

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        self._s = self._signed_targets(y, t)
        self._e = np.exp(-self._s * y)
        return float(np.mean(self._e))

    def backward(self) -> Array:
        return -self._s * self._e / self._e.size


@LOSSES.register("cross_entropy", aliases=("softmax_cross_entropy",))
class SoftmaxCrossEntropy(BaseLoss):
    """Softmax fused with cross-entropy (the book's ``SoftmaxWithLoss``).

    ``log softmax(y) = (y − max y) − log Σ exp(y − max y)``: finite for logits of ±1e4.
    Targets: class indices (N,), one-hot or soft labels (N, K). The loss
    ``−(1/N) Σ_n Σ_k t_nk log softmax(y)_nk`` is PyTorch's for any targets; its gradient is
    ``(softmax(y)·Σ_k t_nk − t) / N``, which is the familiar ``(softmax(y) − t) / N`` when every
    row of ``t`` sums to 1 (class indices, one-hot rows, probability vectors). Rows that do not
    sum to 1 (e.g. ``[.5, .5, .5]``, or multi-label 0/1 rows) get the general form, so the
    gradient always matches the loss.
    """

    example_targets: ClassVar[tuple[str, ...]] = ("one_hot", "soft", "soft_unnormalized")

    def link(self, y: Array) -> Array:
        return softmax(y)

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        N, K = y.shape
        if K < 2:
            raise ValueError(
                "loss 'cross_entropy' needs K >= 2 outputs; use 'binary_cross_entropy' for one"
            )
        t = np.asarray(t)
        sc = self._scratch
        # Row maxima and row sums over K ~ 10 columns: NumPy's axis=1 reductions loop per row,
        # so take the max down the columns of a transposed copy and the sums as a GEMV (5-10x
        # faster at batch 512).
        y_t = sc.empty("y_t", (K, N), y.dtype)
        np.copyto(y_t, y.T)
        row_max = np.maximum.reduce(y_t, axis=0)
        z = np.subtract(y, row_max[:, None], out=sc.empty("z", y.shape, y.dtype))
        e = np.exp(z, out=sc.empty("e", y.shape, y.dtype))
        s = np.dot(e, sc.ones("ones", (K,), y.dtype))[:, None]
        log_s = np.log(s)
        if t.shape == (N,):
            self._idx = self._class_indices(t, K)
            self._rows = np.arange(N)
            self._T: Array | None = None
            loss = (float(log_s.sum()) - float(z[self._rows, self._idx].sum())) / N
        else:
            self._T = self._dense_targets(y, t)
            z -= log_s
            loss = -float(np.sum(self._T * z)) / N
            # Σ_k t_nk as a GEMV; None when every row sums to exactly 1 (one-hot, or soft labels
            # that add up exactly), the common case, whose gradient stays p − t bit for bit
            t_sum = np.dot(self._T, sc.ones("ones", (K,), y.dtype))
            self._t_sum: Array | None = None if np.all(t_sum == 1) else t_sum[:, None]
        e /= s
        self._p = e
        return loss

    def backward(self) -> Array:
        p = self._p
        g = self._scratch.empty("grad", p.shape, p.dtype)
        if self._T is None:
            np.copyto(g, p)
            g[self._rows, self._idx] -= 1
        elif self._t_sum is None:
            np.subtract(p, self._T, out=g)
        else:  # d/dy of −Σ_k t_k log softmax(y)_k = softmax(y)·Σ_k t_k − t
            np.multiply(p, self._t_sum, out=g)
            g -= self._T
        g *= 1.0 / p.shape[0]
        return g

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64, targets: str = "indices"
    ) -> tuple[Array, Array]:
        y, t = super().example_batch(rng, dtype)
        return y, _example_class_targets(rng, t, 3, targets, dtype)


@LOSSES.register("binary_cross_entropy", aliases=("bce",))
class SigmoidBinaryCrossEntropy(BaseLoss):
    """Sigmoid fused with binary cross-entropy, averaged over all entries.

    ``max(y, 0) − y·t + log1p(exp(−|y|))`` is finite for any logit; the gradient is
    ``(σ(y) − t) / (N·K)``. Outputs (N, 1) with targets (N,) or (N, 1) in [0, 1], or (N, K)
    multi-label/one-vs-rest targets (class indices become one-hot).
    """

    def link(self, y: Array) -> Array:
        return sigmoid(y)

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        self._y = y
        self._T = self._dense_targets(y, t)
        loss = np.maximum(y, 0) - y * self._T + np.log1p(np.exp(-np.abs(y)))
        return float(np.mean(loss))

    def backward(self) -> Array:
        return (sigmoid(self._y) - self._T) / self._y.size

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64
    ) -> tuple[Array, Array]:
        return rng.normal(size=(4, 3)).astype(dtype), rng.uniform(0, 1, (4, 3)).astype(dtype)


@LOSSES.register("nll")
class NegativeLogLikelihood(BaseLoss):
    """Negative log-likelihood of probabilities (put a ``softmax`` layer last): the book's
    ``cross_entropy_error``, −(1/N) Σ_n Σ_k t_nk log(p_nk + 1e−7)."""

    def forward(self, y: Array, t: Array) -> float:
        self._check_outputs(y)
        self._p = y
        self._T = self._dense_targets(y, t)
        return -float(np.sum(self._T * np.log(y + NLL_EPS))) / y.shape[0]

    def backward(self) -> Array:
        return -self._T / (self._p + NLL_EPS) / self._p.shape[0]

    example_targets: ClassVar[tuple[str, ...]] = ("one_hot", "soft", "soft_unnormalized")

    @classmethod
    def example_batch(
        cls, rng: np.random.Generator, dtype: Any = np.float64, targets: str = "indices"
    ) -> tuple[Array, Array]:
        y = softmax(rng.normal(size=(4, 3))).astype(dtype)
        return y, _example_class_targets(rng, rng.integers(0, 3, size=4), 3, targets, dtype)
