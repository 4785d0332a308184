"""MNIST and Fashion-MNIST from files the user supplies, verified by SHA-256.

Each dataset lives in its own folder of the data directory (the IDX file names of the two are the
same): ``<data_dir>/mnist/`` and ``<data_dir>/fashion_mnist/``. Accepted forms:

* the four gzipped IDX files as distributed (``train-images-idx3-ubyte.gz`` ...), or
* for MNIST, Keras' single ``mnist.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``).

Nothing is downloaded unless the spec says ``download: true``. Checksums come from :data:`SHA256`,
a module-level table (tests monkeypatch it to accept the small files they write).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.base import DataError, RawData, check_bool, register_dataset
from harness.data.files import (
    DownloadError,
    FilesMissingError,
    download_file,
    verify_sha256,
)
from harness.data.idx import read_idx_gz

__all__ = ["IDX_FILES", "MIRRORS", "SHA256"]

#: The four IDX archives, in (train images, train labels, test images, test labels) order.
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: Expected SHA-256 of every accepted file. MNIST's IDX and mnist.npz values are the ones used by
#: TensorFlow Datasets, torchvision mirrors and Keras (``get_file(file_hash=...)``); Fashion-MNIST's
#: official README publishes MD5 only, and these SHA-256 values are the ones published by
#: third-party loaders (two independent sources agree). Fashion-MNIST has no official .npz, so none
#: is listed: a ``fashion_mnist.npz`` is used only if a hash for it is added here.
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
}

#: Where the files can be fetched (tried in order by ``download: true``, shown in errors).
MIRRORS: dict[str, dict[str, tuple[str, ...]]] = {
    "mnist": {
        "idx": (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        "npz": ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",),
    },
    "fashion_mnist": {
        "idx": (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        "npz": (),
    },
}

_SIDE = 28
_N_CLASSES = 10
_FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def _missing_message(name: str, directory: Path, missing: list[str], reason: str = "") -> str:
    table = SHA256[name]
    lines = [
        f"dataset {name!r} needs data files that are not in {directory}: missing {', '.join(missing)}.",
        "The directory is <data_dir>/" + name + ", where data_dir is the data_dir argument, else "
        "$HARNESS_DATA_DIR, else ~/.cache/nn-harness. Nothing is downloaded unless the data spec "
        "says download: true.",
        f"Put these {len(IDX_FILES)} files (gzipped, as distributed) in {directory}:",
    ]
    lines += [f"  {f}  sha256 {table[f]}" for f in IDX_FILES]
    lines.append("from " + " or ".join(MIRRORS[name]["idx"]))
    npz = f"{name}.npz"
    if npz in table:
        lines.append(
            f"or instead the single file {directory / npz}  sha256 {table[npz]} (Keras' copy: "
            f"~/.keras/datasets/{npz}), from " + " or ".join(u + npz for u in MIRRORS[name]["npz"])
        )
    if reason:
        lines.append(f"Download failed: {reason}")
    return "\n".join(lines)


def _check_arrays(
    name: str, source: str, images: np.ndarray, labels: np.ndarray, part: str
) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or images.shape[1:] != (_SIDE, _SIDE) or images.dtype != np.uint8:
        raise DataError(
            f"{source}: {name} {part} images must be uint8 of shape (N, {_SIDE}, {_SIDE}), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{source}: {name} {part} labels must be integers of shape ({images.shape[0]},), "
            f"got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= _N_CLASSES):
        raise DataError(f"{source}: {name} {part} labels must lie in [0, {_N_CLASSES})")
    return images.reshape(images.shape[0], -1), labels.astype(np.int64)


def _load_npz(name: str, path: Path) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as exc:
        raise DataError(f"{path}: an {name} .npz needs x_train, y_train, x_test, y_test") from exc
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: corrupt .npz archive ({exc})") from exc
    X, y = _check_arrays(name, str(path), arrays["x_train"], arrays["y_train"], "train")
    X_test, y_test = _check_arrays(name, str(path), arrays["x_test"], arrays["y_test"], "test")
    return X, y, X_test, y_test


def load_files(name: str, directory: Path, *, download: bool = False) -> RawData:
    """Verify and read ``name``'s files from ``directory`` (the .npz form wins when present)."""
    table = SHA256[name]
    npz = directory / f"{name}.npz"
    if npz.name in table and npz.is_file():
        verify_sha256(npz, table[npz.name])
        X, y, X_test, y_test = _load_npz(name, npz)
        files = {npz.name: table[npz.name]}
    else:
        missing = [f for f in IDX_FILES if not (directory / f).is_file()]
        if missing and not download:
            raise FilesMissingError(_missing_message(name, directory, missing))
        for f in missing:
            try:
                download_file([u + f for u in MIRRORS[name]["idx"]], directory / f, table[f])
            except DownloadError as exc:
                raise FilesMissingError(
                    _missing_message(name, directory, missing, str(exc))
                ) from exc
        for f in IDX_FILES:
            verify_sha256(directory / f, table[f])
        parts = [read_idx_gz(directory / f) for f in IDX_FILES]
        X, y = _check_arrays(name, str(directory), parts[0], parts[1], "train")
        X_test, y_test = _check_arrays(name, str(directory), parts[2], parts[3], "test")
        files = {f: table[f] for f in IDX_FILES}
    class_names = _FASHION_CLASSES if name == "fashion_mnist" else [str(k) for k in range(10)]
    meta: dict[str, Any] = {"directory": str(directory), "files_sha256": files}
    return RawData(X, y, X_test, y_test, class_names=class_names, meta=meta)


_COMMON: dict[str, Any] = {
    "task": "classification",
    "n_outputs": _N_CLASSES,
    "shape": (_SIDE * _SIDE,),
    "image_shape": (1, _SIDE, _SIDE),
    "natural_max": 255.0,
    "default_preprocess": "scale",
    "split_mode": "fixed_test",
    "default_val_fraction": 0.2,
    "needs_files": True,
}


@register_dataset(
    "mnist",
    description="MNIST handwritten digits, 28x28 grey, 60000 train / 10000 test (user-supplied files)",
    source="LeCun, Cortes & Burges, The MNIST database (1998), http://yann.lecun.com/exdb/mnist/",
    **_COMMON,
)
def _mnist(*, seed: int, data_dir: Path, download: bool = False) -> RawData:
    return load_files(
        "mnist", data_dir / "mnist", download=check_bool("mnist", "download", download)
    )


@register_dataset(
    "fashion_mnist",
    description="Fashion-MNIST Zalando article images, 28x28 grey, 60000 / 10000 (user-supplied files)",
    source="Xiao, Rasul & Vollgraf, Fashion-MNIST, arXiv:1708.07747 (2017), "
    "https://github.com/zalandoresearch/fashion-mnist",
    **_COMMON,
)
def _fashion_mnist(*, seed: int, data_dir: Path, download: bool = False) -> RawData:
    return load_files(
        "fashion_mnist",
        data_dir / "fashion_mnist",
        download=check_bool("fashion_mnist", "download", download),
    )
