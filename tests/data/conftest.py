"""Shared fixtures: one data directory per session, so MNIST-1D is generated once (~1.5 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data import load_dataset


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh data directory holding the default MNIST-1D cache (built here, once)."""
    path = tmp_path_factory.mktemp("harness_data")
    load_dataset("mnist1d", data_dir=path)
    return path
