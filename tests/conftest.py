"""Session-wide fixtures: a private data cache and one MLflow store shared by the tests.

Creating an MLflow SQLite store runs its schema migrations (about 4 s), so the tests share one
store per session and separate themselves by experiment name.
"""

from __future__ import annotations

import os
import uuid
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


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite MLflow store for the session (schema created once)."""
    from harness.tracking import Tracker

    root = tmp_path_factory.mktemp("mlruns")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    Tracker(uri).experiment("warm-up")
    return uri


@pytest.fixture
def unique_name() -> str:
    """A fresh experiment / study name per test."""
    return f"t-{uuid.uuid4().hex[:10]}"
