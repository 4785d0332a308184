"""Splits, stratification, subsets, preprocessing on train only, layouts, one-hot, spec errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_moons
from sklearn.model_selection import train_test_split

from harness.data import DataError, allowed_keys, load_dataset, one_hot, resolve_spec
from harness.data.base import DATASETS
from models.registry import UnknownNameError


def _rows(X: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.ascontiguousarray(X)}


def test_digits_default_split_is_sklearns_1257_540() -> None:
    data = load_dataset({"name": "digits", "seed": 0})
    assert (data.train.n, data.val.n, data.test) == (1257, 540, None)
    digits = load_digits()
    X_tr, _, _, y_va = train_test_split(
        digits.data, digits.target, test_size=0.3, stratify=digits.target, random_state=0
    )
    # the documented equivalence: the same samples, in the same order, scaled by 1/16
    assert np.array_equal(data.train.X, (X_tr / 16).astype(np.float32))
    assert np.array_equal(data.val.y, y_va)


def test_split_is_stratified() -> None:
    data = load_dataset({"name": "digits", "seed": 5})
    full = np.bincount(np.concatenate([data.train.y, data.val.y]))
    val = np.bincount(data.val.y, minlength=10)
    assert np.all(np.abs(val - full * 540 / 1797) <= 1)
    assert data.meta["split"]["stratified"] is True


def test_test_fraction_gives_disjoint_splits_covering_every_sample() -> None:
    data = load_dataset(
        {"name": "moons", "n_samples": 500, "val_fraction": 0.2, "test_fraction": 0.1, "seed": 4}
    )
    assert data.test is not None
    assert (data.train.n, data.val.n, data.test.n) == (350, 100, 50)
    parts = [_rows(s.X) for s in (data.train, data.val, data.test)]
    assert not (parts[0] & parts[1])
    assert not (parts[0] & parts[2])
    assert not (parts[1] & parts[2])
    X, _ = make_moons(n_samples=500, noise=0.1, random_state=4)
    assert parts[0] | parts[1] | parts[2] == _rows(X.astype(np.float32))
    # stratified on both stages: the 2 classes are balanced in each part
    assert abs(int(data.test.y.sum()) - 25) <= 1
    assert abs(int(data.val.y.sum()) - 50) <= 1


def test_regression_split_is_not_stratified() -> None:
    data = load_dataset({"name": "diabetes", "val_fraction": 0.25})
    assert data.meta["split"]["stratified"] is False
    assert data.train.n + data.val.n == 442


def test_subset_takes_a_stratified_part_of_train_only() -> None:
    full = load_dataset({"name": "digits", "seed": 2})
    sub = load_dataset({"name": "digits", "seed": 2, "subset": 300})
    assert sub.train.n == 300
    assert sub.meta["split"]["subset_stratified"] is True
    assert np.array_equal(sub.val.X, full.val.X)  # val untouched
    assert _rows(sub.train.X) <= _rows(full.train.X)
    counts = np.bincount(sub.train.y, minlength=10)
    assert counts.min() >= 28
    assert counts.max() <= 32
    with pytest.raises(DataError, match=r"subset = 5000"):
        load_dataset({"name": "digits", "subset": 5000})


def test_standardize_is_fitted_on_train_only() -> None:
    raw = load_dataset({"name": "breast_cancer", "preprocess": "none", "seed": 1}, dtype=np.float64)
    std = load_dataset(
        {"name": "breast_cancer", "preprocess": "standardize", "seed": 1}, dtype=np.float64
    )
    mean, sd = raw.train.X.mean(axis=0), raw.train.X.std(axis=0)
    assert np.allclose(std.train.X, (raw.train.X - mean) / sd)
    assert np.allclose(std.val.X, (raw.val.X - mean) / sd)
    assert np.allclose(std.train.X.mean(axis=0), 0, atol=1e-12)
    # the validation statistics did not enter: val is not exactly centred
    assert np.abs(std.val.X.mean(axis=0)).max() > 1e-3


def test_constant_features_standardize_to_zero_not_nan() -> None:
    data = load_dataset({"name": "digits", "preprocess": "standardize"})
    assert np.isfinite(data.train.X).all()
    assert data.meta["preprocess"]["n_constant_features"] >= 1  # digits' always-blank corner
    assert np.all(data.train.X[:, 0] == 0)


def test_scale_divides_by_the_natural_maximum_or_standardizes() -> None:
    raw = load_dataset({"name": "digits", "preprocess": "none"})
    scaled = load_dataset({"name": "digits", "preprocess": "scale"})
    assert raw.train.X.max() == 16
    assert np.array_equal(scaled.train.X, raw.train.X / 16)
    assert scaled.meta["preprocess"] == {"method": "scale", "fitted_on": "train", "divisor": 16.0}
    iris = load_dataset({"name": "iris", "preprocess": "scale"})
    assert iris.meta["preprocess"]["method"] == "standardize"  # no natural maximum


def test_default_preprocessing_per_dataset() -> None:
    expected = {"digits": "scale", "mnist": "scale", "fashion_mnist": "scale"}
    expected |= dict.fromkeys(["mnist1d", "iris", "breast_cancer", "diabetes"], "standardize")
    expected |= dict.fromkeys(
        ["xor", "moons", "spirals", "sin", "gaussian", "house_prices"], "none"
    )
    for name, method in expected.items():
        assert DATASETS.get(name).default_preprocess == method, name


@pytest.mark.parametrize(
    ("name", "shape"), [("digits", (1, 8, 8)), ("mnist1d", (1, 40))], ids=["digits", "mnist1d"]
)
def test_image_layout(name: str, shape: tuple[int, ...], data_dir: Path) -> None:
    flat = load_dataset({"name": name, "layout": "flat"}, data_dir=data_dir)
    image = load_dataset({"name": name, "layout": "image"}, data_dir=data_dir)
    assert image.feature_shape == shape
    assert image.train.X.shape == (image.train.n, *shape)
    assert np.array_equal(image.train.X.reshape(flat.train.X.shape), flat.train.X)
    assert image.meta["fingerprint"] != flat.meta["fingerprint"]


def test_float64_dtype() -> None:
    data = load_dataset({"name": "sin"}, dtype=np.float64)
    assert data.train.X.dtype == np.float64
    assert data.train.y.dtype == np.float64
    assert data.meta["dtype"] == "float64"
    with pytest.raises(DataError, match="floating dtype"):
        load_dataset("sin", dtype=np.int32)


def test_one_hot() -> None:
    y = np.array([2, 0, 1, 2])
    out = one_hot(y)
    assert out.dtype == np.float32
    assert out.shape == (4, 3)
    assert np.array_equal(out.argmax(axis=1), y)
    assert np.all(out.sum(axis=1) == 1)
    assert one_hot(y, 5).shape == (4, 5)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        one_hot(y, 2)
    with pytest.raises(ValueError, match="integer"):
        one_hot(np.array([0.5, 1.0]))


def test_unknown_dataset_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_dataset("digitz")
    message = str(err.value)
    assert "'digitz'" in message
    assert "did you mean 'digits'" in message
    assert "mnist1d" in message
    assert "house_prices" in message


def test_unknown_key_names_key_value_and_allowed_keys() -> None:
    with pytest.raises(DataError) as err:
        load_dataset({"name": "moons", "noize": 0.3})
    message = str(err.value)
    assert "'noize'" in message
    assert "0.3" in message
    assert "did you mean 'noise'" in message
    for key in allowed_keys(DATASETS.get("moons")):
        assert key in message
    # fixed-test datasets keep their own test split: test_fraction is not theirs to set
    with pytest.raises(DataError, match="unknown key 'test_fraction'"):
        resolve_spec({"name": "mnist1d", "test_fraction": 0.1})
    with pytest.raises(DataError, match="unknown key 'val_fraction'"):
        resolve_spec({"name": "xor", "val_fraction": 0.5})


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({"name": "digits", "val_fraction": 1.5}, r"val_fraction = 1.5 .* fraction in \(0, 1\)"),
        ({"name": "digits", "val_fraction": 0.0}, r"val_fraction = 0.0"),
        ({"name": "digits", "val_fraction": 0.6, "test_fraction": 0.4}, r"a sum < 1"),
        ({"name": "digits", "preprocess": "minmax"}, r"preprocess = 'minmax' .* 'standardize'"),
        ({"name": "digits", "layout": "grid"}, r"layout = 'grid'"),
        ({"name": "iris", "layout": "image"}, r"only digits, .*mnist1d"),
        ({"name": "digits", "seed": -1}, r"seed = -1 .* integer >= 0"),
        ({"name": "digits", "subset": 0}, r"subset = 0"),
        ({"name": "moons", "n_samples": "many"}, r"'moons': n_samples = 'many'"),
        ({"name": "moons", "noise": -0.1}, r"noise = -0.1"),
        ({"name": "mnist1d", "shuffle_seq": "yes"}, r"shuffle_seq = 'yes' .* true or false"),
        ({"val_fraction": 0.3}, r"no 'name' key"),
    ],
)
def test_bad_values_are_named(spec: dict, pattern: str, data_dir: Path) -> None:
    with pytest.raises(DataError, match=pattern):
        load_dataset(spec, data_dir=data_dir)


def test_resolve_spec_fills_every_default() -> None:
    _, cfg = resolve_spec("digits")
    assert cfg == {
        "name": "digits",
        "seed": 0,
        "preprocess": "scale",
        "layout": "flat",
        "val_fraction": 0.3,
        "subset": None,
        "test_fraction": 0.0,
    }
    _, cfg = resolve_spec({"name": "mnist1d", "seed": 2})
    assert cfg["val_fraction"] == 0.2
    assert cfg["shuffle_seq"] is False
    assert "test_fraction" not in cfg
