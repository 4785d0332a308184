"""Finished runs reused: a content-addressed cache keyed by resolved config, seed and code version.

A run is deterministic given its resolved config (which holds its seed) and the code that trains
it, so a claim or sweep that asks for a run already trained can take its records instead of
training it again: the claims share baseline runs (the same MLP on digits at the same lr and
seed). The key is the SHA-256 of

- the resolved run config (``seed``, ``data``, ``model``, ``train``: every field, defaults filled);
- :func:`code_version`: a hash of every ``.py`` file of the ``models`` and ``harness`` packages
  and the NumPy version, so any change to the code invalidates every entry;
- :data:`CACHE_FORMAT`.

An entry is one JSON file (``<root>/<key[:2]>/<key>.json``) holding the run's status, reason,
per-epoch records, summary and the MLflow run that trained it (``source_run_id``), plus the
trained weights next to it when the run kept them. Entries are written whole to a temporary file
and renamed, after the source run is logged: a crash leaves either no entry or a complete one.

Runs whose timing was not measured (trained stacked, see :class:`harness.train.StackedTrainer`)
are marked ``timed: false``; a request that needs per-run timing does not reuse them.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CACHEABLE_STATUSES",
    "CACHE_FORMAT",
    "CachedRun",
    "RunCache",
    "code_version",
    "default_cache_dir",
    "run_key",
]

#: bumped when the entry layout changes (old entries are then never read)
CACHE_FORMAT = 1
#: statuses of runs that are a pure function of config, seed and code (pruned, failed and
#: interrupted runs depend on other trials or on accidents, so they are never cached)
CACHEABLE_STATUSES = ("completed", "target_reached", "early_stopped", "max_steps", "diverged")
#: the MLflow tags a reused run carries
TAG_SOURCE = "cache.source_run"
TAG_KEY = "cache.key"


def default_cache_dir(
    root: str | Path | None = None, *, ledger_dir: str | Path | None = None
) -> Path:
    """``mlruns/runcache`` under ``root`` (default: the working directory), next to the ledgers
    (``mlruns/ledger/<study>``); with ``ledger_dir``, the ``runcache`` beside its parent."""
    if ledger_dir is not None:
        return (Path(ledger_dir).resolve().parent.parent / "runcache").resolve()
    base = Path(root) if root is not None else Path.cwd()
    return (base / "mlruns" / "runcache").resolve()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 over the source of the ``models`` and ``harness`` packages and NumPy's version."""
    import harness
    import models

    h = hashlib.sha256()
    h.update(f"numpy {np.__version__}\n".encode())
    for package in (models, harness):
        root = Path(str(package.__file__)).resolve().parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(b"\0")
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def run_key(
    config: Mapping[str, Any], *, data_dir: str | Path | None = None, version: str | None = None
) -> str:
    """The cache key of one run: its resolved config (seed included), the directory its data
    files come from (``--data-dir``: other files, other data) and the code version."""
    payload = {
        "format": CACHE_FORMAT,
        "code": version if version is not None else code_version(),
        "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
        "config": {k: config[k] for k in sorted(config) if k in ("seed", "data", "model", "train")},
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _encode(obj: Any) -> Any:
    """JSON-safe: non-finite floats become strings ("nan", "inf", "-inf")."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, str) and obj in ("nan", "inf", "-inf"):
        return float(obj)
    if isinstance(obj, dict):
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


class CachedRun:
    """One cache entry: what a finished run measured and which MLflow run measured it."""

    def __init__(self, data: Mapping[str, Any], model_npz: bytes | None) -> None:
        self.key: str = data["key"]
        self.status: str = data["status"]
        self.reason: str = data["reason"]
        self.records: list[dict[str, float]] = data["records"]
        self.summary: dict[str, float] = data["summary"]
        self.network_config: dict[str, Any] | None = data.get("network_config")
        self.source_run_id: str = data["source_run_id"]
        self.timed: bool = bool(data.get("timed", True))
        self.model_npz = model_npz


class RunCache:
    """The entries under ``root`` (created on the first write)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(
        self,
        key: str,
        *,
        tracking_uri: str | None = None,
        need_timing: bool = False,
        need_weights: bool = False,
    ) -> CachedRun | None:
        """The entry of ``key``, or None: absent, unreadable, lacking what is needed, or its
        source run lives in another MLflow store than ``tracking_uri`` (a reused run's tag must
        name a run the reader can open)."""
        path = self._path(key)
        try:
            data = _decode(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None
        if data.get("format") != CACHE_FORMAT or data.get("key") != key:
            return None
        if tracking_uri is not None and data.get("tracking_uri") != tracking_uri:
            return None
        npz_path = path.with_suffix(".npz")
        npz = npz_path.read_bytes() if npz_path.is_file() else None
        run = CachedRun(data, npz)
        if (need_timing and not run.timed) or (need_weights and npz is None):
            return None
        return run

    def put(
        self,
        key: str,
        *,
        status: str,
        reason: str,
        records: list[dict[str, float]],
        summary: Mapping[str, float],
        source_run_id: str,
        timed: bool,
        tracking_uri: str | None = None,
        network_config: Mapping[str, Any] | None = None,
        model_npz: bytes | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> bool:
        """Store a finished run (False, and nothing written, for a status that is not cached)."""
        if status not in CACHEABLE_STATUSES:
            return False
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": CACHE_FORMAT,
            "key": key,
            "code_version": code_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "status": status,
            "reason": reason,
            "records": records,
            "summary": dict(summary),
            "source_run_id": source_run_id,
            "tracking_uri": tracking_uri,
            "timed": timed,
            "network_config": network_config,
            "config": dict(config) if config is not None else None,
        }
        if model_npz is not None:  # the weights first: an entry never points at a missing file
            _atomic_write(path.with_suffix(".npz"), model_npz)
        _atomic_write(path, json.dumps(_encode(data), default=str).encode())
        return True


def _atomic_write(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
