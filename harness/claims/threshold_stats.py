"""Threshold statistics: the largest x that meets a condition, how many x meet it, seed success.

Registered in :data:`~harness.claims.statistics.STATISTICS`; like every statistic they are
computed per bootstrap draw, so their CIs carry the seed uncertainty.

``largest_x``
    The largest value of ``x`` whose center of ``measure`` meets ``condition``, e.g. the
    largest stable learning rate (N1, A11)::

        {name: largest_x, measure: final_acc, x: train.optimizer.lr,
         condition: {op: ">=", value: 0.5}}

    ``report: <measure>`` returns that measure's center at the found ``x`` instead of ``x``
    itself (A7: the dead fraction at the largest lr that did not diverge). With ``a`` and ``b``
    (filters of the groups, e.g. ``{model.activation: relu}``) it returns ``compare`` (``ratio``
    or ``diff``) of the two sides' results. ``if_none`` is the value when no ``x`` meets the
    condition (default NaN: undefined, which makes the verdict inconclusive; ``0`` suits "the
    largest lr that trains" when none trains).
``count_x``
    How many ``x`` values meet the condition (N2: init scales that train); with ``a``/``b``
    the difference count(a) − count(b).
``share_diff``
    The share of seeds whose arm ``a`` meets ``condition`` minus the share whose arm ``b`` does,
    paired by seed, with an exact (Bonferroni-combined Clopper-Pearson) interval: "more random
    starts end in a global minimum with Momentum than with SGD" on a 0/1 measure.
``ratio_to_best``
    center at one ``x`` over the best center of the other ``x`` values (B7: the full batch's
    time to target over the best mini-batch's).
``success_fraction``
    The fraction of seeds that succeed. One side (``where``): the share of runs whose value
    meets ``condition`` (X1, A13: "in every seed" is ``>= 1``). Two sides (``a``, ``b``):
    per seed, the difference (or ``compare: ratio``) of the two sides' values (each side's
    median over its groups for that seed) must meet ``condition`` (L6: standardized ≤ raw
    epochs is ``{op: "<=", value: 0}`` on the difference; A8's "by ≥ 3 points" is
    ``{op: "<=", value: -0.03}``). The catalogue's "in ≥ 4/5 seeds" is then the rule
    ``{op: ">=", value: 0.8}``. Runs without a value (failed) are left out of the fraction.
    The engine evaluates it per seed (each seed's success, or its share over the groups) and its
    interval is the Clopper-Pearson interval of the proportion
    (:func:`harness.claims.intervals.proportion_interval`), which holds its level. Note what that
    means for rules: with every one of 10 seeds a success the 95 % lower bound is 0.69, so "in
    every seed" (≥ 1) can never be supported by an interval; write such rules on a center
    (``group_center``) or with a threshold the seed count can reach.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np

from harness.claims.filters import is_numeric_key, parse_where, value_key, value_label
from harness.claims.intervals import Interval, paired_share_diff_interval, proportion_interval
from harness.claims.resampling import Sample, center
from harness.claims.statistics import (
    STATISTICS,
    Diff,
    Statistic,
    _filter_mask,
    _OverX,
    _problem,
    _sides_params,
    _x_centers,
    safe_diff,
    safe_ratio,
)

__all__ = ["CountX", "LargestX", "RatioToBest", "ShareDiff", "SuccessFraction", "meets"]

_OPS = (">=", ">", "<=", "<")
_COMPARE = ("ratio", "diff")


def meets(values: np.ndarray, op: str, value: float) -> np.ndarray:
    """Elementwise ``values <op> value``; NaN never meets a condition."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        if op == ">=":
            out = v >= value
        elif op == ">":
            out = v > value
        elif op == "<=":
            out = v <= value
        elif op == "<":
            out = v < value
        else:
            raise ValueError(f"op must be one of {_OPS}, got {op!r}")
    return np.asarray(out & ~np.isnan(v), dtype=bool)


def _condition_problems(cond: Any) -> list[tuple[str, Any, str]]:
    if not isinstance(cond, Mapping) or set(cond) - {"op", "value"} or "value" not in cond:
        return [
            _problem("condition", cond, "a mapping {op: '>=' | '>' | '<=' | '<', value: <number>}")
        ]
    if cond.get("op", ">=") not in _OPS:
        return [_problem("condition.op", cond.get("op"), f"one of {', '.join(_OPS)}")]
    v = cond["value"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        return [_problem("condition.value", v, "a number")]
    return []


def _cond_text(cond: Mapping[str, Any]) -> str:
    return f"{cond.get('op', '>=')} {cond['value']:g}"


class _Sided(Statistic):
    """Optional sides ``a``/``b`` (group filters) compared by ``compare``."""

    a: Any
    b: Any
    compare: str
    condition: Mapping[str, Any]

    def filter_params(self) -> set[str]:
        return super().filter_params() | _sides_params(self.a, self.b)

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate() + _condition_problems(self.condition)
        if (self.a is None) != (self.b is None):
            out.append(_problem("b" if self.b is None else "a", None, "both a and b, or neither"))
        for name in ("a", "b"):
            side = getattr(self, name)
            if side is not None:
                try:
                    parse_where(side, name)
                except ValueError as exc:
                    out.append(_problem(name, side, str(exc)))
        if self.compare not in _COMPARE:
            out.append(_problem("compare", self.compare, "ratio or diff"))
        return out

    @property
    def op(self) -> str:
        return str(self.condition.get("op", ">="))

    @property
    def threshold(self) -> float:
        return float(self.condition["value"])

    def _side(self, sample: Sample, mask: np.ndarray, side: Any) -> np.ndarray:
        return mask & _filter_mask(sample.data, side)

    def _combine(self, va: np.ndarray, vb: np.ndarray) -> np.ndarray:
        return safe_ratio(va, vb) if self.compare == "ratio" else safe_diff(va, vb)

    def _sides_text(self, what: str) -> str:
        if self.a is None:
            return what
        sym = "/" if self.compare == "ratio" else "−"
        return (
            f"{what} at [{parse_where(self.a).describe()}] {sym} "
            f"at [{parse_where(self.b).describe()}]"
        )


class _OverXCondition(_Sided):
    x: str
    center: str

    def params(self) -> list[str]:
        return [*super().params(), self.x]

    def _met(self, sample: Sample, mask: np.ndarray) -> tuple[list[Any], np.ndarray] | None:
        """Sorted numeric ``x`` keys and a ``(B, K)`` mask of where the condition holds."""
        xs, c = _x_centers(sample, self.measure, self.x, mask, self.center)
        if not xs or not all(is_numeric_key(k) for k in xs):
            return None
        return xs, meets(c, self.op, self.threshold)

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        if self.a is None:
            return self._one(sample, mask, extra, "")
        va = self._one(sample, self._side(sample, mask, self.a), extra, "a_")
        vb = self._one(sample, self._side(sample, mask, self.b), extra, "b_")
        return self._combine(va, vb)

    def _one(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any], tag: str) -> np.ndarray:
        raise NotImplementedError


@STATISTICS.register("largest_x")
class LargestX(_OverXCondition):
    """The largest ``x`` whose center of ``measure`` meets ``condition`` (module docstring)."""

    #: which of the ``x`` meeting the condition: the last (largest) or, in
    #: :class:`~harness.claims.smallest_x.SmallestX`, the first (smallest)
    pick: ClassVar[Literal["first", "last"]] = "last"

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        condition: Mapping[str, Any],
        report: str = "x",
        if_none: float | None = None,
        a: Any = None,
        b: Any = None,
        compare: str = "ratio",
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.x = x
        self.condition = condition
        self.report = report
        self.if_none = if_none
        self.a = a
        self.b = b
        self.compare = compare
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def measures(self) -> list[str]:
        return [self.measure] + ([self.report] if self.report != "x" else [])

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        f = self.if_none
        if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float))):
            out.append(_problem("if_none", f, "a number (or omit it: undefined)"))
        return out

    def _one(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any], tag: str) -> np.ndarray:
        got = self._met(sample, mask)
        none = math.nan if self.if_none is None else float(self.if_none)
        if got is None:
            return np.full(sample.n_draws, np.nan)
        xs, ok = got
        K = len(xs)
        any_ok = np.asarray(ok.any(axis=1), dtype=bool)
        if self.pick == "first":
            at = np.argmax(ok, axis=1)  # index of the first True per draw (0 where none)
        else:
            at = K - 1 - np.argmax(ok[:, ::-1], axis=1)  # index of the last True per draw
        if self.report == "x":
            vals = np.asarray(xs, dtype=float)[at]
        else:
            _, rc = _x_centers(sample, self.report, self.x, mask, self.center)
            vals = rc[np.arange(rc.shape[0]), at]
        out = np.where(any_ok, vals, none)
        if sample.n_draws == 1:
            extra[f"{tag}{self._word}_x"] = (
                float(np.asarray(xs, dtype=float)[at[0]]) if any_ok[0] else None
            )
            extra[f"{tag}x_meeting"] = [float(x) for x, m in zip(xs, ok[0]) if m]
        return out

    @property
    def _word(self) -> str:
        return "smallest" if self.pick == "first" else "largest"

    def describe(self) -> str:
        what = (
            f"{self._word} {self.x} with {self.center} {self.measure} {_cond_text(self.condition)}"
        )
        if self.report != "x":
            what = f"{self.center} {self.report} at the {what}"
        return self._sides_text(what) + self._suffix()


@STATISTICS.register("count_x")
class CountX(_OverXCondition):
    """How many ``x`` values have a center of ``measure`` meeting ``condition``."""

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        condition: Mapping[str, Any],
        a: Any = None,
        b: Any = None,
        compare: str = "diff",
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.x = x
        self.condition = condition
        self.a = a
        self.b = b
        self.compare = compare
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def _one(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any], tag: str) -> np.ndarray:
        got = self._met(sample, mask)
        if got is None:
            return np.full(sample.n_draws, np.nan)
        xs, ok = got
        if sample.n_draws == 1:
            extra[f"{tag}x_meeting"] = [float(x) for x, m in zip(xs, ok[0]) if m]
            extra[f"{tag}n_x"] = len(xs)
        return ok.sum(axis=1).astype(float)

    def describe(self) -> str:
        what = f"number of {self.x} values with {self.center} {self.measure} {_cond_text(self.condition)}"
        return self._sides_text(what) + self._suffix()


@STATISTICS.register("success_fraction")
class SuccessFraction(_Sided):
    """The fraction of seeds (runs) that meet ``condition`` (module docstring)."""

    def __init__(
        self,
        *,
        measure: str,
        condition: Mapping[str, Any],
        a: Any = None,
        b: Any = None,
        compare: str = "diff",
        where: Any = None,
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.condition = condition
        self.a = a
        self.b = b
        self.compare = compare
        self.where = where
        self.by = by
        self.reduce = reduce

    def seed_interval(self, per_seed: np.ndarray, level: float) -> tuple[float, Interval]:
        """The engine's interval hook: per-seed success shares → Clopper-Pearson."""
        v = np.asarray(per_seed, dtype=float)
        ok = v[~np.isnan(v)]
        return proportion_interval(float(ok.sum()), int(ok.size), level)

    def _counts(self, sample: Sample, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(successes, defined)`` per draw, each of shape ``(B,)``; None without both sides."""
        v = sample.values(self.measure)  # (B, G, R)
        if self.a is None:
            per = v[:, mask, :].reshape(v.shape[0], -1)  # every run of the groups
        else:
            ma, mb = self._side(sample, mask, self.a), self._side(sample, mask, self.b)
            if not ma.any() or not mb.any():
                return None
            va = center(v[:, ma, :], "median", axis=1)  # (B, R): per seed, median over groups
            vb = center(v[:, mb, :], "median", axis=1)
            per = self._combine(va, vb)
        n = np.sum(~np.isnan(per), axis=1)
        hit = np.sum(meets(per, self.op, self.threshold), axis=1)
        return hit, n

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        got = self._counts(sample, mask)
        if got is None:
            return np.full(sample.n_draws, np.nan)
        hit, n = got
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(n > 0, hit / np.maximum(n, 1), np.nan)
        if sample.n_draws == 1:
            extra["n_success"] = int(hit[0])
            extra["n_defined"] = int(n[0])
        return frac.astype(float)

    def describe(self) -> str:
        if self.a is None:
            what = f"fraction of runs with {self.measure} {_cond_text(self.condition)}"
        else:
            sym = "/" if self.compare == "ratio" else "−"
            what = (
                f"fraction of seeds with {self.measure} at [{parse_where(self.a).describe()}] "
                f"{sym} at [{parse_where(self.b).describe()}] {_cond_text(self.condition)}"
            )
        return what + self._suffix()


@STATISTICS.register("share_diff")
class ShareDiff(Diff):
    """Share of seeds whose arm a meets ``condition`` minus the share whose arm b does (paired).

    Per seed ``r`` the value is ``1[a_r meets] − 1[b_r meets]`` (``−1``, ``0`` or ``1``; each
    arm's value is its median over its groups in that seed; NaN when an arm has no value); the
    estimate is their mean, the difference of the two success shares. Its interval is
    :func:`harness.claims.intervals.paired_share_diff_interval` (Clopper-Pearson bounds combined
    by Bonferroni, at least the nominal level): the mean of ``{−1, 0, 1}`` values has an exact
    interval, which the mean of arbitrary run values has not (``center: mean`` is refused).
    """

    def __init__(
        self,
        *,
        measure: str,
        condition: Mapping[str, Any],
        a: Any,
        b: Any,
        param: str | None = None,
        where: Any = None,
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        super().__init__(measure=measure, a=a, b=b, param=param, where=where, by=by, reduce=reduce)
        self.condition = condition

    def validate(self) -> list[tuple[str, Any, str]]:
        return super().validate() + _condition_problems(self.condition)

    def seed_interval(self, per_seed: np.ndarray, level: float) -> tuple[float, Interval]:
        """The engine's interval hook (see the class docstring)."""
        return paired_share_diff_interval(per_seed, level)

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        ca, cb = self._centers(sample, mask)
        op, value = str(self.condition.get("op", ">=")), float(self.condition["value"])
        d = meets(ca, op, value).astype(float) - meets(cb, op, value).astype(float)
        return np.where(np.isnan(ca) | np.isnan(cb), np.nan, d)

    def describe(self) -> str:
        cond = _cond_text(self.condition)
        return (
            f"share of seeds with {self.measure} {cond} at [{self._side_label(self.a)}] − "
            f"at [{self._side_label(self.b)}]{self._suffix()}"
        )


@STATISTICS.register("ratio_to_best")
class RatioToBest(_OverX):
    """center(x = ``at``) / the best center over the other ``x`` values.

    ``at`` is ``min``, ``max`` (the smallest or largest ``x``) or a value of ``x``; ``mode``
    says what is best (``min`` for times, ``max`` for accuracies). B7: the full batch's time to
    target over the best mini-batch's, ``{at: max, mode: min}`` (≤ 1.2 supports "just use the
    full batch"). ``exclude_at: false`` compares with the best over every ``x`` (then ≥ 1 for
    ``mode: min``).
    """

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        at: Any = "max",
        mode: str = "min",
        exclude_at: bool = True,
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.x = x
        self.at = at
        self.mode = mode
        self.exclude_at = exclude_at
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        got = self._centers(sample, mask)
        if got is None or len(got[0]) < 2:
            return np.full(sample.n_draws, np.nan)
        xs, c = got
        if self.at in ("min", "max"):
            i = 0 if self.at == "min" else len(xs) - 1
        else:
            want = value_key(self.at)
            if want not in xs:
                return np.full(sample.n_draws, np.nan)
            i = xs.index(want)
        others = [j for j in range(len(xs)) if j != i] if self.exclude_at else list(range(len(xs)))
        rest = c[:, others]
        best = np.max(rest, axis=1) if self.mode == "max" else np.min(rest, axis=1)
        if sample.n_draws == 1:
            filled = np.where(np.isnan(rest[0]), np.inf if self.mode == "min" else -np.inf, rest[0])
            k = int(np.argmin(filled) if self.mode == "min" else np.argmax(filled))
            extra["best_other"] = value_label(xs[others[k]])
            extra["at_value"] = float(c[0, i])
        return safe_ratio(c[:, i], best)

    def describe(self) -> str:
        at = {"min": f"the smallest {self.x}", "max": f"the largest {self.x}"}.get(
            str(self.at), f"{self.x} = {value_label(self.at)}"
        )
        other = "the other" if self.exclude_at else "all"
        return (
            f"{self.center} {self.measure} at {at} ÷ the best over {other} {self.x} values"
            f"{self._suffix()}"
        )
