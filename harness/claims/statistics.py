"""Statistics of a claim: a registry of functions of the grouped measures of one protocol.

A statistic reduces the ``(B, G, R)`` resampled measure arrays of one protocol (see
:mod:`harness.claims.resampling`) to one value per bootstrap draw, or to one value per *stratum*
when ``by`` is given. Every statistic accepts:

- ``where``: keep only the groups that pass a filter (see :mod:`harness.claims.filters`);
- ``by``: compute the statistic separately at every value of another parameter; ``reduce`` then
  says how the strata combine: ``min``/``max``/``mean``/``median`` reduce the values inside every
  draw (so the CI is the CI of the reduced value), while ``all``/``any`` keep one value per stratum
  and the verdict requires the rule in every / some stratum (Kleene logic).

Groups sharing an ``x`` value (because another scientific parameter also varies) are pooled:
their center is taken over all their runs. ``inf`` (not reached) is handled throughout: medians
and ranks treat it as the largest value, ``inf / finite = inf``, ``finite / inf = 0`` and
``inf / inf`` or ``inf − inf`` is undefined (NaN, which makes the verdict inconclusive).

Adding a statistic: subclass :class:`Statistic`, store the keyword arguments, implement
:meth:`Statistic.stratum`, register it with ``@STATISTICS.register("name")``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from harness.claims.filters import (
    WhereFilter,
    is_numeric_key,
    parse_where,
    sort_keys,
    value_key,
    value_label,
)
from harness.claims.resampling import GroupedMeasures, Sample, center
from models.base import Component
from models.registry import Registry

__all__ = ["REDUCERS", "STATISTICS", "StatValue", "Statistic", "safe_ratio"]

STATISTICS: Registry[type[Statistic]] = Registry("statistic")

#: How the strata of a ``by`` statistic combine.
REDUCERS = ("min", "max", "mean", "median", "all", "any")
_CENTERS = ("median", "mean")
_ENDS = {"min": 0, "max": -1}


def safe_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` with the conventions of the module docstring (inf/inf and 0/0 are NaN)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / b
    out = np.where((b == 0) & (a > 0), np.inf, out)
    out = np.where((b == 0) & (a < 0), -np.inf, out)
    return np.where((b == 0) & (a == 0), np.nan, out)


def safe_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.asarray(a, dtype=float) - np.asarray(b, dtype=float)


@dataclass
class StatValue:
    """A statistic over draws: ``values`` has shape ``(B, S)`` for ``S`` strata."""

    values: np.ndarray
    labels: list[str]
    used: np.ndarray  # (G,) groups the statistic read
    extra: dict[str, Any] = field(default_factory=dict)  # point-estimate details for reports


def _problem(name: str, value: Any, allowed: str) -> tuple[str, Any, str]:
    return (name, value, allowed)


def _filter_mask(data: GroupedMeasures, side: Any) -> np.ndarray:
    """The groups that pass the group filter ``side`` (``a``, ``b``... of a statistic)."""
    return parse_where(side).mask(data.groups)


def _sides_params(*sides: Any) -> set[str]:
    """The parameters the group filters ``sides`` filter on (None: a side not given)."""
    out: set[str] = set()
    for side in sides:
        if side is not None:
            out |= parse_where(side).params
    return out


class Statistic(Component):
    """Base: ``where``/``by``/``reduce`` handling around :meth:`stratum`.

    Subclasses take keyword arguments (stored under the same names), list the measures they read
    in :meth:`measures`, the scientific parameters they group by in :meth:`params`, and compute
    one value per draw in :meth:`stratum`.
    """

    #: True for statistics that compare two groups (they report a standardized effect).
    two_group: bool = False

    measure: str
    where: Any
    by: str | None
    reduce: str

    # -- declared needs --------------------------------------------------------------------------
    def measures(self) -> list[str]:
        return [self.measure]

    def params(self) -> list[str]:
        """Parameters that must be scientific in the protocol (``x``, ``param``, ``by``)."""
        return [self.by] if self.by else []

    def filter_params(self) -> set[str]:
        """Parameters filtered on (``where`` and group selectors); any searched parameter."""
        wf = self.where_filter()
        return wf.params if wf is not None else set()

    def where_filter(self) -> WhereFilter | None:
        return None if self.where is None else parse_where(self.where, "where")

    def validate(self) -> list[tuple[str, Any, str]]:
        out: list[tuple[str, Any, str]] = []
        if getattr(self, "center", "median") not in _CENTERS:
            out.append(_problem("center", getattr(self, "center", None), "median or mean"))
        if self.reduce not in REDUCERS:
            out.append(_problem("reduce", self.reduce, f"one of {', '.join(REDUCERS)}"))
        return out

    # -- evaluation -------------------------------------------------------------------------------
    def compute(self, sample: Sample) -> StatValue:
        """Values ``(B, S)`` for one sample (``S = 1`` unless ``reduce`` is all/any)."""
        data = sample.data
        base = np.ones(data.n_groups, dtype=bool)
        wf = self.where_filter()
        if wf is not None:
            base &= wf.mask(data.groups)
        extra: dict[str, Any] = {}
        if not self.by:
            v = self.stratum(sample, base, extra)
            return StatValue(v[:, None], [""], self._used(data, base), extra)
        keys = data.keys(self.by)
        strata = sort_keys(k for k, ok in zip(keys, base) if ok)
        cols, labels, used = [], [], np.zeros(data.n_groups, dtype=bool)
        for s in strata:
            m = base & np.array([k == s for k in keys])
            sub_extra: dict[str, Any] = {}
            cols.append(self.stratum(sample, m, sub_extra))
            labels.append(f"{self.by}={value_label(s)}")
            used |= self._used(data, m)
            for k, v in sub_extra.items():
                extra.setdefault(k, {})[labels[-1]] = v
        if not cols:
            return StatValue(np.full((sample.n_draws, 1), np.nan), [""], used, extra)
        vals = np.stack(cols, axis=1)  # (B, S)
        if self.reduce in ("all", "any"):
            return StatValue(vals, labels, used, extra)
        reduced = getattr(np, self.reduce)(vals, axis=1)  # NaN in a stratum propagates
        extra["strata"] = dict(zip(labels, vals[0].tolist())) if sample.n_draws == 1 else {}
        return StatValue(reduced[:, None], [f"{self.reduce} over {self.by}"], used, extra)

    def _used(self, data: GroupedMeasures, mask: np.ndarray) -> np.ndarray:
        return mask

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        """One value per draw, shape ``(B,)``, from the groups in ``mask``."""
        raise NotImplementedError

    def effect(self, data: GroupedMeasures) -> dict[str, float]:
        """Standardized effect sizes on the observed data (two-group statistics only)."""
        return {}

    # -- text ------------------------------------------------------------------------------------
    def describe(self) -> str:
        raise NotImplementedError

    def _suffix(self) -> str:
        parts = []
        wf = self.where_filter()
        if wf is not None:
            parts.append(f"where {wf.describe()}")
        if self.by:
            how = {"all": "at every", "any": "at some"}.get(self.reduce, f"{self.reduce} over")
            parts.append(f"{how} {self.by}")
        return (" (" + "; ".join(parts) + ")") if parts else ""


def _x_centers(
    sample: Sample, measure: str, x: str, mask: np.ndarray, how: str
) -> tuple[list[Any], np.ndarray]:
    """Sorted ``x`` keys among the masked groups and the pooled center per key: ``(B, K)``."""
    keys = sample.data.keys(x)
    xs = sort_keys(k for k, ok in zip(keys, mask) if ok)
    if not xs:
        return [], np.full((sample.n_draws, 0), np.nan)
    cols = [sample.pooled_center(measure, mask & np.array([k == v for k in keys]), how) for v in xs]
    return xs, np.stack(cols, axis=1)


@STATISTICS.register("group_center")
class GroupCenter(Statistic):
    """Median (or mean) of a measure over the runs of the groups that pass ``where``."""

    def __init__(
        self,
        *,
        measure: str,
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        return sample.pooled_center(self.measure, mask, self.center)

    def describe(self) -> str:
        return f"{self.center} {self.measure}{self._suffix()}"


class _TwoGroup(Statistic):
    """Groups ``a`` and ``b``: values of ``param``, or filters when ``param`` is omitted."""

    two_group = True
    param: str | None
    a: Any
    b: Any
    center: str

    def params(self) -> list[str]:
        return [*super().params(), *([self.param] if self.param else [])]

    def filter_params(self) -> set[str]:
        out = super().filter_params()
        if not self.param:
            for side in (self.a, self.b):
                if isinstance(side, (Mapping, list)):
                    out |= parse_where(side).params
        return out

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        for name in ("a", "b"):
            side = getattr(self, name)
            if self.param is None and not isinstance(side, (Mapping, list)):
                out.append(
                    _problem(
                        name,
                        side,
                        "a filter such as {model.activation: relu} (or give 'param' and a value)",
                    )
                )
            elif self.param is None:
                try:
                    parse_where(side, name)
                except ValueError as exc:
                    out.append(_problem(name, side, str(exc)))
        return out

    def _side_mask(self, data: GroupedMeasures, side: Any) -> np.ndarray:
        if self.param is None:
            return _filter_mask(data, side)
        keys = data.keys(self.param)
        if side in ("<min>", "<max>"):
            nums = [k for k in keys if is_numeric_key(k)]
            if not nums:
                return np.zeros(len(keys), dtype=bool)
            want: Any = min(nums) if side == "<min>" else max(nums)
        else:
            want = value_key(side)
        return np.array([k == want for k in keys], dtype=bool)

    def _side_label(self, side: Any) -> str:
        if self.param is None:
            return parse_where(side).describe()
        if side in ("<min>", "<max>"):
            return f"{'smallest' if side == '<min>' else 'largest'} {self.param}"
        return f"{self.param} = {value_label(side)}"

    def _used(self, data: GroupedMeasures, mask: np.ndarray) -> np.ndarray:
        """Only the two compared arms: the report's runs/failed/diverged counts are theirs."""
        return mask & (self._side_mask(data, self.a) | self._side_mask(data, self.b))

    def _centers(self, sample: Sample, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ma = mask & self._side_mask(sample.data, self.a)
        mb = mask & self._side_mask(sample.data, self.b)
        return (
            sample.pooled_center(self.measure, ma, self.center),
            sample.pooled_center(self.measure, mb, self.center),
        )

    def effect(self, data: GroupedMeasures) -> dict[str, float]:
        """Paired (by seed) effect: d_z = mean(a − b) / sd(a − b), and Cliff's delta.

        Per seed, each side's value is the median over its groups (within a stratum when ``by``
        is set; strata then contribute more pairs). d_z needs finite values; Cliff's delta
        (P(a > b) − P(a < b) over all pairs) also works with ``inf``.
        """
        arr = data.arrays[self.measure]
        base = np.ones(data.n_groups, dtype=bool)
        wf = self.where_filter()
        if wf is not None:
            base &= wf.mask(data.groups)
        strata = [base]
        if self.by:
            keys = data.keys(self.by)
            strata = [base & np.array([k == s for k in keys]) for s in sort_keys(keys)]
        va, vb = [], []
        for m in strata:
            ma = m & self._side_mask(data, self.a)
            mb = m & self._side_mask(data, self.b)
            if ma.any() and mb.any():
                va.append(center(arr[ma], "median", axis=0))
                vb.append(center(arr[mb], "median", axis=0))
        if not va:
            return {}
        a, b = np.concatenate(va), np.concatenate(vb)
        ok = ~(np.isnan(a) | np.isnan(b))
        a, b = a[ok], b[ok]
        out: dict[str, float] = {"n_pairs": float(a.size)}
        if a.size:
            gt = (a[:, None] > b[None, :]).mean()
            lt = (a[:, None] < b[None, :]).mean()
            out["cliffs_delta"] = float(gt - lt)
        d = safe_diff(a, b)
        if d.size >= 2 and np.isfinite(d).all():
            sd = float(np.std(d, ddof=1))
            mean = float(np.mean(d))
            out["mean_paired_diff"] = mean
            # a deterministic measure differs only by rounding between seeds: no spread to scale by
            noise = sd <= 1e-9 * max(abs(mean), float(np.max(np.abs(d))), 1e-300)
            out["d_z"] = (
                mean / sd if not noise else (math.copysign(math.inf, mean) if mean else 0.0)
            )
        return out


@STATISTICS.register("ratio")
class Ratio(_TwoGroup):
    """center(a) / center(b) of a measure, e.g. epochs(MSE) / epochs(CE)."""

    def __init__(
        self,
        *,
        measure: str,
        a: Any,
        b: Any,
        param: str | None = None,
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.a = a
        self.b = b
        self.param = param
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        ca, cb = self._centers(sample, mask)
        if sample.n_draws == 1:
            extra.update(a=float(ca[0]), b=float(cb[0]))
        return safe_ratio(ca, cb)

    def describe(self) -> str:
        return (
            f"{self.center} {self.measure} at [{self._side_label(self.a)}] / "
            f"at [{self._side_label(self.b)}]{self._suffix()}"
        )


@STATISTICS.register("diff")
class Diff(Ratio):
    """center(a) − center(b) of a measure."""

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        ca, cb = self._centers(sample, mask)
        if sample.n_draws == 1:
            extra.update(a=float(ca[0]), b=float(cb[0]))
        return safe_diff(ca, cb)

    def describe(self) -> str:
        return (
            f"{self.center} {self.measure} at [{self._side_label(self.a)}] − "
            f"at [{self._side_label(self.b)}]{self._suffix()}"
        )


def _rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks along axis 1; a row with a NaN is all NaN (``inf`` ranks last)."""
    r = sps.rankdata(x, axis=1, nan_policy="propagate")
    return np.asarray(r, dtype=float)


@STATISTICS.register("spearman")
class Spearman(Statistic):
    """Spearman correlation between ``x`` and the per-``x`` centers of a measure.

    Needs at least 3 distinct ``x`` values; constant centers (e.g. every group ``inf``) give an
    undefined correlation.
    """

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.x = x
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def params(self) -> list[str]:
        return [*super().params(), self.x]

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        xs, c = _x_centers(sample, self.measure, self.x, mask, self.center)
        if len(xs) < 3 or not all(is_numeric_key(k) for k in xs):
            return np.full(sample.n_draws, np.nan)
        rx = sps.rankdata(np.asarray(xs, dtype=float))
        ry = _rank_rows(c)
        rx = rx - rx.mean()
        ry = ry - ry.mean(axis=1, keepdims=True)
        den = np.sqrt((rx**2).sum() * (ry**2).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = (ry * rx).sum(axis=1) / den
        rho = np.where(den == 0, np.nan, rho)
        if sample.n_draws == 1:
            extra["n_x"] = len(xs)
        return rho

    def describe(self) -> str:
        return f"Spearman ρ({self.x}, {self.center} {self.measure}){self._suffix()}"


class _OverX(Statistic):
    """Statistics of the per-``x`` centers: best, endpoints (``mode`` says what is best)."""

    x: str
    mode: str
    center: str

    def params(self) -> list[str]:
        return [*super().params(), self.x]

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.mode not in ("max", "min"):
            out.append(_problem("mode", self.mode, "max (higher is better) or min"))
        return out

    def _centers(self, sample: Sample, mask: np.ndarray) -> tuple[list[Any], np.ndarray] | None:
        """Per-``x`` centers, or None when ``x`` is not numeric (endpoints need an order)."""
        xs, c = _x_centers(sample, self.measure, self.x, mask, self.center)
        return (xs, c) if all(is_numeric_key(k) for k in xs) else None

    def _best(self, c: np.ndarray) -> np.ndarray:
        return np.max(c, axis=1) if self.mode == "max" else np.min(c, axis=1)

    def _arg_extra(self, xs: list[Any], c: np.ndarray, extra: dict[str, Any]) -> None:
        row = c[0]
        if np.isnan(row).all():
            return
        filled = np.where(np.isnan(row), -np.inf if self.mode == "max" else np.inf, row)
        i = int(np.argmax(filled) if self.mode == "max" else np.argmin(filled))
        extra["argbest"] = value_label(xs[i])
        extra["at_edge"] = i in (0, len(xs) - 1)


@STATISTICS.register("gap_to_best")
class GapToBest(_OverX):
    """How much worse the endpoint ``at`` (min or max ``x``) is than the best ``x`` (≥ 0)."""

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        at: str = "min",
        mode: str = "max",
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.x = x
        self.at = at
        self.mode = mode
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.at not in _ENDS:
            out.append(_problem("at", self.at, "min or max (the smallest or largest x)"))
        return out

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        got = self._centers(sample, mask)
        if got is None or len(got[0]) < 2:
            return np.full(sample.n_draws, np.nan)
        xs, c = got
        if sample.n_draws == 1:
            self._arg_extra(xs, c, extra)
        best, end = self._best(c), c[:, _ENDS[self.at]]
        return safe_diff(best, end) if self.mode == "max" else safe_diff(end, best)

    def describe(self) -> str:
        end = "smallest" if self.at == "min" else "largest"
        return (
            f"how much worse {self.center} {self.measure} is at the {end} {self.x} than at the "
            f"best {self.x}{self._suffix()}"
        )


@STATISTICS.register("interior_optimum")
class InteriorOptimum(_OverX):
    """Signed margin of the best interior ``x`` over the best endpoint.

    Positive when the optimum is interior (the best interior center beats both endpoints) and by
    how much; negative when an endpoint is best. ``units: sd`` divides by the pooled seed s.d.
    (root mean within-group variance over seeds of the observed data, fixed across draws, since
    a resampled s.d. from a few seeds is degenerate).
    """

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        mode: str = "max",
        units: str = "raw",
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.x = x
        self.mode = mode
        self.units = units
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.units not in ("raw", "sd"):
            out.append(_problem("units", self.units, "raw or sd (pooled seed standard deviations)"))
        return out

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        got = self._centers(sample, mask)
        if got is None or len(got[0]) < 3:
            return np.full(sample.n_draws, np.nan)
        xs, c = got
        if sample.n_draws == 1:
            self._arg_extra(xs, c, extra)
        inner, ends = c[:, 1:-1], c[:, [0, -1]]
        if self.mode == "max":
            margin = safe_diff(np.max(inner, axis=1), np.max(ends, axis=1))
        else:
            margin = safe_diff(np.min(ends, axis=1), np.min(inner, axis=1))
        if self.units == "sd":
            arr = sample.data.arrays[self.measure][mask]
            finite = np.where(np.isfinite(arr), arr, np.nan)
            with np.errstate(invalid="ignore"):
                var = np.nanvar(finite, axis=1, ddof=1) if finite.shape[1] > 1 else np.array([])
            sd = float(np.sqrt(np.nanmean(var))) if np.isfinite(var).any() else math.nan
            if sample.n_draws == 1:
                extra["seed_sd"] = sd
            margin = safe_ratio(margin, np.full_like(margin, sd))
        return margin

    def describe(self) -> str:
        unit = ", in seed s.d." if self.units == "sd" else ""
        return (
            f"margin of the best interior {self.x} over the better endpoint, {self.center} "
            f"{self.measure}{unit} (> 0: interior optimum){self._suffix()}"
        )


@STATISTICS.register("endpoint_ratio")
class EndpointRatio(_OverX):
    """How much worse the better endpoint is than the optimum, as a ratio (≥ 1).

    ``mode: min`` (e.g. time to target): min(T(first x), T(last x)) / min over x of T.
    ``mode: max``: max over x / max(first, last). ≥ k implies the optimum is interior.
    """

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        mode: str = "min",
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.x = x
        self.mode = mode
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        got = self._centers(sample, mask)
        if got is None or len(got[0]) < 2:
            return np.full(sample.n_draws, np.nan)
        xs, c = got
        if sample.n_draws == 1:
            self._arg_extra(xs, c, extra)
        ends = c[:, [0, -1]]
        if self.mode == "min":
            return safe_ratio(np.min(ends, axis=1), self._best(c))
        return safe_ratio(self._best(c), np.max(ends, axis=1))

    def describe(self) -> str:
        return (
            f"{self.center} {self.measure} at the better endpoint of {self.x} ÷ at the best "
            f"{self.x}{self._suffix()}"
        )
