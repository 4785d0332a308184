"""Input preprocessing fitted on the training split only, and the one-hot helper.

Fitting on train only keeps validation and test statistics out of the model's inputs (no leakage):
the validation split is transformed with the training mean and standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PREPROCESS_METHODS", "Preprocessor", "fit_preprocessor", "one_hot"]

#: ``scale``: divide by the dataset's natural maximum (digits 16, MNIST 255), or standardize when
#: it has none; ``standardize``: z-score with train mean/std; ``none``: raw values.
PREPROCESS_METHODS = ("scale", "standardize", "none")


@dataclass(frozen=True, eq=False)
class Preprocessor:
    """An affine map ``(x - shift) / divisor`` with statistics fitted on the training split.

    ``method`` is the method actually applied (``scale`` without a natural maximum becomes
    ``standardize``).
    """

    method: str
    shift: np.ndarray | float
    divisor: np.ndarray | float
    n_constant_features: int = 0

    def apply(self, X: np.ndarray, dtype: Any) -> np.ndarray:
        """A new array of ``dtype``; ``X`` is never modified."""
        out = np.array(X, dtype=dtype, copy=True)
        if self.method == "none":
            return out
        out -= np.asarray(self.shift, dtype=dtype)
        out /= np.asarray(self.divisor, dtype=dtype)
        return out

    def summary(self) -> dict[str, Any]:
        """What ``meta["preprocess"]`` records (no per-feature arrays: they can be 784 long)."""
        info: dict[str, Any] = {"method": self.method, "fitted_on": "train"}
        if self.method == "scale":
            info["divisor"] = float(np.asarray(self.divisor))
        elif self.method == "standardize":
            info["n_constant_features"] = self.n_constant_features
        return info


def fit_preprocessor(
    method: str, X_train: np.ndarray, *, natural_max: float | None
) -> Preprocessor:
    """Fit ``method`` on ``X_train`` of shape (N, D).

    Standardization computes the mean and standard deviation in float64 along axis 0; features
    with a standard deviation of 0 (the constant border pixels of digits and MNIST) get a divisor
    of 1, so they become 0 instead of NaN.
    """
    if method not in PREPROCESS_METHODS:
        raise ValueError(
            f"preprocess = {method!r} is not allowed: expected one of {PREPROCESS_METHODS}"
        )
    if method == "none":
        return Preprocessor("none", 0.0, 1.0)
    if method == "scale" and natural_max is not None:
        return Preprocessor("scale", 0.0, float(natural_max))
    mean = X_train.mean(axis=0, dtype=np.float64)
    std = X_train.std(axis=0, dtype=np.float64)
    constant = std == 0.0
    return Preprocessor("standardize", mean, np.where(constant, 1.0, std), int(constant.sum()))


def one_hot(y: np.ndarray, n_classes: int | None = None, *, dtype: Any = np.float32) -> np.ndarray:
    """Class indices of shape (N,) → one-hot rows of shape (N, n_classes).

    ``n_classes`` defaults to ``max(y) + 1``. Raises ValueError for non-integer labels, labels
    outside ``[0, n_classes)`` or a ``y`` that is not one-dimensional.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"one_hot: y must have shape (N,), got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"one_hot: y must hold integer class indices, got dtype {y.dtype}")
    k = int(y.max()) + 1 if n_classes is None and y.size else int(n_classes or 0)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(
            f"one_hot: labels must lie in [0, {k}), got min {int(y.min())}, max {int(y.max())}"
        )
    out = np.zeros((y.shape[0], k), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out
