"""MNIST-1D, generated offline and cached as .npz in the data directory.

``mnist1d.data.get_dataset()`` downloads a pickle from GitHub when its file is absent, so it is
never called; the data is built with ``make_dataset(get_dataset_args())`` (about 1 s) and cached
under ``<data_dir>/mnist1d/``. ``make_dataset`` seeds and draws from the *global* NumPy and
``random`` states; both are saved before and restored after, so loading MNIST-1D does not disturb
anyone else's random numbers.

``shuffle_seq: true`` is the paper's "shuffle" variant: ``make_dataset`` draws one permutation of
the 40 positions (after the sample shuffle, from the same seeded stream) and applies it to every
sample, train and test alike; samples and labels stay in the same order as the original variant.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.base import RawData, check_bool, check_int, register_dataset
from harness.seeding import stable_hash

__all__ = ["MNIST1D_ARGS", "MNIST1D_DEFAULT_SEED", "build_mnist1d", "cache_path"]

#: ``get_dataset_args()``'s seed: the published MNIST-1D data (4000 train / 1000 test).
MNIST1D_DEFAULT_SEED = 42
_CACHE_FORMAT = 1  # bump when the cached file's layout changes
_ARRAYS = ("x", "y", "x_test", "y_test")


#: ``mnist1d.data.get_dataset_args()`` of mnist1d 0.0.2.post1 without its ``url`` (only the
#: downloading ``get_dataset()`` reads that). A copy, so a cache hit need not import mnist1d
#: (which imports matplotlib, ~0.4 s); a test checks that it still equals the package's defaults.
MNIST1D_ARGS: dict[str, Any] = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": MNIST1D_DEFAULT_SEED,
}


def _args(n_samples: int, data_seed: int, shuffle_seq: bool) -> dict[str, Any]:
    return {**MNIST1D_ARGS, "num_samples": n_samples, "seed": data_seed, "shuffle_seq": shuffle_seq}


def cache_path(data_dir: Path, args: dict[str, Any]) -> Path:
    """Where the build for ``args`` is cached; the name carries a hash of every argument."""
    tag = "_shuffle" if args["shuffle_seq"] else ""
    # another mnist1d release may generate other numbers from the same arguments
    version = importlib.metadata.version("mnist1d")
    key = stable_hash({"format": _CACHE_FORMAT, "mnist1d": version, **args})[:12]
    return data_dir / "mnist1d" / f"mnist1d_n{args['num_samples']}_s{args['seed']}{tag}_{key}.npz"


def build_mnist1d(args: dict[str, Any]) -> dict[str, np.ndarray]:
    """Run ``mnist1d.data.make_dataset`` with the global random states saved and restored."""
    import mnist1d.data
    from mnist1d.utils import ObjectView

    # make_dataset calls np.random.seed / random.seed and draws from the global streams
    np_state = np.random.get_state()  # noqa: NPY002 - saving the legacy global state to restore it
    py_state = random.getstate()
    try:
        data = mnist1d.data.make_dataset(ObjectView(dict(args)))
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return {k: np.asarray(data[k]) for k in _ARRAYS}


def _read_cache(path: Path, args: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is absent, unreadable or built from other args."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if json.loads(str(f["args_json"])) != json.loads(json.dumps(args)):
                return None
            return {k: f[k] for k in _ARRAYS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # a truncated or foreign file is rebuilt, never used


def _write_cache(path: Path, arrays: dict[str, np.ndarray], args: dict[str, Any]) -> None:
    # written under a temporary name and renamed: parallel study workers never read half a file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            payload: dict[str, Any] = {**arrays, "args_json": np.array(json.dumps(args))}
            np.savez(fh, **payload)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@register_dataset(
    "mnist1d",
    task="classification",
    n_outputs=10,
    shape=(40,),
    image_shape=(1, 40),
    default_preprocess="standardize",
    split_mode="fixed_test",
    default_val_fraction=0.2,
    description="MNIST-1D: 1-D digit templates, 40 points, 4000 train / 1000 test (generated offline)",
    source="Greydanus & Kobak, Scaling down deep learning with MNIST-1D, ICML 2024 (arXiv:2011.14439)",
)
def _mnist1d(
    *,
    seed: int,
    data_dir: Path,
    shuffle_seq: bool = False,
    n_samples: int = 5000,
    data_seed: int = MNIST1D_DEFAULT_SEED,
) -> RawData:
    args = _args(
        check_int("mnist1d", "n_samples", n_samples, minimum=20),
        check_int("mnist1d", "data_seed", data_seed),
        check_bool("mnist1d", "shuffle_seq", shuffle_seq),
    )
    path = cache_path(data_dir, args)
    meta: dict[str, Any] = {"cache": str(path), "generator_args": args}
    arrays = _read_cache(path, args)
    meta["cache_hit"] = arrays is not None
    if arrays is None:
        arrays = build_mnist1d(args)
        try:
            _write_cache(path, arrays, args)
        except OSError as exc:  # a read-only data dir costs a rebuild next time, not the run
            meta["cache_error"] = str(exc)
    return RawData(
        arrays["x"],
        arrays["y"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
        class_names=[str(k) for k in range(10)],
        meta=meta,
    )
