"""Statistic ``smallest_x``: the smallest ``x`` whose center of a measure meets a condition.

The mirror of ``largest_x`` (:mod:`harness.claims.threshold_stats`), for "how much does it take
to reach a target": the smallest width at which a network family reaches a validation accuracy
(X3: depth reaches the target with fewer parameters)::

    {name: smallest_x, measure: val_acc, x: model.width, condition: {op: ">=", value: 0.5},
     report: n_params, a: {model.depth: 4}, b: {model.depth: 1}, compare: ratio}

``report: <measure>`` returns that measure's center at the found ``x`` (the parameter count of
the smallest net that reaches the target) instead of ``x``; ``a``/``b`` compare two sides
(``ratio`` or ``diff``); ``if_none`` is the value when no ``x`` meets the condition (default
NaN: undefined, so the verdict is inconclusive). Computed per resampling draw like every
statistic, so its interval carries the seed uncertainty.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.claims.resampling import Sample
from harness.claims.statistics import STATISTICS, _x_centers
from harness.claims.threshold_stats import LargestX, _cond_text

__all__ = ["SmallestX"]


@STATISTICS.register("smallest_x")
class SmallestX(LargestX):
    """The smallest ``x`` whose center of ``measure`` meets ``condition`` (module docstring)."""

    def _one(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any], tag: str) -> np.ndarray:
        got = self._met(sample, mask)
        none = math.nan if self.if_none is None else float(self.if_none)
        if got is None:
            return np.full(sample.n_draws, np.nan)
        xs, ok = got
        any_ok = np.asarray(ok.any(axis=1), dtype=bool)
        first = np.argmax(ok, axis=1)  # index of the first True per draw (0 where none)
        if self.report == "x":
            vals = np.asarray(xs, dtype=float)[first]
        else:
            _, rc = _x_centers(sample, self.report, self.x, mask, self.center)
            vals = rc[np.arange(rc.shape[0]), first]
        out = np.where(any_ok, vals, none)
        if sample.n_draws == 1:
            extra[f"{tag}smallest_x"] = (
                float(np.asarray(xs, dtype=float)[first[0]]) if any_ok[0] else None
            )
            extra[f"{tag}x_meeting"] = [float(x) for x, m in zip(xs, ok[0]) if m]
        return out

    def describe(self) -> str:
        what = f"smallest {self.x} with {self.center} {self.measure} {_cond_text(self.condition)}"
        if self.report != "x":
            what = f"{self.center} {self.report} at the {what}"
        return self._sides_text(what) + self._suffix()
