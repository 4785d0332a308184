"""Registry-wide contract: every dataset that needs no user files loads, splits and repeats exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.data import DATASETS, DataSplits, describe_datasets, load_dataset

OFFLINE = [name for name, d in DATASETS.items() if not d.needs_files]
# every name the issue asks for; a dataset that silently drops out of the registry fails here
EXPECTED = {
    "xor", "and", "or", "nand", "noisy_xor", "moons", "circles", "spirals", "sin", "gaussian",
    "house_prices", "digits", "breast_cancer", "diabetes", "iris", "mnist1d", "mnist",
    "fashion_mnist",
}  # fmt: skip


def _arrays(data: DataSplits) -> list[np.ndarray]:
    parts = [data.train, data.val] + ([data.test] if data.test is not None else [])
    return [a for s in parts for a in (s.X, s.y)]


def test_registry_holds_every_dataset_the_issue_names() -> None:
    assert set(DATASETS.names()) == EXPECTED


def test_describe_datasets_lists_metadata_for_harness_list() -> None:
    rows = {row["name"]: row for row in describe_datasets()}
    assert set(rows) == EXPECTED
    for row in rows.values():
        assert row["task"] in ("classification", "regression")
        assert row["n_outputs"] >= 1
        assert row["description"]
        assert row["source"]
        assert row["defaults"]["preprocess"] in ("scale", "standardize", "none")
    assert rows["digits"]["image_shape"] == (1, 8, 8)
    assert rows["mnist"]["image_shape"] == (1, 28, 28)
    assert rows["mnist1d"]["image_shape"] == (1, 40)
    assert rows["mnist1d"]["kwargs"]["shuffle_seq"] is False
    assert rows["mnist"]["needs_files"]
    assert not rows["digits"]["needs_files"]


@pytest.mark.parametrize("name", OFFLINE)
def test_shapes_dtypes_and_metadata(name: str, data_dir: Path) -> None:
    data = load_dataset(name, data_dir=data_dir)
    info = DATASETS.get(name)
    assert data.name == name
    assert data.task == info.task
    assert data.feature_shape == info.shape  # default kwargs give the registered shape
    assert data.n_outputs == info.n_outputs
    for split in [data.train, data.val] + ([data.test] if data.test is not None else []):
        assert split.X.shape == (split.n, *data.feature_shape)
        assert split.X.dtype == np.float32
        assert split.y.shape[0] == split.n
        assert not split.X.flags.writeable
        assert not split.y.flags.writeable
        if data.task == "classification":
            assert split.y.dtype == np.int64
            assert split.y.ndim == 1
            assert split.y.min() >= 0
            assert split.y.max() < data.n_outputs
        else:
            assert split.y.dtype == np.float32
            assert split.y.shape == (split.n, data.n_outputs)
        assert np.isfinite(split.X).all()
    if data.task == "classification":
        assert data.n_classes == data.n_outputs == len(data.class_names or [])
    else:
        assert data.n_classes is None
        assert data.class_names is None
    meta = data.meta
    assert meta["split"]["train"] == data.train.n
    assert meta["split"]["val"] == data.val.n
    assert meta["preprocess"]["fitted_on"] == "train"
    assert meta["spec"]["name"] == name
    assert meta["seed"] == 0
    assert len(meta["fingerprint"]) == 64


@pytest.mark.parametrize("name", OFFLINE)
def test_same_spec_gives_bit_identical_arrays(name: str, data_dir: Path) -> None:
    a = load_dataset({"name": name, "seed": 3}, data_dir=data_dir)
    b = load_dataset({"name": name, "seed": 3}, data_dir=data_dir)
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.dtype == y.dtype
        assert np.array_equal(x, y)
    assert a.meta["fingerprint"] == b.meta["fingerprint"]


@pytest.mark.parametrize(
    "name", [n for n in OFFLINE if DATASETS.get(n).split_mode != "train_is_val"]
)
def test_different_seed_gives_a_different_split(name: str, data_dir: Path) -> None:
    a = load_dataset({"name": name, "seed": 0}, data_dir=data_dir)
    b = load_dataset({"name": name, "seed": 1}, data_dir=data_dir)
    assert a.train.n == b.train.n
    assert not np.array_equal(a.train.X, b.train.X)
    assert a.meta["fingerprint"] != b.meta["fingerprint"]


def test_truth_tables_are_exact_and_train_is_val() -> None:
    expected = {"xor": [0, 1, 1, 0], "and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "nand": [1, 1, 1, 0]}
    for gate, labels in expected.items():
        data = load_dataset(gate)
        assert data.train.X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
        assert data.train.y.tolist() == labels
        assert np.array_equal(data.val.X, data.train.X)
        assert data.test is None
        assert data.meta["split"]["mode"] == "train_is_val"
        assert "note" in data.meta["split"]


def test_noisy_xor_labels_follow_the_quadrant() -> None:
    data = load_dataset({"name": "noisy_xor", "n_samples": 400, "noise": 0.1, "val_fraction": 0.25})
    assert data.train.n + data.val.n == 400
    for split in (data.train, data.val):
        quadrant = (split.X[:, 0] > 0.5) ^ (split.X[:, 1] > 0.5)
        assert np.array_equal(split.y, quadrant.astype(np.int64))
    # sigma 0.1: points stay near the four corners
    corners = np.round(data.train.X)
    assert (data.train.X - corners).std() == pytest.approx(0.1, rel=0.15)


def test_sin_is_the_grid_on_minus_pi_pi() -> None:
    data = load_dataset({"name": "sin", "val_fraction": 0.25})
    X = np.concatenate([data.train.X, data.val.X])[:, 0]
    y = np.concatenate([data.train.y, data.val.y])[:, 0]
    assert X.size == 256
    assert np.allclose(np.sort(X), np.linspace(-np.pi, np.pi, 256), atol=1e-6)
    assert np.allclose(y, np.sin(X), atol=1e-6)


def test_gaussian_probe_is_1000_by_100_standard_normal() -> None:
    data = load_dataset("gaussian")
    assert data.train.X.shape == (1000, 100)
    assert data.val.n == 1000
    assert abs(float(data.train.X.mean())) < 0.02
    assert float(data.train.X.std()) == pytest.approx(1.0, abs=0.02)
    assert set(np.unique(data.train.y)) == set(range(10))


def test_house_prices_follow_the_documented_model() -> None:
    data = load_dataset({"name": "house_prices", "noise": 0.0, "val_fraction": 0.2})
    X, price = data.train.X.astype(np.float64), data.train.y[:, 0].astype(np.float64)
    area, bedrooms, age, distance = X.T
    expected = np.maximum(
        0.02 * (area - 40) + 0.15 * bedrooms - 0.01 * age + np.exp(-distance / 8), 0.0
    )
    assert np.allclose(price, expected, atol=1e-4)
    assert (price >= 0).all()
    one = load_dataset({"name": "house_prices", "area_only": True})
    assert one.feature_shape == (1,)


def test_kwargs_change_the_generated_data() -> None:
    data = load_dataset({"name": "spirals", "n_samples": 300, "n_classes": 3, "val_fraction": 0.2})
    assert data.n_outputs == 3
    assert data.train.n + data.val.n == 300
    assert load_dataset({"name": "moons", "n_samples": 100}).train.n == 80
    a = load_dataset({"name": "circles", "noise": 0.0}).train.X
    radii = np.sort(np.unique(np.round(np.hypot(a[:, 0], a[:, 1]), 4)))
    assert radii.tolist() == [0.5, 1.0]  # factor 0.5, no noise: two exact circles
