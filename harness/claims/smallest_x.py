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

from harness.claims.statistics import STATISTICS
from harness.claims.threshold_stats import LargestX

__all__ = ["SmallestX"]


@STATISTICS.register("smallest_x")
class SmallestX(LargestX):
    """The smallest ``x`` whose center of ``measure`` meets ``condition`` (module docstring)."""

    pick = "first"
