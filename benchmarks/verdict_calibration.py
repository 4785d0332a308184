"""Do the verdict intervals hold their level? Coverage and false-decisive rates by simulation.

Draws synthetic run tables from known distributions (normal, skewed, heavy-tailed, with ``∞``
censoring, with paired seeds) at the seed counts the budgets use, and runs the engine's own code
on them: the registered statistics (``group_center``, ``ratio``, ``diff``, ``share_diff``), the
per-seed interval (:func:`harness.claims.engine.seed_statistic`) and the engine's verdict rule
(:func:`harness.claims.engine.judge_interval`: a rule judged on the interval, and no decisive
verdict on an interval whose level is short of the nominal one). For every statistic kind ×
distribution × seed count it prints

- the level the interval states (the level it reaches with that many seeds),
- the measured coverage of the true value (in %),
- the false-decisive rate: how often the rule ``≥ θ`` comes out supported or refuted when the
  true value sits exactly on the threshold θ (any decisive verdict there is wrong).

Targets (issue 8): coverage within 2 points of the stated level (at least the stated level
less 2 points for the exact, conservative Clopper-Pearson kinds, which state "at least");
false-decisive rate ≤ 5 %. A row below target is printed as such, never hidden: 3 seeds cannot
reach 95 % with any distribution-free interval (their range covers the median 3 times in 4), so
the engine decides nothing on them (false decisive 0 %, coverage 75 % as stated). A Student-t
interval of a mean under-covers skewed data at every seed count: its rows are kept to show why
``center: mean`` is refused on a verdict statistic at load time (they are marked so). 5 seeds
(the probe claims' count) reach 93.75 %, within the 2-point tolerance, so they do decide, and
their false-decisive rate is 6.25 %, over the 5 % target: printed as missed.

The true value of a statistic is the one its interval estimates: the median (or, for
``center: mean``, the mean) of the statistic computed on a single seed, i.e. on one value per
arm. It is computed from the same generator with 400 000 draws.

Run: ``.venv/bin/python benchmarks/verdict_calibration.py [--sims 4000] [--seeds 3 5 6 10]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.claims.engine import judge_interval, seed_statistic, seeds_sample
from harness.claims.resampling import GroupedMeasures
from harness.claims.statistics import Diff, GroupCenter, Ratio, Statistic, safe_diff, safe_ratio
from harness.claims.threshold_stats import ShareDiff
from harness.claims.verdicts import Rule, Verdict

__all__ = ["SCENARIOS", "Row", "calibrate", "main"]

Draw = Callable[[np.random.Generator, int], np.ndarray]  # (rng, n) -> (G, n) arm values


@dataclass(frozen=True)
class Scenario:
    """A statistic kind on a distribution: how to draw ``(G, n)`` arrays and what to compute."""

    kind: str
    dist: str
    draw: Draw
    stat: Callable[[], Statistic]
    per_seed: Callable[[np.ndarray], np.ndarray]  # (G, N) -> (N,) the statistic per seed
    center: str = "median"
    #: analytic truth where the Monte-Carlo one would be noisy (means of skewed data)
    truth: float | None = None
    #: False for a statistic no claim may use for a verdict (``center: mean``: refused at load)
    verdicts: bool = True
    #: True for exact intervals that state "at least" their level (Clopper-Pearson kinds)
    conservative: bool = False
    #: seed counts run for this scenario besides ``--seeds`` (a claim's own count)
    extra_seeds: tuple[int, ...] = ()


def _censor(x: np.ndarray, cap: float) -> np.ndarray:
    """A target not reached within the budget: every value above ``cap`` becomes ∞."""
    return np.where(x > cap, np.inf, x)


def _one(draw1: Callable[[np.random.Generator, int], np.ndarray]) -> Draw:
    return lambda rng, n: draw1(rng, n)[None, :]


def _paired_lognormal(theta: float, cap: float | None = None) -> Draw:
    """Two arms sharing a seed effect: b = e^(s + e_b), a = θ·e^(s + e_a) (positive, skewed)."""

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        s = rng.normal(0.0, 0.5, n)
        b = np.exp(3.0 + s + rng.normal(0.0, 0.3, n))
        a = theta * np.exp(3.0 + s + rng.normal(0.0, 0.3, n))
        if cap is not None:
            a = _censor(a, cap)
        return np.stack([a, b])

    return draw


def _paired_diff(heavy: bool) -> Draw:
    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        s = rng.normal(0.0, 1.0, n)
        noise = (lambda: rng.standard_t(2, n)) if heavy else (lambda: rng.normal(0.0, 0.5, n))
        return np.stack([0.3 + s + noise(), s + noise()])

    return draw


def _paired_binary(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two success indicators per seed, dependent: a ~ B(0.6); b = a half the time, else B(0.3).

    P(b) = 0.45, so the true difference of shares is 0.15 (``_SHARE_TRUTH``).
    """
    a = (rng.random(n) < 0.6).astype(float)
    b = np.where(rng.random(n) < 0.5, a, (rng.random(n) < 0.3).astype(float))
    return np.stack([a, b])


_SHARE_TRUTH = 0.6 - 0.45


def _share_diff_stat() -> Statistic:
    return ShareDiff(measure="m", condition={"op": ">=", "value": 0.5}, param="arm", a="a", b="b")


def _median_stat() -> Statistic:
    return GroupCenter(measure="m")


def _mean_stat() -> Statistic:
    return GroupCenter(measure="m", center="mean")


def _ratio_stat() -> Statistic:
    return Ratio(measure="m", param="arm", a="a", b="b")


def _diff_stat() -> Statistic:
    return Diff(measure="m", param="arm", a="a", b="b")


def _first(x: np.ndarray) -> np.ndarray:
    return x[0]


def _ratio(x: np.ndarray) -> np.ndarray:
    return safe_ratio(x[0], x[1])


def _diff(x: np.ndarray) -> np.ndarray:
    return safe_diff(x[0], x[1])


SCENARIOS: list[Scenario] = [
    Scenario("median", "normal", _one(lambda r, n: r.normal(2.0, 1.0, n)), _median_stat, _first),
    Scenario(
        "median",
        "skewed (lognormal)",
        _one(lambda r, n: r.lognormal(0.0, 1.0, n)),
        _median_stat,
        _first,
    ),
    Scenario(
        "median",
        "heavy-tailed (Cauchy)",
        _one(lambda r, n: r.standard_cauchy(n)),
        _median_stat,
        _first,
    ),
    Scenario(
        "median",
        "censored (30 % ∞)",
        _one(lambda r, n: _censor(r.lognormal(0.0, 1.0, n), math.exp(0.5244))),
        _median_stat,
        _first,
    ),
    Scenario(
        "mean",
        "normal",
        _one(lambda r, n: r.normal(2.0, 1.0, n)),
        _mean_stat,
        _first,
        "mean",
        2.0,
        verdicts=False,
    ),
    Scenario(
        "mean",
        "skewed (lognormal)",
        _one(lambda r, n: r.lognormal(0.0, 1.0, n)),
        _mean_stat,
        _first,
        "mean",
        math.exp(0.5),
        verdicts=False,
    ),
    Scenario("ratio", "paired lognormal", _paired_lognormal(2.0), _ratio_stat, _ratio),
    Scenario(
        "ratio",
        "paired, arm a censored (∞)",
        _paired_lognormal(2.0, cap=2.0 * math.exp(3.4)),
        _ratio_stat,
        _ratio,
    ),
    Scenario("diff", "paired normal", _paired_diff(False), _diff_stat, _diff),
    Scenario("diff", "paired heavy-tailed (t₂)", _paired_diff(True), _diff_stat, _diff),
    Scenario(
        "share diff",
        "paired binary (dependent arms)",
        _paired_binary,
        _share_diff_stat,
        _diff,
        "mean",
        _SHARE_TRUTH,
        conservative=True,
        extra_seeds=(30,),  # momentum_minima's starts at the quick budget
    ),
]


@dataclass(frozen=True)
class Row:
    kind: str
    dist: str
    n_seeds: int
    method: str
    stated: float
    coverage: float
    false_decisive: float
    n_sims: int
    verdicts: bool = True
    conservative: bool = False

    @property
    def coverage_ok(self) -> bool:
        if self.conservative:
            return self.coverage >= self.stated - 0.02
        return abs(self.coverage - self.stated) <= 0.02

    @property
    def decisive_ok(self) -> bool:
        return self.false_decisive <= 0.05

    @property
    def meets(self) -> bool:
        return self.coverage_ok and self.decisive_ok


def _grouped(values: np.ndarray, like: GroupedMeasures | None = None) -> GroupedMeasures:
    """A ``GroupedMeasures`` of one measure ``m`` with arms a (and b) × ``n`` seeds.

    ``like``: a table of the same shape whose groups and statuses are reused (they do not change
    between simulations; building a DataFrame each time would dominate the run time).
    """
    G, n = values.shape
    if like is not None:
        return GroupedMeasures(like.groups, like.replicates, {"m": values}, like.status)
    groups = pd.DataFrame({"arm": ["a", "b"][:G], "n_runs": [n] * G, "n_diverged": [0] * G})
    status = np.full((G, n), "completed", dtype=object)
    return GroupedMeasures(groups, list(range(n)), {"m": values}, status)


def true_value(sc: Scenario, rng: np.random.Generator, n_draws: int = 400_000) -> float:
    if sc.truth is not None:
        return sc.truth
    per_seed = sc.per_seed(sc.draw(rng, n_draws))
    return float(np.median(per_seed))


def calibrate(
    sc: Scenario, n_seeds: int, n_sims: int, rng: np.random.Generator, level: float = 0.95
) -> Row:
    """Coverage and false-decisive rate of one scenario at one seed count."""
    theta = true_value(sc, rng)
    rule = Rule(">=", theta)
    stat = sc.stat()
    covered = decisive = 0
    method, stated = "", math.nan
    like = None
    for _ in range(n_sims):
        data = like = _grouped(sc.draw(rng, n_seeds), like)
        ((_, _, iv, _),) = seed_statistic(stat, seeds_sample(data), level)
        method, stated = iv.label(), iv.level
        covered += bool(iv.low <= theta <= iv.high)
        decisive += judge_interval(rule, iv)[0] in (Verdict.SUPPORTED, Verdict.REFUTED)
    return Row(
        sc.kind,
        sc.dist,
        n_seeds,
        method,
        stated,
        covered / n_sims,
        decisive / n_sims,
        n_sims,
        sc.verdicts,
        sc.conservative,
    )


def _verdict(r: Row) -> str:
    if not r.verdicts:
        return "refused for verdicts (`center: mean`)"
    if r.meets:
        return "met"
    missed = [
        w for w, ok in (("coverage", r.coverage_ok), ("false decisive", r.decisive_ok)) if not ok
    ]
    return "not met: " + " and ".join(missed)


def table(rows: list[Row]) -> str:
    head = (
        "| statistic | distribution | seeds | interval (method, level) | stated | coverage "
        "| false decisive at θ | targets |\n|---|---|---|---|---|---|---|---|"
    )
    body = [
        f"| {r.kind} | {r.dist} | {r.n_seeds} | {r.method} | {100 * r.stated:.1f} % "
        f"| {100 * r.coverage:.1f} % | {100 * r.false_decisive:.1f} % "
        f"| {_verdict(r)} |"
        for r in rows
    ]
    return "\n".join([head, *body])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=4000, help="simulated run tables per row")
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[3, 5, 6, 10],
        help="seed counts (3: the old quick budget; 5: probe claims; 6 quick; 10 full)",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the simulation")
    args = ap.parse_args(argv)
    root = np.random.SeedSequence(args.seed)
    t0 = time.perf_counter()
    rows = []
    jobs = [(sc, n) for sc in SCENARIOS for n in sorted({*args.seeds, *sc.extra_seeds})]
    for i, ((sc, n), child) in enumerate(zip(jobs, root.spawn(len(jobs))), 1):
        rows.append(calibrate(sc, n, args.sims, np.random.default_rng(child)))
        print(f"[{i}/{len(jobs)}] {sc.kind}, {sc.dist}, {n} seeds", file=sys.stderr)
    print(table(rows))
    print(
        f"\n{args.sims} simulated run tables per row, simulation seed {args.seed}; "
        f"{time.perf_counter() - t0:.0f} s. Targets: coverage within 2 points of the stated "
        "level, false decisive ≤ 5 %."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
