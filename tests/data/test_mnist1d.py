"""MNIST-1D: offline generation, the .npz cache, the shuffle variant, global random state."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np

from harness.data import load_dataset
from harness.data.mnist_1d import MNIST1D_ARGS, cache_path


def test_default_args_copy_matches_the_installed_package() -> None:
    import mnist1d.data

    package = mnist1d.data.get_dataset_args(as_dict=True)
    package.pop("url")
    assert package == MNIST1D_ARGS


def test_builds_4000_1000_and_caches_as_npz(data_dir: Path) -> None:
    path = cache_path(data_dir, MNIST1D_ARGS)
    assert path.is_file()
    assert path.suffix == ".npz"
    start = time.perf_counter()
    data = load_dataset("mnist1d", data_dir=data_dir)
    elapsed = time.perf_counter() - start
    assert data.meta["builder"]["cache_hit"] is True
    assert elapsed < 0.5  # the spec asks < 100 ms; loose here for a loaded CI machine
    assert data.test is not None
    assert (data.train.n, data.val.n, data.test.n) == (3200, 800, 1000)
    assert data.feature_shape == (40,)
    assert np.bincount(np.concatenate([data.train.y, data.val.y])).size == 10


def test_cache_hit_equals_a_fresh_build(data_dir: Path, tmp_path: Path) -> None:
    cached = load_dataset({"name": "mnist1d", "seed": 1}, data_dir=data_dir)
    # a corrupt cache file is rebuilt (deterministically), never used
    target = cache_path(tmp_path, MNIST1D_ARGS)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not an npz")
    fresh = load_dataset({"name": "mnist1d", "seed": 1}, data_dir=tmp_path)
    assert fresh.meta["builder"]["cache_hit"] is False
    assert fresh.meta["fingerprint"] == cached.meta["fingerprint"]
    assert load_dataset("mnist1d", data_dir=tmp_path).meta["builder"]["cache_hit"] is True


def test_generation_leaves_the_global_random_state_alone(tmp_path: Path) -> None:
    # mnist1d seeds and draws from the legacy global streams; ours must come back untouched
    np_before = np.random.get_state(legacy=False)  # noqa: NPY002
    py_before = random.getstate()
    load_dataset({"name": "mnist1d", "data_seed": 7, "n_samples": 200}, data_dir=tmp_path)
    np_after = np.random.get_state(legacy=False)  # noqa: NPY002
    assert np.array_equal(np_before["state"]["key"], np_after["state"]["key"])
    assert np_before["state"]["pos"] == np_after["state"]["pos"]
    assert random.getstate() == py_before


def test_shuffle_seq_permutes_positions_consistently(data_dir: Path) -> None:
    spec = {"name": "mnist1d", "preprocess": "none", "seed": 0}
    plain = load_dataset(spec, data_dir=data_dir)
    shuffled = load_dataset({**spec, "shuffle_seq": True}, data_dir=data_dir)
    assert shuffled.meta["builder"]["cache"] != plain.meta["builder"]["cache"]
    assert plain.test is not None
    assert shuffled.test is not None
    # same samples, same order, same labels: only the 40 positions are permuted, the same way
    # for every sample of every split
    assert np.array_equal(plain.train.y, shuffled.train.y)
    X = np.concatenate([plain.train.X, plain.val.X, plain.test.X])
    Xs = np.concatenate([shuffled.train.X, shuffled.val.X, shuffled.test.X])
    perm = [int(np.argmin(np.abs(X - Xs[:, [j]]).max(axis=0))) for j in range(40)]
    assert sorted(perm) == list(range(40))
    assert perm != list(range(40))
    assert np.allclose(Xs, X[:, perm], atol=1e-5)


def test_smaller_builds_have_their_own_cache(tmp_path: Path) -> None:
    data = load_dataset({"name": "mnist1d", "n_samples": 100}, data_dir=tmp_path)
    assert data.test is not None
    assert data.train.n + data.val.n + data.test.n == 100
    assert len(list((tmp_path / "mnist1d").glob("*.npz"))) == 1


def test_unwritable_cache_dir_still_loads(tmp_path: Path) -> None:
    blocker = tmp_path / "mnist1d"
    blocker.write_text("a file where the cache folder should be")
    data = load_dataset({"name": "mnist1d", "n_samples": 100}, data_dir=tmp_path)
    assert data.train.n > 0
    assert data.meta["builder"]["cache_hit"] is False
    assert "cache_error" in data.meta["builder"]
