"""What the study runner hands the claim engine: :class:`RunTable`, one per protocol.

``runs`` has one row per run (trial × replicate) with the columns

- ``protocol`` (str), ``trial`` (int), ``replicate`` (int), ``seed`` (int), ``run_id`` (MLflow run
  id or ``""``), ``status`` (one of :data:`RUN_STATUSES`), ``reason`` (str);
- one column per searched or fixed config key, named by its dotted path (``train.batch_size``,
  ``train.optimizer.lr``, ``train.loss``, ``model.activation``); component specs may be mappings,
  JSON text or labels such as ``mse(output=softmax)`` (see :mod:`harness.claims.filters`);
- summary columns ``final/<metric>``, ``best/<metric>``, ``time/train_s``,
  ``throughput/samples_per_s``.

``curves`` has one row per (run, epoch): ``protocol``, ``trial``, ``replicate``, ``epoch`` (0 = at
init, before any update, when recorded; 1..E after each epoch) and one column per metric
(``train/loss``, ``val/accuracy``, ``lr``, ``time/epoch_train_s``, ``throughput/samples_per_s``,
telemetry such as ``grad_norm/dense_0.W``, ``saturation/sigmoid_1``). Metrics may be NaN.

Replicate ``r`` uses the same seed in every configuration of a study, so replicate indices are the
clusters of the seed bootstrap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.claims.errors import ClaimError

__all__ = ["CURVE_KEYS", "RUN_KEYS", "RUN_STATUSES", "RunTable"]

#: Allowed values of the ``status`` column.
RUN_STATUSES = ("completed", "diverged", "pruned", "failed", "early_stopped")
#: Columns that identify a run.
RUN_KEYS = ("protocol", "trial", "replicate")
#: Columns every ``runs`` frame must have.
_RUN_COLUMNS = (*RUN_KEYS, "seed", "status")
#: Columns every ``curves`` frame must have.
CURVE_KEYS = (*RUN_KEYS, "epoch")


def _empty_curves() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64") for c in CURVE_KEYS})


@dataclass
class RunTable:
    """Runs and learning curves of one protocol (or of several, told apart by ``protocol``).

    Construction validates the columns, the statuses and the uniqueness of run keys, and fills
    the optional ``reason`` and ``run_id`` columns with ``""`` when absent.
    """

    runs: pd.DataFrame
    curves: pd.DataFrame = field(default_factory=_empty_curves)

    def __post_init__(self) -> None:
        self.runs = self.runs.copy()
        self.curves = self.curves.copy()
        for col in _RUN_COLUMNS:
            if col not in self.runs.columns:
                raise ClaimError(
                    f"runs.{col}",
                    None,
                    f"a column {col!r} in the runs table (required: {', '.join(_RUN_COLUMNS)})",
                )
        for col in CURVE_KEYS:
            if col not in self.curves.columns:
                raise ClaimError(
                    f"curves.{col}",
                    None,
                    f"a column {col!r} in the curves table (required: {', '.join(CURVE_KEYS)})",
                )
        for col in ("reason", "run_id"):
            if col not in self.runs.columns:
                self.runs[col] = ""
        bad = sorted(set(self.runs["status"].astype(str)) - set(RUN_STATUSES))
        if bad:
            raise ClaimError("runs.status", bad[0], f"one of {', '.join(RUN_STATUSES)}")
        for frame in (self.runs, self.curves):
            frame["protocol"] = frame["protocol"].astype(str)
            for col in ("trial", "replicate"):
                frame[col] = frame[col].astype("int64")
        self.curves["epoch"] = self.curves["epoch"].astype("int64")
        dup = self.runs.duplicated(list(RUN_KEYS))
        if dup.any():
            row = self.runs.loc[dup, list(RUN_KEYS)].iloc[0].to_dict()
            raise ClaimError("runs", row, "one row per (protocol, trial, replicate)")

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_records(
        cls, runs: Iterable[Mapping[str, Any]], curves: Iterable[Mapping[str, Any]] = ()
    ) -> RunTable:
        """Build from lists of dicts (what a runner collects)."""
        curve_rows = [dict(c) for c in curves]
        curve_df = pd.DataFrame(curve_rows) if curve_rows else _empty_curves()
        return cls(pd.DataFrame([dict(r) for r in runs]), curve_df)

    @classmethod
    def concat(cls, tables: Iterable[RunTable]) -> RunTable:
        tabs = list(tables)
        if not tabs:
            raise ClaimError("tables", [], "at least one RunTable to concatenate")
        return cls(
            pd.concat([t.runs for t in tabs], ignore_index=True),
            pd.concat([t.curves for t in tabs], ignore_index=True),
        )

    # -- views ------------------------------------------------------------------------------
    @property
    def protocols(self) -> list[str]:
        return sorted(set(self.runs["protocol"]))

    def for_protocol(self, name: str) -> RunTable:
        """The rows of one protocol."""
        return RunTable(
            self.runs[self.runs["protocol"] == name].reset_index(drop=True),
            self.curves[self.curves["protocol"] == name].reset_index(drop=True),
        )

    def relabel(self, protocol: str) -> RunTable:
        """The same runs under another protocol name (a protocol that reuses another's runs)."""
        runs, curves = self.runs.copy(), self.curves.copy()
        runs["protocol"] = protocol
        curves["protocol"] = protocol
        return RunTable(runs, curves)

    def subset(self, mask: Any) -> RunTable:
        """The runs selected by a boolean mask over ``runs``, with their curves."""
        runs = self.runs.loc[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        keys = set(map(tuple, runs[list(RUN_KEYS)].itertuples(index=False)))
        ckeys = self.curves[list(RUN_KEYS)].itertuples(index=False)
        cmask = np.fromiter((tuple(k) in keys for k in ckeys), dtype=bool, count=len(self.curves))
        return RunTable(runs, self.curves.loc[cmask].reset_index(drop=True))

    def status_counts(self) -> dict[str, int]:
        counts = self.runs["status"].astype(str).value_counts()
        return {s: int(counts.get(s, 0)) for s in RUN_STATUSES}

    def __len__(self) -> int:
        return len(self.runs)
