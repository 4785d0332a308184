"""scikit-learn's bundled datasets (shipped inside the package: no network, no files to supply)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.base import RawData, register_dataset

__all__: list[str] = []


@cache
def _bundled(loader: str) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Parse a bundled dataset once per process (load_digits reads a CSV: ~20 ms a call).

    The cached arrays are made read-only, so no caller can change what the next one gets.
    sklearn is imported here, not at module level: it costs ~1 s, and ``harness list`` needs none.
    """
    import sklearn.datasets

    bunch: Any = getattr(sklearn.datasets, loader)()
    X, y = np.asarray(bunch.data), np.asarray(bunch.target)
    X.setflags(write=False)
    y.setflags(write=False)
    names = bunch.get("target_names")
    return X, y, None if names is None else [str(n) for n in names]


def _classification(loader: str) -> RawData:
    X, y, names = _bundled(loader)
    return RawData(X, y.astype(np.int64), class_names=names)


@register_dataset(
    "digits",
    task="classification",
    n_outputs=10,
    shape=(64,),
    image_shape=(1, 8, 8),
    natural_max=16.0,
    default_preprocess="scale",
    default_val_fraction=0.3,
    description="8x8 handwritten digits, 1797 samples, pixel values 0..16 (UCI optdigits test set)",
    source="scikit-learn load_digits; Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits",
)
def _digits(*, seed: int, data_dir: Path) -> RawData:
    return _classification("load_digits")


@register_dataset(
    "breast_cancer",
    task="classification",
    n_outputs=2,
    shape=(30,),
    default_preprocess="standardize",
    description="Wisconsin diagnostic breast cancer, 569 samples, 30 features, 2 classes",
    source="scikit-learn load_breast_cancer; Street, Wolberg & Mangasarian (1993), UCI",
)
def _breast_cancer(*, seed: int, data_dir: Path) -> RawData:
    return _classification("load_breast_cancer")


@register_dataset(
    "iris",
    task="classification",
    n_outputs=3,
    shape=(4,),
    default_preprocess="standardize",
    description="Fisher's iris, 150 samples, 4 features, 3 classes",
    source="scikit-learn load_iris; Fisher (1936), UCI",
)
def _iris(*, seed: int, data_dir: Path) -> RawData:
    return _classification("load_iris")


@register_dataset(
    "diabetes",
    task="regression",
    n_outputs=1,
    shape=(10,),
    default_preprocess="standardize",
    description="diabetes progression after one year from 10 baseline variables, 442 samples",
    source="scikit-learn load_diabetes; Efron, Hastie, Johnstone & Tibshirani, LARS (2004)",
)
def _diabetes(*, seed: int, data_dir: Path) -> RawData:
    X, y, _ = _bundled("load_diabetes")
    return RawData(X, y.astype(np.float64)[:, None])
