"""Perturbations of the training split only: label noise, regression outliers, input noise.

A ``data:`` block may carry a ``perturb`` mapping; every key is optional and defaults to off::

    data:
      name: digits
      perturb:
        label_noise: 0.2       # classification: this fraction of training labels is flipped
        outlier_fraction: 0.1  # regression: this fraction of training targets is shifted ...
        outlier_k: 5.0         # ... by ±k standard deviations of that target column
        input_noise: 0.1       # Gaussian noise of this std added to the (preprocessed) inputs

Validation and test splits are never touched, so a perturbation measures what it does to
*learning* (a model fitted to noisy labels, evaluated on clean ones). The perturbation is drawn
from its own stream, derived from the data seed: the same spec gives the same flipped labels in
every run, and changing a perturbation does not move the split. Because the ``perturb`` block is
part of the resolved data config, every value is logged as an MLflow param
(``data.perturb.label_noise``) and can be a searched parameter of a study or a claim.

Exact counts, not Bernoulli draws: ``label_noise: 0.2`` on 1257 samples flips exactly
``round(0.2 · 1257) = 251`` labels, each to a class drawn uniformly among the *other* classes
(so a flipped label is always wrong). ``input_noise`` is in units of the model's inputs (after
``preprocess``), so it means the same thing for ``standardize`` whatever the raw scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.data.base import DataError, Split
from harness.seeding import derive_seed

__all__ = ["PERTURB_DEFAULTS", "apply_perturbation", "resolve_perturb"]

#: Every perturbation key and its "off" value.
PERTURB_DEFAULTS: dict[str, float] = {
    "label_noise": 0.0,
    "outlier_fraction": 0.0,
    "outlier_k": 5.0,
    "input_noise": 0.0,
}

_KINDS = {
    "label_noise": "a fraction in [0, 1)",
    "outlier_fraction": "a fraction in [0, 1)",
    "outlier_k": "a finite number > 0 (standard deviations)",
    "input_noise": "a finite number >= 0 (standard deviation, in input units)",
}


def _bad(dataset: str, key: str, value: Any) -> DataError:
    return DataError.invalid(dataset, f"perturb.{key}", value, _KINDS[key])


def resolve_perturb(dataset: str, task: str, raw: Any) -> dict[str, float] | None:
    """Validate a ``perturb`` block and fill its defaults; ``None`` stays ``None`` (off).

    Raises :class:`DataError` naming ``perturb.<key>``, the value and what is allowed, including
    a perturbation that does not fit the task (label noise on a regression dataset).
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        err = DataError.invalid(
            dataset, "perturb", raw, f"null or a mapping with keys {', '.join(PERTURB_DEFAULTS)}"
        )
        raise err
    out = dict(PERTURB_DEFAULTS)
    for key, value in raw.items():
        if key not in PERTURB_DEFAULTS:
            raise DataError.invalid(
                dataset, f"perturb.{key}", value, f"one of the keys {', '.join(PERTURB_DEFAULTS)}"
            )
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value):
            raise _bad(dataset, key, value)
        v = float(value)
        if key in ("label_noise", "outlier_fraction") and not 0.0 <= v < 1.0:
            raise _bad(dataset, key, value)
        if key == "outlier_k" and v <= 0:
            raise _bad(dataset, key, value)
        if key == "input_noise" and v < 0:
            raise _bad(dataset, key, value)
        out[key] = v
    if task != "classification" and out["label_noise"] > 0:
        raise DataError.invalid(
            dataset,
            "perturb.label_noise",
            raw.get("label_noise"),
            f"0 for {dataset!r}, a regression dataset (use outlier_fraction for noisy targets)",
        )
    if task == "classification" and out["outlier_fraction"] > 0:
        raise DataError.invalid(
            dataset,
            "perturb.outlier_fraction",
            raw.get("outlier_fraction"),
            f"0 for {dataset!r}, a classification dataset (use label_noise)",
        )
    return out


def flip_labels(
    y: np.ndarray, fraction: float, n_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(fraction · N)`` labels of ``y`` (shape (N,)) to another class.

    Returns the new labels and the indices that were flipped. Every flipped label differs from
    the original one: the new class is uniform over the ``n_classes − 1`` others.
    """
    n = y.shape[0]
    k = round(fraction * n)
    idx = np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    out = y.astype(np.int64, copy=True)
    if k and n_classes > 1:
        shift = rng.integers(1, n_classes, size=k)  # 1..C-1: never back to the same class
        out[idx] = (out[idx] + shift) % n_classes
    return out, idx


def shift_outliers(
    y: np.ndarray, fraction: float, k_sd: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shift exactly ``round(fraction · N)`` rows of ``y`` (shape (N, T)) by ±``k_sd`` s.d.

    The standard deviation is each target column's, on the clean training targets; the sign is
    drawn per row. Returns the new targets and the shifted row indices.
    """
    n = y.shape[0]
    k = round(fraction * n)
    out = np.array(y, dtype=np.float64, copy=True)
    idx = np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    if k:
        sd = out.reshape(n, -1).std(axis=0)
        sign = rng.choice(np.array([-1.0, 1.0]), size=k)
        flat = out.reshape(n, -1)
        flat[idx] += sign[:, None] * k_sd * sd[None, :]
    return out.astype(y.dtype), idx


def apply_perturbation(
    train: Split,
    perturb: Mapping[str, float] | None,
    *,
    task: str,
    n_classes: int | None,
    seed: int,
) -> tuple[Split, dict[str, Any]]:
    """The perturbed training split and what was done (for ``meta["perturb"]``).

    ``perturb`` is a resolved block (:func:`resolve_perturb`); ``None`` or all-off returns the
    split unchanged. Arrays of the returned split are new and read-only.
    """
    if not perturb or not any(
        perturb[k] > 0 for k in ("label_noise", "outlier_fraction", "input_noise")
    ):
        return train, {}
    rng = np.random.default_rng(derive_seed(seed, "data.perturb"))
    X, y = train.X, train.y
    info: dict[str, Any] = {"applied_to": "train", **dict(perturb)}
    if perturb["label_noise"] > 0 and task == "classification":
        y, idx = flip_labels(y, perturb["label_noise"], int(n_classes or (y.max() + 1)), rng)
        info["n_flipped"] = int(idx.size)
    if perturb["outlier_fraction"] > 0 and task != "classification":
        y, idx = shift_outliers(y, perturb["outlier_fraction"], perturb["outlier_k"], rng)
        info["n_outliers"] = int(idx.size)
    if perturb["input_noise"] > 0:
        noise = rng.normal(0.0, perturb["input_noise"], size=X.shape).astype(X.dtype)
        X = X + noise
        info["input_noise_std"] = perturb["input_noise"]
    X = np.array(X, copy=True)
    y = np.array(y, copy=True)
    X.setflags(write=False)
    y.setflags(write=False)
    return Split(X, y), info
