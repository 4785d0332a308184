"""Dataset contracts: the split containers, the registry entry, and the argument checks.

A dataset is registered as a :class:`Dataset`: fixed metadata (task, natural shape, defaults,
citation) plus a *builder*, a function ``builder(*, seed, data_dir, **kwargs) -> RawData`` that
returns the raw arrays before splitting. The builder's keyword arguments (with their defaults) are
the dataset-specific keys a study's ``data:`` block may set; ``load_dataset`` does the rest
(splitting, subset, preprocessing, layout) the same way for every dataset.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from models.registry import Registry

__all__ = [
    "DATASETS",
    "DataError",
    "DataSplits",
    "Dataset",
    "RawData",
    "Split",
    "SplitMode",
    "check_bool",
    "check_float",
    "check_int",
    "register_dataset",
    "resolve_data_dir",
]

Task = Literal["classification", "regression"]
#: How a dataset is split: ``random`` (val and test carved from all samples), ``fixed_test``
#: (the source ships a test set; val is carved from its train set) or ``train_is_val`` (tiny or
#: probe datasets: every split is the whole set).
SplitMode = Literal["random", "fixed_test", "train_is_val"]


class DataError(ValueError):
    """A data spec, a data file or a dataset argument is not acceptable.

    The message names the dataset, the field, the value and what is allowed; errors made by
    :meth:`invalid` also carry them as ``dataset``, ``key``, ``value`` and ``allowed``, so a
    caller can point at the config field (``data.<key>``).
    """

    dataset: str | None = None
    key: str | None = None
    value: Any = None
    allowed: str | None = None

    @classmethod
    def invalid(cls, dataset: str, key: str, value: Any, allowed: str) -> DataError:
        err = cls(
            f"data spec for dataset {dataset!r}: {key} = {value!r} is not allowed: "
            f"expected {allowed}"
        )
        err.dataset, err.key, err.value, err.allowed = dataset, key, value, allowed
        return err


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset.

    Attributes
    ----------
    X : ndarray, shape (N, *feature_shape)
        Inputs, float32 unless another dtype was asked for. Read-only.
    y : ndarray, shape (N,) or (N, T)
        Classification: int64 class indices, shape (N,). Regression: float targets, shape (N, T).
    """

    X: np.ndarray
    y: np.ndarray

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train, validation and (optional) test splits plus what is known about them.

    ``meta`` holds ``source``, ``n_total``, ``preprocess``, ``split`` sizes, ``seed``, the fully
    resolved ``spec`` and ``fingerprint`` (SHA-256 of every array, in split order).
    """

    name: str
    task: str
    train: Split
    val: Split
    test: Split | None
    feature_shape: tuple[int, ...]
    n_outputs: int
    class_names: list[str] | None
    meta: dict[str, Any]

    @property
    def n_classes(self) -> int | None:
        return self.n_outputs if self.task == "classification" else None


@dataclass(frozen=True, eq=False)
class RawData:
    """What a builder returns: all samples, in a fixed order, before splitting.

    ``X`` has shape (N, D) (flat features, any numeric dtype). ``y`` is (N,) integer labels for
    classification and (N, T) floats for regression. ``X_test``/``y_test`` are set only by
    ``fixed_test`` datasets. ``meta`` adds builder facts (generative model, file hashes, cache).
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


Builder = Callable[..., RawData]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A registry entry: metadata for ``harness list`` and the defaults ``load_dataset`` uses."""

    name: str
    builder: Builder
    task: Task
    n_outputs: int
    shape: tuple[int, ...]
    description: str
    source: str
    image_shape: tuple[int, ...] | None = None
    #: the value ``preprocess: scale`` divides by; None → scale behaves like standardize
    natural_max: float | None = None
    default_preprocess: str = "none"
    split_mode: SplitMode = "random"
    default_val_fraction: float = 0.2
    default_test_fraction: float = 0.0
    #: True when the data comes from files the user supplies (MNIST), not from the packages
    needs_files: bool = False

    def builder_kwargs(self) -> dict[str, Any]:
        """The dataset-specific keyword arguments and their defaults."""
        params = inspect.signature(self.builder).parameters.values()
        return {
            p.name: p.default
            for p in params
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in ("seed", "data_dir")
        }

    def describe(self) -> dict[str, Any]:
        """One row of ``harness list``."""
        return {
            "name": self.name,
            "task": self.task,
            "n_outputs": self.n_outputs,
            "shape": self.shape,
            "image_shape": self.image_shape,
            "description": self.description,
            "source": self.source,
            "defaults": {
                "preprocess": self.default_preprocess,
                "split": self.split_mode,
                "val_fraction": self.default_val_fraction,
                "test_fraction": self.default_test_fraction,
            },
            "kwargs": self.builder_kwargs(),
            "needs_files": self.needs_files,
        }


DATASETS: Registry[Dataset] = Registry("dataset")


def register_dataset(name: str, **info: Any) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` as dataset ``name`` with the :class:`Dataset` fields."""

    def decorator(builder: Builder) -> Builder:
        for p in inspect.signature(builder).parameters.values():
            if p.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(
                    f"dataset builder {name!r}: argument {p.name!r} must be keyword-only"
                )
        DATASETS.register(name)(Dataset(name=name, builder=builder, **info))
        return builder

    return decorator


# -- argument checks for builders: each names the dataset, the key, the value and what is allowed --
def check_int(dataset: str, key: str, value: Any, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError.invalid(dataset, key, value, f"an integer >= {minimum}")
    return int(value)


def check_float(
    dataset: str, key: str, value: Any, *, minimum: float = 0.0, maximum: float = np.inf
) -> float:
    allowed = (
        f"a finite number >= {minimum:g}"
        if maximum == np.inf
        else f"a finite number in [{minimum:g}, {maximum:g}]"
    )
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise DataError.invalid(dataset, key, value, allowed)
    if not np.isfinite(value) or not minimum <= float(value) <= maximum:
        raise DataError.invalid(dataset, key, value, allowed)
    return float(value)


def check_bool(dataset: str, key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise DataError.invalid(dataset, key, value, "true or false")
    return bool(value)


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """``data_dir`` if given, else ``$HARNESS_DATA_DIR``, else ``~/.cache/nn-harness``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("HARNESS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "nn-harness"
