"""Intervals that say their method and the level they actually reach.

Everything the harness prints as an interval over seeds comes from here: claim verdicts, the
measured-values tables of reports, the sweep summaries (``trials.csv``, the CLI, the parent run)
and the figures' bands.

Why not a percentile bootstrap? With ``n`` seeds a bootstrap of a median has few distinct
resamples: at 3 seeds its "95 % CI" is the range of the seeds, which covers the true median only
3 times in 4. The methods here hold their level at the seed counts the budgets use:

- :func:`median_interval` (``order_statistic``): the distribution-free interval
  ``[x_(j), x_(n+1-j)]`` of the median of ``n`` independent values. Its coverage is exactly
  ``1 − 2·P(Bin(n, ½) ≤ j − 1)`` for continuous data (at least that with ties), whatever the
  distribution: skew, heavy tails, ``∞`` (a target never reached sorts last) included. ``j`` is the
  largest rank whose coverage is at least the nominal level; when even the range of the seeds
  (``j = 1``) falls short, the range is returned with the level it reaches (3 seeds: 75 %),
  every printout says so, and no verdict rests on it (:data:`LEVEL_TOLERANCE`).
- :func:`t_interval` (``student_t``): mean ± t·s/√n, for statistics centred on a mean.
- Two-arm statistics (ratios, differences) are *paired* over the shared seeds: the statistic is
  computed per seed (seed ``r`` of arm a against seed ``r`` of arm b) and the interval is that of
  the per-seed values (see :mod:`harness.claims.engine`).

``NaN`` (a value that could not be computed in a seed) is treated as unknown: it may be anything,
so it counts as ``−∞`` for the lower bound and ``+∞`` for the upper one. The interval only widens,
its coverage never drops; when too many values are unknown it becomes unbounded and no verdict
can rest on it.

:func:`seed_interval` is the one call sweep summaries and figures use; :func:`fmt_estimate`
prints an estimate with its interval rounded outward, so the estimate is never outside its own
printed interval.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = [
    "LEVEL_TOLERANCE",
    "METHODS",
    "Interval",
    "estimate",
    "fmt_est_ci",
    "fmt_estimate",
    "interval_for",
    "median_coverage",
    "median_interval",
    "order_statistic_rank",
    "paired_share_diff_interval",
    "pct",
    "proportion_interval",
    "seed_interval",
    "t_interval",
]

#: Method ids and how reports name them.
METHODS = {
    "order_statistic": "order-statistic interval of the median over seeds",
    "student_t": "Student-t interval of the mean over seeds",
    "clopper_pearson": "Clopper-Pearson (exact) interval of the proportion of seeds",
    "paired_clopper_pearson": (
        "difference of two shares paired by seed: Clopper-Pearson bounds of P(a only) and "
        "P(b only), Bonferroni-combined"
    ),
    "group_bootstrap": "percentile bootstrap over groups (random-search trials) and seeds",
}


#: How far below the nominal level an interval may reach and still decide a verdict (issue 8's
#: target: coverage within 2 points of the stated level). Below it a rule is not judged: with
#: 3 seeds the range covers the median 75 % of the time, and a rule whose true value sits on
#: its threshold would come out decisive one time in four.
LEVEL_TOLERANCE = 0.02


@dataclass(frozen=True)
class Interval:
    """``[low, high]`` with the method that made it and the level it reaches.

    Attributes
    ----------
    low, high : float
        Bounds (``±inf`` allowed; NaN when nothing could be computed).
    level : float
        Coverage the method reaches with ``n`` values (exact for continuous data).
    nominal : float
        The level that was asked for; ``level < nominal`` when the seeds cannot reach it.
    method : str
        A key of :data:`METHODS`.
    n : int
        Values the interval rests on (unknown values included).
    rank : int
        For ``order_statistic``: ``j`` of ``[x_(j), x_(n+1-j)]``; 0 otherwise.
    """

    low: float
    high: float
    level: float
    nominal: float
    method: str
    n: int
    rank: int = 0

    @property
    def short_of_nominal(self) -> bool:
        """True when the seeds cannot reach the nominal level (the level reached is lower)."""
        return self.level < self.nominal - 1e-9

    @property
    def too_weak_to_decide(self) -> bool:
        """True when the level reached is more than :data:`LEVEL_TOLERANCE` below the nominal one:
        no verdict may rest on this interval (the engine makes it inconclusive)."""
        return self.level < self.nominal - LEVEL_TOLERANCE - 1e-9

    @property
    def defined(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def contains(self, x: float) -> bool:
        return bool(self.low <= x <= self.high)

    def label(self) -> str:
        """How the interval was made and its level, e.g. ``range of 3 seeds, 75.0 %``."""
        lvl = pct(self.level)
        if not self.defined:
            return f"no interval: undefined in all {self.n} seeds"
        if self.method == "order_statistic":
            if self.n < 2:
                return f"{self.n} seed, no interval"
            if self.rank == 1:
                what = f"range of {self.n} seeds"
            else:
                what = f"{_ordinal(self.rank)} lowest to {_ordinal(self.rank)} highest of {self.n} seeds"
            text = f"{what}, {lvl}"
        elif self.method == "clopper_pearson":
            text = f"Clopper-Pearson over {self.n} seeds, at least {lvl}"
        elif self.method == "paired_clopper_pearson":
            text = f"paired Clopper-Pearson difference (Bonferroni) over {self.n} seeds, at least {lvl}"
        elif self.method == "group_bootstrap":
            text = f"percentile bootstrap over {self.n} groups and their seeds, about {lvl}"
        else:
            text = f"Student t over {self.n} seeds, {lvl} if the seeds are near-normal"
        return text

    def note(self) -> str:
        """``""``, or why the level is below the nominal one."""
        if not self.short_of_nominal:
            return ""
        return f"{self.n} seeds cannot reach {pct(self.nominal)}; {pct(self.level)} is the level reached"


def pct(x: float) -> str:
    v = 100 * x
    return f"{v:.0f} %" if abs(v - round(v)) < 0.05 else f"{v:.1f} %"


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


@functools.lru_cache(maxsize=256)
def median_coverage(n: int, rank: int) -> float:
    """Exact coverage of ``[x_(rank), x_(n+1-rank)]`` for the median of ``n`` continuous values."""
    if n < 1 or rank < 1 or 2 * rank > n + 1:
        return 0.0
    return float(1.0 - 2.0 * sps.binom.cdf(rank - 1, n, 0.5))


@functools.lru_cache(maxsize=256)
def order_statistic_rank(n: int, nominal: float) -> tuple[int, float]:
    """The largest ``j`` whose interval reaches ``nominal``, and its level (``j = 1`` if none does)."""
    if n < 2:
        return 1, 0.0
    best = 1
    for j in range(1, (n + 1) // 2 + 1):
        if median_coverage(n, j) >= nominal - 1e-12:
            best = j
        else:
            break
    return best, median_coverage(n, best)


def median_interval(values: Sequence[float] | np.ndarray, nominal: float = 0.95) -> Interval:
    """Order-statistic interval of the median of ``values`` (NaN = unknown, see module doc)."""
    x = np.asarray(values, dtype=float).ravel()
    n = int(x.size)
    j, level = order_statistic_rank(n, nominal)
    if n == 0 or np.isnan(x).all():
        return Interval(math.nan, math.nan, 0.0, nominal, "order_statistic", n, j)
    if n == 1:
        return Interval(float(x[0]), float(x[0]), 0.0, nominal, "order_statistic", 1, 1)
    lo_sorted = np.sort(np.where(np.isnan(x), -np.inf, x))
    hi_sorted = np.sort(np.where(np.isnan(x), np.inf, x))
    return Interval(
        float(lo_sorted[j - 1]), float(hi_sorted[n - j]), level, nominal, "order_statistic", n, j
    )


def t_interval(values: Sequence[float] | np.ndarray, nominal: float = 0.95) -> Interval:
    """Mean ± t·s/√n. Needs finite values: any NaN or ±inf gives an unbounded interval."""
    x = np.asarray(values, dtype=float).ravel()
    n = int(x.size)
    if n < 2:
        v = float(x[0]) if n else math.nan
        return Interval(v, v, 0.0, nominal, "student_t", n)
    if not np.isfinite(x).all():
        return Interval(-math.inf, math.inf, nominal, nominal, "student_t", n)
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + nominal / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean - half, mean + half, nominal, nominal, "student_t", n)


def proportion_interval(successes: float, n: int, nominal: float = 0.95) -> tuple[float, Interval]:
    """``(k / n, interval)`` of a proportion: the Clopper-Pearson (exact) interval.

    Its coverage is at least ``nominal`` for every true proportion (it is conservative), which a
    percentile bootstrap of a fraction of a few seeds is not (3 of 3 seeds gives [1, 1]). Note
    what that means for rules on a fraction of seeds: with every seed a success the lower bound
    is ``((1 − nominal) / 2) ** (1 / n)``, 0.29 for 3 seeds and 0.69 for 10, so "in every seed"
    (≥ 1) can never be supported by an interval. ``successes`` may be fractional (a seed's share
    of successful runs over several groups).
    """
    if n <= 0:
        return math.nan, Interval(math.nan, math.nan, 0.0, nominal, "clopper_pearson", 0)
    k = float(successes)
    alpha = 1.0 - nominal
    lo = 0.0 if k <= 0 else float(sps.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k >= n else float(sps.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return k / n, Interval(lo, hi, nominal, nominal, "clopper_pearson", n)


def paired_share_diff_interval(
    d: Sequence[float] | np.ndarray, nominal: float = 0.95
) -> tuple[float, Interval]:
    """``(mean, interval)`` of per-seed differences ``d ∈ {−1, 0, 1}`` of two success indicators.

    ``d = 1`` where only arm a succeeded, ``−1`` where only arm b did: the mean is the difference
    of the two arms' success shares, ``p₊ − p₋``. Each of ``p₊`` and ``p₋`` gets a Clopper-Pearson
    interval at level ``1 − α/2``; by the union bound ``[L₊ − U₋, U₊ − L₋]`` covers ``p₊ − p₋``
    with probability at least ``1 − α`` whatever the arms' dependence (exact, conservative). A
    NaN seed is unknown: it counts as ``−1`` for the low end and ``+1`` for the high end.
    """
    x = np.asarray(d, dtype=float).ravel()
    n = int(x.size)
    if n == 0 or np.isnan(x).all():
        return math.nan, Interval(math.nan, math.nan, 0.0, nominal, "paired_clopper_pearson", n)
    unknown = int(np.isnan(x).sum())
    plus, minus = int(np.sum(x == 1)), int(np.sum(x == -1))
    half = 1.0 - (1.0 - nominal) / 2
    _, lo_plus = proportion_interval(plus, n, half)
    _, hi_plus = proportion_interval(plus + unknown, n, half)
    _, lo_minus = proportion_interval(minus, n, half)
    _, hi_minus = proportion_interval(minus + unknown, n, half)
    known = n - unknown
    est = (plus - minus) / known
    low, high = lo_plus.low - hi_minus.high, hi_plus.high - lo_minus.low
    return est, Interval(low, high, nominal, nominal, "paired_clopper_pearson", n)


def estimate(values: Sequence[float] | np.ndarray, how: str = "median") -> float:
    """NaN-ignoring median (``inf`` sorts last) or mean of ``values``; NaN when none is known."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan
    if how == "mean":
        return float(x.mean()) if np.isfinite(x).all() else math.nan
    with np.errstate(invalid="ignore"):
        med = float(np.median(x))
    # −∞ and +∞ in the middle pair have no mean: take the lower middle value
    return med if not math.isnan(med) else float(np.sort(x)[(x.size - 1) // 2])


def interval_for(
    values: Sequence[float] | np.ndarray, how: str = "median", nominal: float = 0.95
) -> tuple[float, Interval]:
    """``(estimate, interval)`` of per-seed values: the median with its order-statistic interval,
    or the mean with a Student-t interval (``how="mean"``)."""
    if how == "mean":
        return estimate(values, "mean"), t_interval(values, nominal)
    est = estimate(values, "median")
    iv = median_interval(values, nominal)
    if math.isnan(est) or not iv.defined:
        return est, iv
    # an even count with ∞ on one side: the median may fall between two order statistics
    return min(max(est, iv.low), iv.high), iv


def seed_interval(
    values: Sequence[float] | np.ndarray,
    bounds: tuple[float, float] | None = None,
    nominal: float = 0.95,
) -> tuple[float, Interval]:
    """Median over seeds and its order-statistic interval: the one call for summaries and figures.

    ``bounds`` is the metric's range (``(0, 1)`` for an accuracy). The interval's ends are seed
    values, so they never leave the range of the data; the bounds are a guard against values that
    already lie outside (they are clipped) and document the range to the reader.
    """
    est, iv = interval_for(values, "median", nominal)
    if bounds is not None and iv.defined:
        lo_b, hi_b = bounds
        iv = Interval(
            max(iv.low, lo_b), min(iv.high, hi_b), iv.level, iv.nominal, iv.method, iv.n, iv.rank
        )
        if not math.isnan(est):
            est = min(max(est, iv.low), iv.high)
    return est, iv


def _decimals(x: float, digits: int) -> int:
    """Decimals that show ``digits`` significant digits of ``x``."""
    if x == 0 or not math.isfinite(x):
        return digits
    return max(0, digits - 1 - math.floor(math.log10(abs(x))))


def fmt_estimate(est: float, iv: Interval | None, digits: int = 3) -> str:
    """``0.9796 [0.979, 0.981]``: one number of decimals for all three, bounds rounded outward.

    Outward rounding (floor for the low end, ceiling for the high end) keeps the printed
    interval at least as wide as the computed one, and the estimate is printed with the same
    decimals, so it can never appear outside its own printed interval.
    """
    if iv is None:
        return fmt_est_ci(est, math.nan, math.nan, digits)
    return fmt_est_ci(est, iv.low, iv.high, digits)


def fmt_est_ci(est: float, low: float, high: float, digits: int = 3) -> str:
    """:func:`fmt_estimate` from plain numbers (NaN bounds: the estimate alone)."""
    from harness.claims.text import fmt

    if math.isnan(low) or math.isnan(high):
        return fmt(est, digits)
    finite = [abs(v) for v in (est, low, high) if math.isfinite(v) and v != 0]
    if not finite or any(abs(v) >= 1e5 or abs(v) < 1e-3 for v in finite):
        return f"{fmt(est, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"
    dec = max(_decimals(v, digits) for v in finite)
    if all(float(v).is_integer() for v in (est, low, high) if math.isfinite(v)):
        dec = 0
    scale = 10.0**dec

    def side(v: float, rnd: str) -> str:
        if not math.isfinite(v):
            return fmt(v)
        r = (math.floor if rnd == "down" else math.ceil)(round(v * scale, 9)) / scale
        return f"{r:.{dec}f}"

    if math.isfinite(est):
        e = f"{round(est, dec):.{dec}f}"
    else:
        e = fmt(est)
    return f"{e} [{side(low, 'down')}, {side(high, 'up')}]"
