"""Contrast statistics: best-of-set, top-k share, differences of differences, rank agreement.

Registered here (usable from a claim YAML by name; the train − validation gap per run is the
``metric_gap`` measure of :mod:`harness.claims.weight_measures`):

- statistic ``best_of``: the best group center within a set of groups, or the best of set ``a``
  minus (or divided by) the best of set ``b`` (R3: best regularised big net − best small net);
- statistic ``group_share``: the fraction of groups whose center meets a condition (O3: Adam
  at its default lr reaches 0.9 on ≥ 3 of 4 data sets);
- statistic ``top_k_share``: the fraction of the ``k`` best groups that pass a filter (H1: how
  many of the 10 best random-search trials have lr ≥ 1e-3);
- statistic ``diff_of_diffs``: ``(a − b) − (c − d)`` of pooled centers, a difference of
  differences (X2: how much more the CNN loses than the MLP when the sequence is shuffled);
- statistic ``rank_agreement``: Kendall τ-b (or Spearman ρ) between the orderings of the groups
  by two measures, each oriented so that larger is better (L5: ranking by loss value vs by
  accuracy); 1 = the same order, −1 = reversed;
- statistic ``group_bootstrap``: any statistic above, with the *groups* resampled as well as the
  seeds. A random search has one run per trial and the trials are the random units, so the
  engine's seed bootstrap alone would give a zero-width interval; this wrapper gives the honest
  one (trials drawn with replacement, from a seeded generator so reports reproduce).

Every statistic follows the conventions of :mod:`harness.claims.statistics` (``where``, ``by``,
``reduce``; NaN propagates to an inconclusive verdict; ``inf`` ranks last).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.claims.errors import ClaimError
from harness.claims.filters import parse_where
from harness.claims.intervals import Interval
from harness.claims.resampling import GroupedMeasures, Sample, center, percentile_ci
from harness.claims.statistics import (
    STATISTICS,
    Statistic,
    StatValue,
    _filter_mask,
    _sides_params,
    safe_diff,
    safe_ratio,
)
from harness.claims.verdicts import Rule
from harness.seeding import derive_seed
from models.registry import SpecError, UnknownNameError

__all__ = ["BestOf", "DiffOfDiffs", "GroupBootstrap", "GroupShare", "RankAgreement", "TopKShare"]


# -- helpers -------------------------------------------------------------------------------------
def _group_centers(sample: Sample, measure: str, mask: np.ndarray, how: str) -> np.ndarray:
    """Center over seeds of every masked group: shape ``(B, n_masked)``."""
    v = sample.values(measure)[:, mask, :]
    return np.asarray(center(v, how, axis=2), dtype=float)


def _filter_problems(name: str, spec: Any, required: bool = True) -> list[tuple[str, Any, str]]:
    if spec is None and not required:
        return []
    if not isinstance(spec, (Mapping, list)):
        return [(name, spec, "a filter such as {model.batch_norm: true}")]
    try:
        parse_where(spec, name)
    except ValueError as exc:
        return [(name, spec, str(exc))]
    return []


class _QuietSample(Sample):
    """A one-draw sample inside a group-bootstrap draw: no report details (they are slow)."""

    quiet = True


def _reporting(sample: Sample) -> bool:
    """Whether to record point-estimate details for the report."""
    return sample.n_draws == 1 and not getattr(sample, "quiet", False)


def _labels(data: GroupedMeasures, mask: np.ndarray) -> list[str]:
    params = [c for c in data.groups.columns if c not in ("n_runs", "n_diverged")]
    rows = data.groups[mask]
    return [", ".join(f"{p}={r[p]}" for p in params) for _, r in rows.iterrows()]


# -- best of a set --------------------------------------------------------------------------------
@STATISTICS.register("best_of")
class BestOf(Statistic):
    """Best group center in set ``a`` (a filter), or best(a) − best(b) / best(a) ÷ best(b).

    "Best" is the max (``mode: max``) or min of the per-group centers over seeds; a group whose
    every run failed has a NaN center, which makes the statistic undefined (never silently
    skipped). ``compare`` says how the two bests combine when ``b`` is given.
    """

    def __init__(
        self,
        *,
        measure: str,
        a: Any,
        b: Any = None,
        mode: str = "max",
        compare: str = "diff",
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.a = a
        self.b = b
        self.mode = mode
        self.compare = compare
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        out += _filter_problems("a", self.a)
        out += _filter_problems("b", self.b, required=False)
        if self.mode not in ("max", "min"):
            out.append(("mode", self.mode, "max (higher is better) or min"))
        if self.compare not in ("diff", "ratio"):
            out.append(("compare", self.compare, "diff (best(a) − best(b)) or ratio"))
        return out

    def filter_params(self) -> set[str]:
        return super().filter_params() | _sides_params(self.a, self.b)

    def _best(
        self, sample: Sample, mask: np.ndarray, extra: dict[str, Any], tag: str
    ) -> np.ndarray:
        if not mask.any():
            return np.full(sample.n_draws, np.nan)
        c = _group_centers(sample, self.measure, mask, self.center)
        with np.errstate(invalid="ignore"):
            best = np.max(c, axis=1) if self.mode == "max" else np.min(c, axis=1)
        if _reporting(sample) and not np.isnan(best[0]):
            i = int(np.argmax(c[0]) if self.mode == "max" else np.argmin(c[0]))
            extra[f"best_{tag}"] = float(best[0])
            extra[f"argbest_{tag}"] = _labels(sample.data, mask)[i]
        return best

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        data = sample.data
        ba = self._best(sample, mask & _filter_mask(data, self.a), extra, "a")
        if self.b is None:
            return ba
        bb = self._best(sample, mask & _filter_mask(data, self.b), extra, "b")
        return safe_diff(ba, bb) if self.compare == "diff" else safe_ratio(ba, bb)

    def describe(self) -> str:
        word = "best" if self.mode == "max" else "lowest"
        a = f"{word} {self.center} {self.measure} over [{parse_where(self.a).describe()}]"
        if self.b is None:
            return a + self._suffix()
        op = "−" if self.compare == "diff" else "÷"
        return f"{a} {op} {word} over [{parse_where(self.b).describe()}]{self._suffix()}"


# -- top-k share ---------------------------------------------------------------------------------
@STATISTICS.register("top_k_share")
class TopKShare(Statistic):
    """Fraction of the ``k`` best groups (by center over seeds) that pass the filter ``share``.

    Groups are ranked by their center (``mode: max``: the largest first); ties at the k-th place
    are broken by the group order (the sorted scientific values), which is deterministic. NaN
    centers rank last. Fewer than ``k`` groups: the share of all of them.
    """

    def __init__(
        self,
        *,
        measure: str,
        k: int,
        share: Any,
        mode: str = "max",
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.k = k
        self.share = share
        self.mode = mode
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 1:
            out.append(("k", self.k, "an integer >= 1"))
        out += _filter_problems("share", self.share)
        if self.mode not in ("max", "min"):
            out.append(("mode", self.mode, "max (higher is better) or min"))
        return out

    def filter_params(self) -> set[str]:
        return super().filter_params() | parse_where(self.share).params

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        if not mask.any():
            return np.full(sample.n_draws, np.nan)
        c = _group_centers(sample, self.measure, mask, self.center)  # (B, n)
        passes = _filter_mask(sample.data, self.share)[mask]  # (n,)
        key = -c if self.mode == "max" else c.copy()
        key = np.where(np.isnan(key), np.inf, key)  # NaN ranks last
        order = np.argsort(key, axis=1, kind="stable")
        k = min(self.k, c.shape[1])
        top = order[:, :k]
        share = passes[top].mean(axis=1)
        if _reporting(sample):
            extra["k"] = k
            extra["top"] = [_labels(sample.data, mask)[i] for i in top[0]]
        return np.asarray(share, dtype=float)

    def describe(self) -> str:
        word = "best" if self.mode == "max" else "lowest"
        return (
            f"share of the {self.k} {word} groups by {self.center} {self.measure} with "
            f"[{parse_where(self.share).describe()}]{self._suffix()}"
        )


# -- share of groups meeting a condition --------------------------------------------------------
@STATISTICS.register("group_share")
class GroupShare(Statistic):
    """Fraction of the groups (after ``where``) whose center meets ``condition``.

    E.g. "Adam at its default lr works on ≥ 3 of 4 data sets": the groups are the data sets,
    ``condition: {op: ">=", value: 0.9}`` on the median validation accuracy, rule ``>= 0.75``.
    A group with a NaN center (every run failed) makes the share undefined. Unlike
    ``count_x`` the groups need no numeric order.
    """

    def __init__(
        self,
        *,
        measure: str,
        condition: Mapping[str, Any],
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.condition = condition
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def _rule(self) -> Rule:
        return Rule.parse(dict(self.condition))

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if not isinstance(self.condition, Mapping):
            return [
                *out,
                ("condition", self.condition, "a rule {op, value}, e.g. {op: '>=', value: 0.9}"),
            ]
        try:
            self._rule()
        except ClaimError as exc:
            out.append((f"condition.{exc.path}", exc.value, exc.allowed))
        return out

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        if not mask.any():
            return np.full(sample.n_draws, np.nan)
        c = _group_centers(sample, self.measure, mask, self.center)
        rule = self._rule()
        meets = np.vectorize(rule.holds, otypes=[bool])(c) if c.size else np.zeros_like(c, bool)
        share = meets.mean(axis=1)
        share = np.where(np.isnan(c).any(axis=1), np.nan, share)
        if _reporting(sample):
            labels = _labels(sample.data, mask)
            extra["meeting"] = [lab for lab, ok in zip(labels, meets[0]) if ok]
        return np.asarray(share, dtype=float)

    def describe(self) -> str:
        return (
            f"share of groups whose {self.center} {self.measure} is "
            f"{self._rule().describe()}{self._suffix()}"
        )


# -- difference of differences --------------------------------------------------------------------
@STATISTICS.register("diff_of_diffs")
class DiffOfDiffs(Statistic):
    """``(center(a) − center(b)) − (center(c) − center(d))``, each side a filter on the groups.

    E.g. a = CNN on the original data, b = CNN on shuffled data, c = MLP original, d = MLP
    shuffled: how much more accuracy the CNN loses under the shuffle than the MLP. Centers pool
    every run of a side's groups, as ``diff`` does.
    """

    def __init__(
        self,
        *,
        measure: str,
        a: Any,
        b: Any,
        c: Any,
        d: Any,
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.measure = measure
        self.a = a
        self.b = b
        self.c = c
        self.d = d
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        for k in ("a", "b", "c", "d"):
            out += _filter_problems(k, getattr(self, k))
        return out

    def filter_params(self) -> set[str]:
        return super().filter_params() | _sides_params(self.a, self.b, self.c, self.d)

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        vals = {}
        for k in ("a", "b", "c", "d"):
            m = mask & _filter_mask(sample.data, getattr(self, k))
            vals[k] = sample.pooled_center(self.measure, m, self.center)
        if sample.n_draws == 1:
            extra.update({k: float(v[0]) for k, v in vals.items()})
        return safe_diff(safe_diff(vals["a"], vals["b"]), safe_diff(vals["c"], vals["d"]))

    def describe(self) -> str:
        s = {k: parse_where(getattr(self, k)).describe() for k in ("a", "b", "c", "d")}
        return (
            f"({self.center} {self.measure} at [{s['a']}] − at [{s['b']}]) − "
            f"(at [{s['c']}] − at [{s['d']}]){self._suffix()}"
        )


# -- rank agreement ------------------------------------------------------------------------------
def _kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b between the columns of ``x`` and ``y`` row by row: ``(B, n)`` → ``(B,)``.

    ``inf`` compares as larger than every finite value (and equal to itself); a row with a NaN is
    NaN; a row in which either ordering is all ties is NaN (τ undefined).
    """
    n = x.shape[1]
    iu = np.triu_indices(n, k=1)
    with np.errstate(invalid="ignore"):
        dx = np.sign(x[:, :, None] - x[:, None, :])[:, iu[0], iu[1]]
        dy = np.sign(y[:, :, None] - y[:, None, :])[:, iu[0], iu[1]]
    # inf − inf is NaN: those pairs are ties, not unknowns
    for d, v in ((dx, x), (dy, y)):
        both_inf = np.isinf(v[:, iu[0]]) & (v[:, iu[0]] == v[:, iu[1]])
        d[both_inf] = 0.0
    bad = np.isnan(x).any(axis=1) | np.isnan(y).any(axis=1)
    dx, dy = np.nan_to_num(dx), np.nan_to_num(dy)
    num = (dx * dy).sum(axis=1)
    den = np.sqrt(np.abs(dx).sum(axis=1) * np.abs(dy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = num / den
    return np.where(bad | (den == 0), np.nan, tau)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy import stats as sps

    bad = np.isnan(x).any(axis=1) | np.isnan(y).any(axis=1)
    rx = np.asarray(sps.rankdata(np.nan_to_num(x, nan=0.0), axis=1), dtype=float)
    ry = np.asarray(sps.rankdata(np.nan_to_num(y, nan=0.0), axis=1), dtype=float)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rx * ry).sum(axis=1) / den
    return np.where(bad | (den == 0), np.nan, rho)


@STATISTICS.register("rank_agreement")
class RankAgreement(Statistic):
    """Agreement between two orderings of the groups: by measure ``a`` and by measure ``b``.

    Each measure is oriented so that "better" is larger (``a_mode``/``b_mode: min`` flips the
    sign, e.g. a loss), then Kendall τ-b (``method: kendall``, the default) or Spearman ρ of the
    per-group centers. 1: both measures rank the groups the same; −1: in reverse. With two
    groups τ is ±1, i.e. "do both measures pick the same winner". Needs ≥ 2 groups.
    """

    def __init__(
        self,
        *,
        a: str,
        b: str,
        a_mode: str = "max",
        b_mode: str = "max",
        method: str = "kendall",
        where: Any = None,
        center: str = "median",
        by: str | None = None,
        reduce: str = "all",
    ) -> None:
        self.a = a
        self.b = b
        self.a_mode = a_mode
        self.b_mode = b_mode
        self.method = method
        self.where = where
        self.center = center
        self.by = by
        self.reduce = reduce

    @property
    def measure(self) -> str:  # type: ignore[override]
        return self.a

    def measures(self) -> list[str]:
        return [self.a, self.b]

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        for k in ("a_mode", "b_mode"):
            if getattr(self, k) not in ("max", "min"):
                out.append((k, getattr(self, k), "max (higher is better) or min"))
        if self.method not in ("kendall", "spearman"):
            out.append(("method", self.method, "kendall or spearman"))
        return out

    def stratum(self, sample: Sample, mask: np.ndarray, extra: dict[str, Any]) -> np.ndarray:
        if mask.sum() < 2:
            return np.full(sample.n_draws, np.nan)
        ca = _group_centers(sample, self.a, mask, self.center)
        cb = _group_centers(sample, self.b, mask, self.center)
        if self.a_mode == "min":
            ca = -ca
        if self.b_mode == "min":
            cb = -cb
        f = _kendall_rows if self.method == "kendall" else _spearman_rows
        out = f(ca, cb)
        if _reporting(sample):
            labels = _labels(sample.data, mask)
            key_a = np.where(np.isnan(ca[0]), -np.inf, ca[0])
            key_b = np.where(np.isnan(cb[0]), -np.inf, cb[0])
            extra["best_by_a"] = labels[int(np.argmax(key_a))]
            extra["best_by_b"] = labels[int(np.argmax(key_b))]
        return out

    def describe(self) -> str:
        word = "Kendall τ" if self.method == "kendall" else "Spearman ρ"

        def side(m: str, mode: str) -> str:
            return f"{self.center} {m} ({'lower' if mode == 'min' else 'higher'} is better)"

        return (
            f"{word} between the group rankings by {side(self.a, self.a_mode)} and by "
            f"{side(self.b, self.b_mode)}{self._suffix()}"
        )


# -- resampling groups as well as seeds ----------------------------------------------------------
def _subset(data: GroupedMeasures, rows: np.ndarray) -> GroupedMeasures:
    return GroupedMeasures(
        groups=data.groups.iloc[rows].reset_index(drop=True),
        replicates=list(data.replicates),
        arrays={m: a[rows] for m, a in data.arrays.items()},
        status=data.status[rows],
        notes=[],
    )


@STATISTICS.register("group_bootstrap")
class GroupBootstrap(Statistic):
    """Wrap a statistic so its interval resamples the groups as well as the seeds.

    For studies whose random units are the groups themselves (random-search trials, a few seeds
    each): the estimate is the wrapped statistic on the observed data (seeds pooled), and the
    interval is the percentile interval of ``n_boot`` draws, each of ``G`` groups drawn with
    replacement and ``R`` seeds drawn with replacement, from a generator seeded by ``seed`` (so
    reports reproduce). The engine reads it through :meth:`seed_interval`; the per-seed values it
    computes first only count the seeds where the statistic is undefined. The wrapped statistic
    must not use ``by`` with all/any (its strata could vanish in a draw).
    """

    def __init__(self, *, statistic: Mapping[str, Any], seed: int = 0, n_boot: int = 1000) -> None:
        self.statistic = dict(statistic) if isinstance(statistic, Mapping) else statistic
        self.seed = seed
        self.n_boot = n_boot
        self._error = ""
        try:
            inner = STATISTICS.build(self.statistic)
        except (UnknownNameError, SpecError, TypeError, ValueError) as exc:
            # reported by validate(), which the claim parser calls right after construction
            self._error = str(exc)
            inner = STATISTICS.build({"name": "group_center", "measure": "?"})
        self.inner: Statistic = inner
        self.where = None
        self.by = inner.by
        self.reduce = inner.reduce
        self.two_group = inner.two_group
        self._point = math.nan
        self._draws = np.array([])
        self._n_groups = 0

    @property
    def measure(self) -> str:  # type: ignore[override]
        return self.inner.measures()[0]

    def measures(self) -> list[str]:
        return self.inner.measures()

    def params(self) -> list[str]:
        return self.inner.params()

    def filter_params(self) -> set[str]:
        return self.inner.filter_params()

    def validate(self) -> list[tuple[str, Any, str]]:
        if self._error:
            return [
                ("statistic", self.statistic, f"a statistic spec {{name, ...}} ({self._error})")
            ]
        out = [(f"statistic.{k}", v, a) for k, v, a in self.inner.validate()]
        if self.inner.by and self.inner.reduce in ("all", "any"):
            out.append(("statistic.reduce", self.inner.reduce, "min, max, mean or median"))
        if isinstance(self.inner, GroupBootstrap):
            out.append(("statistic.name", "group_bootstrap", "a statistic other than itself"))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            out.append(("seed", self.seed, "an integer"))
        if not isinstance(self.n_boot, int) or isinstance(self.n_boot, bool) or self.n_boot < 100:
            out.append(("n_boot", self.n_boot, "an integer >= 100"))
        return out

    def draws(self, data: GroupedMeasures) -> np.ndarray:
        """``n_boot`` values of the statistic on groups and seeds resampled with replacement."""
        G, R = data.n_groups, max(data.n_replicates, 1)
        rng = np.random.default_rng(derive_seed(self.seed, "group_bootstrap"))
        out = np.full(self.n_boot, np.nan)
        if G == 0:
            return out
        for b in range(self.n_boot):
            rows = np.sort(rng.integers(0, G, size=G))
            idx = rng.integers(0, R, size=(1, R))
            out[b] = self.inner.compute(_QuietSample(_subset(data, rows), idx)).values[0, 0]
        return out

    def compute(self, sample: Sample) -> StatValue:
        sv = self.inner.compute(sample)
        if sample.n_draws > 1:
            # the engine's per-seed pass: prepare the interval seed_interval() returns
            data = sample.data
            self._point = float(self.inner.compute(data.point()).values[0, 0])
            self._draws = self.draws(data)
            self._n_groups = data.n_groups
        return sv

    def seed_interval(self, per_seed: np.ndarray, level: float) -> tuple[float, Interval]:
        """The engine's interval hook: the group-and-seed bootstrap of :meth:`compute`."""
        lo, hi, _ = percentile_ci(self._draws, level) if self._draws.size else (math.nan,) * 3
        iv = Interval(lo, hi, level, level, "group_bootstrap", self._n_groups)
        return self._point, iv

    def effect(self, data: GroupedMeasures) -> dict[str, float]:
        return self.inner.effect(data)

    def describe(self) -> str:
        return f"{self.inner.describe()} [interval: bootstrap over groups and seeds]"
