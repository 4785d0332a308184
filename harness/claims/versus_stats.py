"""Statistic ``count_x_vs``: at how many ``x`` values one side beats the other.

``count_x`` (:mod:`harness.claims.threshold_stats`) counts the ``x`` values at which *one* side's
center meets a fixed condition; ``count_x_vs`` compares two sides at every ``x`` they share and
counts where the comparison meets the condition. N2's second part, "BN ≥ no-BN at ≥ 12 of the
16 init scales"::

    {name: count_x_vs, measure: train_acc, x: model.init.std,
     a: {model.batch_norm: true}, b: {model.batch_norm: false},
     condition: {op: ">=", value: 0}}

with the rule ``{op: ">=", value: 12}``. The comparison is ``center(a) − center(b)`` at each
``x`` (``compare: ratio`` for ``a / b``); ``share: true`` returns the fraction of the shared
``x`` values instead of the count. An ``x`` value where either side has no value (every run
failed) makes the statistic undefined: it is neither a win nor a loss. Like every statistic it
is computed per seed by the engine, so its interval is the seeds' spread of the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.claims.filters import is_numeric_key, parse_where, value_label
from harness.claims.resampling import Sample
from harness.claims.statistics import STATISTICS, _problem, _x_centers
from harness.claims.threshold_stats import _cond_text, _OverXCondition, meets

__all__ = ["CountXVersus"]


@STATISTICS.register("count_x_vs")
class CountXVersus(_OverXCondition):
    """How many shared ``x`` values have ``center(a) − center(b)`` (or ``a / b``) meeting
    ``condition`` (module docstring)."""

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        a: Any,
        b: Any,
        condition: Mapping[str, Any],
        compare: str = "diff",
        share: bool = False,
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.x = x
        self.a = a
        self.b = b
        self.condition = condition
        self.compare = compare
        self.share = share
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.a is None:
            out.append(_problem("a", None, "a filter of one side, e.g. {model.batch_norm: true}"))
        if not isinstance(self.share, bool):
            out.append(_problem("share", self.share, "true (a fraction) or false (a count)"))
        return out

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        xa, ca = _x_centers(
            sample, self.measure, self.x, self._side(sample, mask, self.a), self.center
        )
        xb, cb = _x_centers(
            sample, self.measure, self.x, self._side(sample, mask, self.b), self.center
        )
        shared = [x for x in xa if x in xb]
        if not shared or not all(is_numeric_key(k) for k in shared):
            return np.full(sample.n_draws, np.nan)
        va = ca[:, [xa.index(x) for x in shared]]
        vb = cb[:, [xb.index(x) for x in shared]]
        d = self._combine(va, vb)  # (B, K)
        ok = meets(d, self.op, self.threshold)
        count = ok.sum(axis=1).astype(float)
        count = np.where(np.isnan(va).any(axis=1) | np.isnan(vb).any(axis=1), np.nan, count)
        if sample.n_draws == 1:
            extra["x_meeting"] = [value_label(x) for x, m in zip(shared, ok[0]) if m]
            extra["n_x"] = len(shared)
        return count / len(shared) if self.share else count

    def describe(self) -> str:
        sym = "/" if self.compare == "ratio" else "−"
        what = "share" if self.share else "number"
        return (
            f"{what} of {self.x} values where {self.center} {self.measure} at "
            f"[{parse_where(self.a).describe()}] {sym} at [{parse_where(self.b).describe()}] is "
            f"{_cond_text(self.condition)}{self._suffix()}"
        )
