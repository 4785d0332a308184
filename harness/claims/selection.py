"""Isolation of the scientific effect: choosing the nuisance setting per scientific group.

The Deep Learning Tuning Playbook's isolation plot compares scientific values each at its best
nuisance setting. For a protocol with nuisance parameters (e.g. the learning rate) and a
``select: {measure, mode}`` block, every scientific group keeps the nuisance setting whose
median (or mean) selection measure over seeds is best; all seeds of that setting are kept, so
the statistics still see every replicate. With ``select.at`` one setting is chosen at a reference
group (e.g. the lr best at batch size 64) and used for every group: a "shared" protocol.

The choice is made once on all seeds, before the intervals: they do not include the
uncertainty of which setting won, which the report states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.claims.filters import (
    is_numeric_key,
    sort_key_tuples,
    sort_keys,
    value_key,
    value_label,
)
from harness.claims.resampling import center
from harness.claims.text import fmt

__all__ = ["Selection", "select_nuisance"]


@dataclass
class Selection:
    """Result of :func:`select_nuisance`.

    Attributes
    ----------
    measures : DataFrame
        The kept rows of the per-run measure table.
    table : DataFrame or None
        One row per scientific group: the winning nuisance values (as labels), the winner's
        center of the selection measure, and how many settings were compared. None when the
        protocol has no nuisance parameter.
    notes : list of str
        Caveats: winners at the edge of a searched grid, groups without any valid setting.
    """

    measures: pd.DataFrame
    table: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def _keys(df: pd.DataFrame, cols: Sequence[str]) -> list[tuple]:
    if not cols:
        return [()] * len(df)
    return [tuple(value_key(v) for v in row) for row in df[list(cols)].itertuples(index=False)]


def _label(cols: Sequence[str], key: tuple) -> str:
    return ", ".join(f"{c}={value_label(k)}" for c, k in zip(cols, key)) or "(all)"


def select_nuisance(
    measures: pd.DataFrame,
    *,
    scientific: Sequence[str],
    nuisance: Sequence[str],
    measure: str,
    mode: str = "max",
    how: str = "median",
    at_mask: np.ndarray | None = None,
    at_label: str = "",
) -> Selection:
    """Keep, per scientific group, the runs of the best nuisance setting (see module docstring).

    Parameters
    ----------
    measures : DataFrame
        Per-run measure table of one protocol.
    scientific, nuisance : sequence of str
        Parameter columns by role.
    measure : str
        Column used to rank settings; ``mode`` ``max`` or ``min`` says which is better.
    how : str
        ``median`` or ``mean`` over seeds.
    at_mask : ndarray of bool, optional
        Rows of the reference group; when given, one setting is chosen there for all groups.
    """
    if not nuisance:
        return Selection(measures)
    nkeys = _keys(measures, nuisance)
    skeys = _keys(measures, scientific)
    vals = measures[measure].to_numpy(dtype=float)
    settings = sort_key_tuples(nkeys)
    notes: list[str] = []

    def best_setting(rows: np.ndarray) -> tuple[tuple | None, float, int, bool]:
        """Winner, its score, settings compared, and whether every setting tied."""
        scores = []
        for s in settings:
            m = rows & np.array([k == s for k in nkeys])
            c = float(center(vals[m], how)) if m.any() else np.nan
            scores.append(c)
        arr = np.array(scores, dtype=float)
        valid = ~np.isnan(arr)
        if not valid.any():
            return None, np.nan, 0, False
        filled = np.where(valid, arr, -np.inf if mode == "max" else np.inf)
        # argmax/argmin return the first of equal scores: ties go to the first setting in order
        i = int(np.argmax(filled) if mode == "max" else np.argmin(filled))
        all_tied = bool(valid.sum() > 1 and np.all(arr[valid] == arr[i]))
        return settings[i], float(arr[i]), int(valid.sum()), all_tied

    keep = np.zeros(len(measures), dtype=bool)
    rows_out = []
    groups = sort_key_tuples(skeys)
    if at_mask is not None:
        winner, score, n, tied = best_setting(np.asarray(at_mask, dtype=bool))
        if winner is None:
            notes.append(
                f"select: no nuisance setting has a valid {measure} at {at_label}; "
                "no runs were kept"
            )
        else:
            keep = np.array([k == winner for k in nkeys])
            rows_out.append(
                {
                    "group": f"(all, chosen at {at_label})",
                    **_winner_cols(nuisance, winner),
                    f"{how} {measure}": score,
                    "settings compared": n,
                    "tie": tied,
                }
            )
    else:
        for g in groups:
            in_g = np.array([k == g for k in skeys])
            winner, score, n, tied = best_setting(in_g)
            label = _label(scientific, g)
            if winner is None:
                notes.append(
                    f"select: no nuisance setting of {label} has a valid {measure} "
                    "(every run failed); the group is left out"
                )
                continue
            keep |= in_g & np.array([k == winner for k in nkeys])
            if tied:
                notes.append(
                    f"select: every setting of {', '.join(nuisance)} ties for {label} "
                    f"({how} {measure} = {fmt(score)}); the first was kept"
                )
            rows_out.append(
                {
                    "group": label,
                    **_winner_cols(nuisance, winner),
                    f"{how} {measure}": score,
                    "settings compared": n,
                    "tie": tied,
                }
            )
    table = pd.DataFrame(rows_out)
    notes.extend(_edge_notes(table, nuisance, nkeys))
    return Selection(measures[keep].reset_index(drop=True), table, notes)


def _winner_cols(nuisance: Sequence[str], winner: tuple) -> dict[str, str]:
    return {p: value_label(k) for p, k in zip(nuisance, winner)}


def _edge_notes(table: pd.DataFrame, nuisance: Sequence[str], nkeys: list[tuple]) -> list[str]:
    """Winners at the smallest or largest value of a numeric grid of ≥ 3 values (ties skipped)."""
    notes = []
    for j, p in enumerate(nuisance):
        grid = sort_keys(k[j] for k in nkeys)
        if len(grid) < 3 or not all(is_numeric_key(k) for k in grid) or table.empty:
            continue
        lo, hi = value_label(grid[0]), value_label(grid[-1])
        edge = table[table[p].isin([lo, hi]) & ~table["tie"].astype(bool)]
        if edge.empty:
            continue
        groups = "; ".join(f"{g} ({v})" for g, v in zip(edge["group"], edge[p]))
        notes.append(
            f"the best {p} lies at the edge of the searched values "
            f"({', '.join(value_label(g) for g in grid)}) for {groups}: the optimum may lie "
            "outside the grid"
        )
    return notes
