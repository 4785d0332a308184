"""MNIST / Fashion-MNIST file loaders on small files the tests write (no network, no real data)."""

from __future__ import annotations

import gzip
import hashlib
import io
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from harness.data import ChecksumError, DataError, FilesMissingError, load_dataset
from harness.data import files as files_mod
from harness.data import mnist as mnist_mod
from harness.data.idx import encode_idx, parse_idx

N_TRAIN, N_TEST = 50, 20


def _images_labels(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)  # every class, 5 / 2 times each
    return images, labels


@pytest.fixture
def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x_train, y_train = _images_labels(rng, N_TRAIN)
    x_test, y_test = _images_labels(rng, N_TEST)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_idx(directory: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Write the four .gz files; return their real hashes (the table the loader should trust)."""
    directory.mkdir(parents=True, exist_ok=True)
    order = [arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]]
    for name, arr in zip(mnist_mod.IDX_FILES, order):
        (directory / name).write_bytes(gzip.compress(encode_idx(arr)))
    return {name: _sha(directory / name) for name in mnist_mod.IDX_FILES}


def _trust(monkeypatch: pytest.MonkeyPatch, dataset: str, table: dict[str, str]) -> None:
    monkeypatch.setitem(mnist_mod.SHA256, dataset, table)


def test_idx_round_trip_and_header_checks() -> None:
    arr = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(encode_idx(arr)), arr)
    data = encode_idx(np.arange(6, dtype=np.uint8))
    assert data[:4] == bytes([0, 0, 0x08, 1])
    with pytest.raises(DataError, match="bad magic"):
        parse_idx(b"\x01\x02\x08\x01" + data[4:], source="f.idx")
    with pytest.raises(DataError, match=r"f\.idx: IDX payload has 5 bytes"):
        parse_idx(data[:-1], source="f.idx")


def test_idx_files_load_into_the_fixed_test_split(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    _trust(monkeypatch, "mnist", _write_idx(tmp_path / "mnist", arrays))
    data = load_dataset(
        {"name": "mnist", "preprocess": "none", "layout": "image", "val_fraction": 0.2},
        data_dir=tmp_path,
    )
    assert data.test is not None
    assert (data.train.n, data.val.n, data.test.n) == (40, 10, N_TEST)
    assert data.feature_shape == (1, 28, 28)
    assert data.class_names == [str(k) for k in range(10)]
    # the test split is the file's, in file order; train + val are the training file's images
    assert np.array_equal(data.test.X[:, 0], arrays["x_test"].astype(np.float32))
    assert np.array_equal(data.test.y, arrays["y_test"].astype(np.int64))
    seen = {x.tobytes() for x in np.concatenate([data.train.X, data.val.X]).astype(np.uint8)}
    assert seen == {x.tobytes() for x in arrays["x_train"]}
    assert sorted(data.meta["builder"]["files_sha256"]) == sorted(mnist_mod.IDX_FILES)
    # default preprocessing divides by 255
    scaled = load_dataset({"name": "mnist", "val_fraction": 0.2}, data_dir=tmp_path)
    assert scaled.test is not None
    assert scaled.test.X.max() <= 1.0
    assert np.allclose(scaled.test.X * 255, arrays["x_test"].reshape(N_TEST, -1))


def test_data_dir_falls_back_to_the_environment_variable(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    _trust(monkeypatch, "fashion_mnist", _write_idx(tmp_path / "fashion_mnist", arrays))
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    data = load_dataset({"name": "fashion_mnist", "val_fraction": 0.2})
    assert data.class_names is not None
    assert data.class_names[9] == "Ankle boot"
    assert data.meta["builder"]["directory"] == str(tmp_path / "fashion_mnist")


def test_keras_npz_is_accepted_and_verified(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "mnist"
    directory.mkdir()
    np.savez(
        directory / "mnist.npz",
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
    )
    _trust(
        monkeypatch,
        "mnist",
        {**mnist_mod.SHA256["mnist"], "mnist.npz": _sha(directory / "mnist.npz")},
    )
    data = load_dataset(
        {"name": "mnist", "preprocess": "none", "val_fraction": 0.2}, data_dir=tmp_path
    )
    assert data.test is not None
    assert np.array_equal(data.test.X, arrays["x_test"].reshape(N_TEST, -1).astype(np.float32))
    assert list(data.meta["builder"]["files_sha256"]) == ["mnist.npz"]


def test_missing_files_error_names_files_directory_and_hashes(tmp_path: Path) -> None:
    with pytest.raises(FilesMissingError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "mnist") in message
    for name, sha in mnist_mod.SHA256["mnist"].items():
        assert name in message
        assert sha in message
    assert "HARNESS_DATA_DIR" in message
    assert "download: true" in message
    assert "https://" in message
    assert isinstance(err.value, DataError)


def test_checksum_mismatch_names_file_expected_and_actual(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _write_idx(tmp_path / "mnist", arrays)
    actual = table["t10k-labels-idx1-ubyte.gz"]
    _trust(monkeypatch, "mnist", {**table, "t10k-labels-idx1-ubyte.gz": "0" * 64})
    with pytest.raises(ChecksumError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert "0" * 64 in message
    assert actual in message


def test_real_checksums_reject_the_test_files(
    tmp_path: Path, arrays: dict[str, np.ndarray]
) -> None:
    _write_idx(tmp_path / "mnist", arrays)  # not the official bytes: must never be used
    with pytest.raises(ChecksumError, match="expected SHA-256 440fcabf"):
        load_dataset("mnist", data_dir=tmp_path)


def test_corrupt_gzip_is_an_error_naming_the_file(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _write_idx(tmp_path / "mnist", arrays)
    bad = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"x" * 100)[:-12])  # truncated archive
    _trust(monkeypatch, "mnist", {**table, bad.name: _sha(bad)})  # hash matches; content does not
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: corrupt gzip"):
        load_dataset("mnist", data_dir=tmp_path)


def test_wrong_image_shape_is_rejected(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = {**arrays, "x_test": arrays["x_test"][:, :27, :]}
    _trust(monkeypatch, "mnist", _write_idx(tmp_path / "mnist", arrays))
    with pytest.raises(DataError, match=r"test images must be uint8 of shape \(N, 28, 28\)"):
        load_dataset("mnist", data_dir=tmp_path)


def test_download_failure_raises_the_missing_files_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def refuse(url: str, timeout: float) -> None:
        calls.append(url)
        assert timeout <= 30
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(files_mod.urllib.request, "urlopen", refuse)
    with pytest.raises(FilesMissingError, match=r"Download failed: .*no network in tests") as err:
        load_dataset({"name": "mnist", "download": True}, data_dir=tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    assert calls
    assert not any((tmp_path / "mnist").glob("*"))  # no partial files left behind


def test_download_verifies_before_use(
    tmp_path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    table = _write_idx(source, arrays)
    _trust(monkeypatch, "mnist", table)

    def serve(url: str, timeout: float) -> io.BytesIO:
        return io.BytesIO((source / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(files_mod.urllib.request, "urlopen", serve)
    data = load_dataset({"name": "mnist", "download": True, "val_fraction": 0.2}, data_dir=tmp_path)
    assert data.test is not None
    assert data.test.n == N_TEST
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(mnist_mod.IDX_FILES)

    # a mirror serving other bytes: refused, nothing kept
    other = tmp_path / "other"
    _trust(monkeypatch, "mnist", {**table, "train-labels-idx1-ubyte.gz": "f" * 64})
    with pytest.raises(ChecksumError, match=r"expected SHA-256 f{64}"):
        load_dataset({"name": "mnist", "download": True}, data_dir=other)
    assert not (other / "mnist" / "train-labels-idx1-ubyte.gz").exists()
