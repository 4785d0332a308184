"""``load_dataset``: a study's ``data:`` block → validated spec → :class:`DataSplits`.

The order of operations is fixed for every dataset: build the raw arrays, split (seeded,
stratified for classification), take the training ``subset``, fit preprocessing on the training
split alone, apply it to every split, then reshape to the requested ``layout``.
"""

from __future__ import annotations

import difflib
import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.base import (
    DATASETS,
    DataError,
    Dataset,
    DataSplits,
    Split,
    check_int,
    resolve_data_dir,
)
from harness.data.perturb import apply_perturbation, resolve_perturb
from harness.data.preprocess import PREPROCESS_METHODS, fit_preprocessor
from harness.data.splits import split_indices, take_subset
from models.registry import SpecError, parse_spec

__all__ = [
    "LAYOUTS",
    "NonFiniteDataError",
    "allowed_keys",
    "describe_datasets",
    "load_dataset",
    "resolve_spec",
]

LAYOUTS = ("flat", "image")
_COMMON_KEYS = ("name", "seed", "preprocess", "layout", "perturb")
_SPLIT_KEYS: dict[str, tuple[str, ...]] = {
    "random": ("val_fraction", "test_fraction", "subset"),
    "fixed_test": ("val_fraction", "subset"),  # the source's own test split is kept
    "train_is_val": (),  # 4-point truth tables and probes: nothing to split
}


def allowed_keys(dataset: Dataset) -> list[str]:
    """Every key a ``data:`` block for ``dataset`` may contain."""
    return [*_COMMON_KEYS, *_SPLIT_KEYS[dataset.split_mode], *dataset.builder_kwargs()]


def describe_datasets() -> list[dict[str, Any]]:
    """One dict per registered dataset (name, task, n_outputs, shapes, defaults, source, kwargs)."""
    return [dataset.describe() for _, dataset in DATASETS.items()]


def _check_fraction(name: str, key: str, value: Any, *, allow_zero: bool) -> float:
    low = "[0, 1)" if allow_zero else "(0, 1)"
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not (0.0 <= value < 1.0) or (value == 0.0 and not allow_zero):
        raise DataError.invalid(name, key, value, f"a fraction in {low}")
    return float(value)


def resolve_spec(spec: str | Mapping[str, Any]) -> tuple[Dataset, dict[str, Any]]:
    """Validate ``spec`` and fill every default: the returned dict is the full, explicit spec.

    Raises ``UnknownNameError`` (listing the datasets) for an unknown name and :class:`DataError`
    for an unknown key or a bad value.
    """
    try:
        raw_name, given = parse_spec(spec, kind="dataset")
    except SpecError as exc:
        raise DataError(f"data spec: {exc}") from exc
    dataset = DATASETS.get(raw_name)
    name = dataset.name
    allowed = allowed_keys(dataset)
    for key, value in given.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            err = DataError(
                f"data spec for dataset {name!r}: unknown key {key!r} (value {value!r}){hint}; "
                f"allowed keys for {name!r}: {', '.join(allowed)}"
            )
            err.dataset, err.key, err.value = name, key, value
            err.allowed = f"a key of dataset {name!r}{hint}; allowed keys: {', '.join(allowed)}"
            raise err
    cfg: dict[str, Any] = {
        "name": name,
        "seed": 0,
        "preprocess": dataset.default_preprocess,
        "layout": "flat",
    }
    if dataset.split_mode != "train_is_val":
        cfg["val_fraction"] = dataset.default_val_fraction
        cfg["subset"] = None
    if dataset.split_mode == "random":
        cfg["test_fraction"] = dataset.default_test_fraction
    cfg.update(dataset.builder_kwargs())
    cfg.update(given)

    cfg["seed"] = check_int(name, "seed", cfg["seed"])
    if cfg["preprocess"] not in PREPROCESS_METHODS:
        raise DataError.invalid(
            name, "preprocess", cfg["preprocess"], f"one of {PREPROCESS_METHODS}"
        )
    if cfg["layout"] not in LAYOUTS:
        raise DataError.invalid(name, "layout", cfg["layout"], f"one of {LAYOUTS}")
    if cfg["layout"] == "image" and dataset.image_shape is None:
        with_image = [n for n, d in DATASETS.items() if d.image_shape is not None]
        raise DataError.invalid(
            name, "layout", "image", f"'flat' (only {', '.join(with_image)} have an image layout)"
        )
    if "val_fraction" in cfg:
        cfg["val_fraction"] = _check_fraction(
            name, "val_fraction", cfg["val_fraction"], allow_zero=False
        )
    if "test_fraction" in cfg:
        cfg["test_fraction"] = _check_fraction(
            name, "test_fraction", cfg["test_fraction"], allow_zero=True
        )
        if cfg["val_fraction"] + cfg["test_fraction"] >= 1.0:
            raise DataError.invalid(
                name,
                "val_fraction + test_fraction",
                cfg["val_fraction"] + cfg["test_fraction"],
                "a sum < 1 (some samples must remain for training)",
            )
    if cfg.get("subset") is not None:
        cfg["subset"] = check_int(name, "subset", cfg["subset"], minimum=1)
    if "perturb" in cfg:  # only when given: an unperturbed spec stays exactly as before
        cfg["perturb"] = resolve_perturb(name, dataset.task, cfg["perturb"])
    return dataset, cfg


class NonFiniteDataError(DataError):
    """A dataset's features or targets hold NaN or infinite values (``detail`` says which, how
    many)."""

    detail: str = ""


def _check_finite(name: str, label: str, arr: np.ndarray | None) -> None:
    """Raise :class:`NonFiniteDataError` naming the dataset, the array and how many values are
    NaN or infinite. One vectorized pass over float arrays (integer arrays hold neither)."""
    if arr is None or not np.issubdtype(arr.dtype, np.inexact) or np.isfinite(arr).all():
        return
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(np.isinf(arr).sum())
    counts = " and ".join(f"{n} {what}" for n, what in ((n_nan, "NaN"), (n_inf, "infinite")) if n)
    detail = f"dataset {name!r}: {label} holds {counts} of its {arr.size} values"
    err = NonFiniteDataError(
        f"{detail}; expected finite values (fix or drop those samples, or check the dataset's "
        "noise and scale arguments)"
    )
    err.dataset, err.detail = name, detail
    raise err


def _fingerprint(name: str, splits: list[tuple[str, Split]]) -> str:
    digest = hashlib.sha256(name.encode())
    for part, split in splits:
        for label, arr in (("X", split.X), ("y", split.y)):
            digest.update(f"{part}.{label}:{arr.dtype.str}:{arr.shape}".encode())
            digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _freeze(arr: np.ndarray) -> np.ndarray:
    # training code must copy before changing data in place, so one load cannot poison the next
    arr.setflags(write=False)
    return arr


def load_dataset(
    spec: str | Mapping[str, Any], *, data_dir: str | Path | None = None, dtype: Any = np.float32
) -> DataSplits:
    """Build the train/val/test splits a ``data:`` block describes.

    Parameters
    ----------
    spec : str or mapping
        ``"digits"`` or ``{name: digits, val_fraction: 0.3, test_fraction: 0.0, seed: 0,
        preprocess: scale | standardize | none, subset: null, layout: flat | image, ...}`` plus
        the dataset's own keys (``describe_datasets()`` lists them with their defaults).
    data_dir : str or Path, optional
        Where user-supplied files (MNIST) and caches (MNIST-1D) live; default
        ``$HARNESS_DATA_DIR``, else ``~/.cache/nn-harness``.
    dtype : floating dtype
        dtype of every ``X`` (and of regression targets); float32 by default.

    Returns
    -------
    DataSplits
        Arrays are read-only. The same spec gives bit-identical arrays (``meta["fingerprint"]``).
    """
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise DataError(
            f"load_dataset: dtype = {dtype!r} is not allowed: expected a floating dtype"
        )
    dataset, cfg = resolve_spec(spec)
    name, seed = dataset.name, cfg["seed"]
    kwargs = {k: cfg[k] for k in dataset.builder_kwargs()}
    # an overflow in a generator (noise: 1.0e+308) is reported by the finiteness check below,
    # as one error naming the dataset, not as a NumPy warning
    with np.errstate(over="ignore", invalid="ignore"):
        raw = dataset.builder(seed=seed, data_dir=resolve_data_dir(data_dir), **kwargs)
    for label, arr in (("X", raw.X), ("y", raw.y), ("X_test", raw.X_test), ("y_test", raw.y_test)):
        _check_finite(name, label, arr)
    classification = dataset.task == "classification"
    labels = raw.y if classification else None

    n = raw.X.shape[0]
    split_meta: dict[str, Any] = {"mode": dataset.split_mode}
    if dataset.split_mode == "train_is_val":
        train_idx = val_idx = np.arange(n)
        test_idx = None
        split_meta["note"] = "train = val = every sample (too few samples, or a probe, to split)"
    else:
        n_val = math.ceil(cfg["val_fraction"] * n)  # ceil, as train_test_split rounds
        n_test = math.ceil(cfg.get("test_fraction", 0.0) * n)
        if n - n_val - n_test < 1:
            raise DataError.invalid(
                name,
                "val_fraction",
                cfg["val_fraction"],
                f"a fraction leaving training samples out of {n}",
            )
        parts = split_indices(
            n, labels, n_val=n_val, n_test=n_test, seed=seed, stratify=classification
        )
        train_idx, val_idx, test_idx = parts.train, parts.val, parts.test
        split_meta["stratified"] = parts.stratified
        if cfg["subset"] is not None:
            if cfg["subset"] > train_idx.size:
                raise DataError.invalid(
                    name, "subset", cfg["subset"], f"at most the {train_idx.size} training samples"
                )
            train_idx, split_meta["subset_stratified"] = take_subset(
                train_idx, labels, cfg["subset"], seed=seed, stratify=classification
            )

    prep = fit_preprocessor(cfg["preprocess"], raw.X[train_idx], natural_max=dataset.natural_max)
    flat_shape = tuple(raw.X.shape[1:])
    feature_shape = dataset.image_shape if cfg["layout"] == "image" else flat_shape
    assert feature_shape is not None  # resolve_spec rejected image layout without a shape

    def make(X: np.ndarray, y: np.ndarray) -> Split:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: reported just below
            Xp = prep.apply(X, dtype).reshape((X.shape[0], *feature_shape))
        yp = y.astype(np.int64) if classification else y.astype(dtype)
        return Split(_freeze(Xp), _freeze(yp))

    train = make(raw.X[train_idx], raw.y[train_idx])
    n_classes = len(raw.class_names) if raw.class_names else dataset.n_outputs
    # training split only: validation and test stay clean (see harness.data.perturb)
    train, perturb_meta = apply_perturbation(
        train, cfg.get("perturb"), task=dataset.task, n_classes=n_classes, seed=seed
    )
    val = make(raw.X[val_idx], raw.y[val_idx])
    test: Split | None = None
    if raw.X_test is not None and raw.y_test is not None:  # the source's own test split
        test = make(raw.X_test, raw.y_test)
    elif test_idx is not None:
        test = make(raw.X[test_idx], raw.y[test_idx])

    splits = [("train", train), ("val", val)] + ([("test", test)] if test is not None else [])
    for part, s in splits:  # finite raw values can still overflow the dtype (1e39 in float32)
        _check_finite(name, f"{part} X (as {np.dtype(dtype).name})", s.X)
        _check_finite(name, f"{part} y (as {s.y.dtype.name})", s.y)
    split_meta.update({part: s.n for part, s in splits})
    n_total = n + (0 if raw.X_test is None else raw.X_test.shape[0])
    if classification:
        class_names = raw.class_names or [str(k) for k in range(dataset.n_outputs)]
        n_outputs = len(class_names)
    else:
        class_names = None
        n_outputs = int(raw.y.shape[1]) if raw.y.ndim == 2 else 1
    meta: dict[str, Any] = {
        "source": dataset.source,
        "n_total": n_total,
        "preprocess": prep.summary(),
        "split": split_meta,
        "seed": seed,
        "layout": cfg["layout"],
        "dtype": np.dtype(dtype).name,
        "spec": cfg,
        "fingerprint": _fingerprint(name, splits),
        "builder": raw.meta,
    }
    if perturb_meta:
        meta["perturb"] = perturb_meta
    return DataSplits(
        name=name,
        task=dataset.task,
        train=train,
        val=val,
        test=test,
        feature_shape=tuple(feature_shape),
        n_outputs=n_outputs,
        class_names=class_names,
        meta=meta,
    )
