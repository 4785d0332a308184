"""Per-group measure arrays and the cluster bootstrap over seeds.

Statistics see a protocol's measures as arrays of shape ``(G, R)``: ``G`` groups (one per
combination of the scientific parameters, after the nuisance selection) × ``R`` replicate indices.
Replicate ``r`` ran with the same seed in every group, so the bootstrap resamples *replicate
indices* with replacement and applies the same resampled set to every group (a cluster
bootstrap): a draw is an index array ``idx`` of shape ``(B, R)`` and the resampled data are
``values[:, idx]`` reordered to ``(B, G, R)``. Statistics are vectorised over the leading ``B``
axis; the point estimate is the same computation with ``idx = arange(R)[None]``.

Missing runs are NaN; "not reached" is ``inf``. Centers use ``nanmedian``/``nanmean``, so ``inf``
sorts last and a group with every run failed has a NaN center, which makes the statistic
undefined rather than silently good.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.claims.filters import sort_key_tuples, value_key

__all__ = [
    "GroupedMeasures",
    "Sample",
    "bootstrap_indices",
    "center",
    "percentile_ci",
]


def center(x: np.ndarray, how: str = "median", axis: int = -1) -> np.ndarray:
    """NaN-ignoring median or mean along ``axis``; all-NaN slices give NaN without a warning."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if how == "median":
            # np.nanmedian takes a slow masked path on small arrays; without NaN it is np.median
            return np.median(x, axis=axis) if not np.isnan(x).any() else np.nanmedian(x, axis=axis)
        if how == "mean":
            return np.nanmean(x, axis=axis)
    raise ValueError(f"center must be 'median' or 'mean', got {how!r}")


def bootstrap_indices(n_replicates: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n_replicates)`` replicate indices drawn with replacement."""
    return rng.integers(0, n_replicates, size=(n_boot, n_replicates))


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Percentile interval of bootstrap draws: ``(low, high, fraction of undefined draws)``.

    NaN draws (statistic undefined in that resample) are dropped and their fraction returned, so
    the caller can refuse a verdict when too many are undefined. The lower/higher order statistics
    are used instead of interpolation, which is undefined between two infinite draws.
    """
    s = np.asarray(samples, dtype=float).ravel()
    ok = s[~np.isnan(s)]
    frac_nan = 1.0 - ok.size / s.size if s.size else 1.0
    if ok.size == 0:
        return float("nan"), float("nan"), frac_nan
    alpha = (1.0 - level) / 2.0
    lo = float(np.quantile(ok, alpha, method="lower"))
    hi = float(np.quantile(ok, 1.0 - alpha, method="higher"))
    return lo, hi, frac_nan


@dataclass
class GroupedMeasures:
    """The measure table of one protocol as ``(G, R)`` arrays.

    Attributes
    ----------
    groups : DataFrame
        ``G`` rows, one per combination of ``params`` (values as in the table), plus ``n_runs``,
        ``n_failed`` (no measure value) and ``n_diverged`` per group.
    replicates : list of int
        The replicate index of each of the ``R`` columns.
    arrays : dict of str to ndarray, shape (G, R)
        One array per measure.
    notes : list of str
        Data problems found while grouping (several runs in one cell, which are then
        combined by their median).
    """

    groups: pd.DataFrame
    replicates: list[int]
    arrays: dict[str, np.ndarray]
    status: np.ndarray  # (G, R) object array of run statuses ("" = no run)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_table(
        cls, table: pd.DataFrame, params: Sequence[str], measures: Sequence[str]
    ) -> GroupedMeasures:
        """Group a per-run measure table (see :func:`harness.claims.measures.compute_measures`)."""
        params = list(params)
        keys = (
            [tuple(value_key(v) for v in row) for row in table[params].itertuples(index=False)]
            if params
            else [()] * len(table)
        )
        order: dict[tuple, int] = {}
        first_rows: list[int] = []
        for i, k in enumerate(keys):
            if k not in order:
                order[k] = len(order)
                first_rows.append(i)
        sorted_keys = sort_key_tuples(order)
        gindex = {k: g for g, k in enumerate(sorted_keys)}
        reps = sorted({int(r) for r in table["replicate"]}) if len(table) else []
        rindex = {r: j for j, r in enumerate(reps)}
        G, R = len(sorted_keys), len(reps)
        gi = np.array([gindex[k] for k in keys], dtype=int)
        ri = np.array([rindex[int(r)] for r in table["replicate"]], dtype=int)
        notes: list[str] = []
        counts = np.zeros((G, R), dtype=int)
        np.add.at(counts, (gi, ri), 1)
        arrays: dict[str, np.ndarray] = {}
        for m in measures:
            v = table[m].to_numpy(dtype=float)
            arr = np.full((G, R), np.nan)
            if (counts > 1).any():
                cells: dict[tuple[int, int], list[float]] = {}
                for g, r, x in zip(gi, ri, v):
                    cells.setdefault((g, r), []).append(x)
                for (g, r), xs in cells.items():
                    arr[g, r] = center(np.asarray(xs))
            else:
                arr[gi, ri] = v
            arrays[m] = arr
        if (counts > 1).any():
            notes.append(
                f"{int((counts > 1).sum())} (group, seed) cells hold several runs (a parameter "
                "varies that is not declared scientific or nuisance); their median is used"
            )
        status = np.full((G, R), "", dtype=object)
        st = table["status"].astype(str).to_numpy() if len(table) else np.array([], dtype=object)
        for g, r, s in zip(gi, ri, st):
            status[g, r] = s if not status[g, r] else status[g, r]
        rows = [table.iloc[first_rows[order[k]]] for k in sorted_keys]
        groups = (
            pd.DataFrame([{p: row[p] for p in params} for row in rows])
            if rows
            else pd.DataFrame(columns=params)
        )
        groups["n_runs"] = counts.sum(axis=1) if G else []
        groups["n_diverged"] = [int(np.sum(st[gi == g] == "diverged")) for g in range(G)]
        return cls(groups=groups, replicates=reps, arrays=arrays, status=status, notes=notes)

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def n_replicates(self) -> int:
        return len(self.replicates)

    def keys(self, param: str) -> list:
        """Canonical keys of ``param`` per group."""
        return [value_key(v) for v in self.groups[param]]

    def failed(self, measure: str, mask: np.ndarray) -> tuple[int, int]:
        """``(runs, runs without a value)`` in the groups of ``mask`` for one measure."""
        has_run = self.status[mask] != ""
        vals = self.arrays[measure][mask]
        return int(has_run.sum()), int((has_run & np.isnan(vals)).sum())

    def seeds_with_data(self, measures: Sequence[str], mask: np.ndarray) -> int:
        """Replicates with at least one value in the masked groups, for any of ``measures``."""
        ok = np.zeros(self.n_replicates, dtype=bool)
        for m in measures:
            ok |= ~np.isnan(self.arrays[m][mask]).all(axis=0)
        return int(ok.sum())

    def sample(self, idx: np.ndarray) -> Sample:
        return Sample(self, idx)

    def point(self) -> Sample:
        """The observed data as a one-draw sample."""
        return Sample(self, np.arange(self.n_replicates)[None, :])


class Sample:
    """Resampled arrays ``(B, G, R)`` of a :class:`GroupedMeasures`, cached per measure."""

    def __init__(self, data: GroupedMeasures, idx: np.ndarray) -> None:
        self.data = data
        self.idx = idx
        self._cache: dict[str, np.ndarray] = {}

    @property
    def n_draws(self) -> int:
        return int(self.idx.shape[0])

    def values(self, measure: str) -> np.ndarray:
        if measure not in self._cache:
            arr = self.data.arrays[measure]  # (G, R)
            self._cache[measure] = np.moveaxis(arr[:, self.idx], 1, 0)  # (B, G, R)
        return self._cache[measure]

    def pooled_center(self, measure: str, mask: np.ndarray, how: str = "median") -> np.ndarray:
        """Center over every run of the masked groups: shape ``(B,)``."""
        v = self.values(measure)[:, mask, :]
        return center(v.reshape(v.shape[0], -1), how)
