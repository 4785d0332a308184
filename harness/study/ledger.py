"""The trial ledger: every finished trial's measurements, written by the driver as JSON files.

Optuna's storage keeps parameters, values and states; MLflow keeps what a person browses. The
ledger keeps the full per-epoch records of every replicate, so that a resumed sweep or a claim
report can rebuild its tables without reading thousands of MLflow runs back (mlflow#8277). One
file per trial (``trial-00042.json``), written atomically: an interrupted write never leaves a
half file, and a trial is in the ledger only once it has finished.

Crash consistency: the driver first writes a trial's *durable outcome* (``pending/``: the whole
outcome and what is needed to log it, pickled), then tells Optuna, then logs MLflow, then writes
the ledger entry, then drops the pending file. Whatever moment the driver dies, a resume finds
for every finished trial either its ledger entry (everything was written) or its pending
outcome (and repairs the Optuna state, the MLflow run and the ledger from it); a trial with
neither never reported to the driver and is re-run.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["Ledger", "default_ledger_dir"]


def default_ledger_dir(study_name: str, root: str | Path | None = None) -> Path:
    base = Path(root) if root is not None else Path.cwd()
    return (base / "mlruns" / "ledger" / study_name).resolve()


def _encode(obj: Any) -> Any:
    """JSON-safe: non-finite floats become strings ("nan", "inf") and come back as floats."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    return obj


_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode(obj: Any) -> Any:
    if isinstance(obj, str) and obj in _SPECIAL:
        return _SPECIAL[obj]
    if isinstance(obj, dict):
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


class Ledger:
    """A directory of finished-trial records for one study."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path(self, number: int) -> Path:
        return self.directory / f"trial-{number:05d}.json"

    def write(self, number: int, entry: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(number)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_encode(entry), default=str))
        os.replace(tmp, target)  # atomic on POSIX
        return target

    def read(self, number: int) -> dict[str, Any] | None:
        """The entry of trial ``number``, or None when absent or unreadable (a damaged file is
        an incomplete record: a resume rewrites it from the durable outcome)."""
        p = self.path(number)
        try:
            return _decode(json.loads(p.read_text())) if p.is_file() else None
        except (OSError, ValueError):
            return None

    def has(self, number: int) -> bool:
        return self.read(number) is not None

    # -- durable outcomes (written before Optuna is told; see the module docstring) -----------
    def pending_path(self, number: int) -> Path:
        return self.directory / "pending" / f"trial-{number:05d}.pkl"

    def write_pending(self, number: int, record: Any) -> None:
        target = self.pending_path(number)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".pkl.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(record, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())  # on disk before Optuna hears of it
        os.replace(tmp, target)

    def read_pending(self, number: int) -> Any:
        p = self.pending_path(number)
        try:
            # our own file, written by write_pending (never a file from elsewhere)
            return pickle.loads(p.read_bytes()) if p.is_file() else None
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError):
            return None

    def drop_pending(self, number: int) -> None:
        for p in (self.pending_path(number), self.pending_path(number).with_suffix(".pkl.tmp")):
            if p.exists():
                p.unlink()

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.directory.is_dir():
            return
        for p in sorted(self.directory.glob("trial-*.json")):
            try:
                yield _decode(json.loads(p.read_text()))
            except (OSError, ValueError):
                continue  # damaged: not a complete record (a resume rewrites it)

    def clear(self) -> None:
        if self.directory.is_dir():
            for p in self.directory.glob("trial-*.json*"):
                p.unlink()
            for p in self.directory.glob("pending/trial-*.pkl*"):
                p.unlink()


def outcome_entry(outcome: Any, **extra: Any) -> dict[str, Any]:
    """A ledger entry from a TrialOutcome (model weights are not kept in the ledger)."""
    reps = []
    for rep in outcome.replicates:
        d = asdict(rep)
        d.pop("weights", None)
        d.pop("model_npz", None)
        d.pop("network_config", None)
        reps.append(d)
    entry = {
        "number": outcome.number,
        "state": outcome.state,
        "reason": outcome.reason,
        "pruned_at_epoch": outcome.pruned_at_epoch,
        "intermediate": {str(k): v for k, v in outcome.intermediate.items()},
        "wall_time_s": outcome.wall_time_s,
        "cpu_time_s": outcome.cpu_time_s,
        "pid": outcome.pid,
        "replicates": reps,
    }
    entry.update(extra)
    return entry
