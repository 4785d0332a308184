"""Datasets: a registry of named datasets and ``load_dataset(spec)`` → train/val/test splits.

>>> from harness.data import load_dataset
>>> data = load_dataset({"name": "digits", "seed": 0})
>>> data.train.X.shape, data.val.X.shape
((1257, 64), (540, 64))

Importing this package registers every dataset (synthetic, scikit-learn's bundled ones, MNIST-1D,
MNIST and Fashion-MNIST); ``describe_datasets()`` lists them for ``harness list``.
"""

from __future__ import annotations

# the dataset modules register themselves on import
from harness.data import mnist, mnist_1d, synthetic, tabular  # noqa: F401
from harness.data.base import DATASETS, DataError, DataSplits, Split
from harness.data.files import ChecksumError, FilesMissingError
from harness.data.loader import allowed_keys, describe_datasets, load_dataset, resolve_spec
from harness.data.preprocess import one_hot

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DataError",
    "DataSplits",
    "FilesMissingError",
    "Split",
    "allowed_keys",
    "describe_datasets",
    "load_dataset",
    "one_hot",
    "resolve_spec",
]
