"""The trial ledger: every finished trial's measurements, written by the driver as JSON files.

Optuna's storage keeps parameters, values and states; MLflow keeps what a person browses. The
ledger keeps the full per-epoch records of every replicate, so that a resumed sweep or a claim
report can rebuild its tables without reading thousands of MLflow runs back (mlflow#8277). One
file per trial (``trial-00042.json``), written atomically: an interrupted write never leaves a
half file, and a trial is in the ledger only once it has finished.
"""

from __future__ import annotations

import json
import math
import os
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
        p = self.path(number)
        return _decode(json.loads(p.read_text())) if p.is_file() else None

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.directory.is_dir():
            return
        for p in sorted(self.directory.glob("trial-*.json")):
            yield _decode(json.loads(p.read_text()))

    def clear(self) -> None:
        if self.directory.is_dir():
            for p in self.directory.glob("trial-*.json*"):
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
        "pid": outcome.pid,
        "replicates": reps,
    }
    entry.update(extra)
    return entry
