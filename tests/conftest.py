"""Session-wide fixtures: a private data cache and one MLflow store shared by the tests.

Creating an MLflow SQLite store runs its schema migrations (about 4 s), so the tests share one
store per session and separate themselves by experiment name; a test that needs a store of its
own (a sweep in a subprocess, killed and resumed) starts from a copy of a freshly migrated one
(:func:`copy_of_a_migrated_store`) instead of paying the migrations again.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Datasets generated during the tests (MNIST-1D) go to a temporary cache, not ~/.cache."""
    path = tmp_path_factory.mktemp("data_cache")
    old = os.environ.get("HARNESS_DATA_DIR")
    os.environ["HARNESS_DATA_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("HARNESS_DATA_DIR", None)
    else:
        os.environ["HARNESS_DATA_DIR"] = old


def _sqlite_copy(src: Path, dst: Path) -> None:
    """A consistent copy of an SQLite file (the backup API, not a byte copy of a live file)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema and nothing else, created once per session."""
    from harness.tracking import Tracker

    db = tmp_path_factory.mktemp("migrated_store") / "mlflow.db"
    Tracker(f"sqlite:///{db}")
    return db


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> str:
    """One SQLite MLflow store for the session (a copy of the migrated one)."""
    from harness.tracking import Tracker

    root = tmp_path_factory.mktemp("mlruns")
    _sqlite_copy(migrated_store, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    Tracker(uri).experiment("warm-up")
    return uri


@pytest.fixture
def copy_of_a_migrated_store(migrated_store: Path) -> Callable[[Path], str]:
    """``copy(db)`` puts an empty, migrated MLflow store at ``db`` and returns its URI: a test
    whose subject is not the store's creation skips its migrations (4-9 s in a subprocess)."""

    def copy(db: Path) -> str:
        _sqlite_copy(migrated_store, db)
        return f"sqlite:///{db}"

    return copy


@pytest.fixture
def unique_name() -> str:
    """A fresh experiment / study name per test."""
    return f"t-{uuid.uuid4().hex[:10]}"
