"""Evaluate a claim on run tables: measures → nuisance selection → statistics → verdicts.

:func:`evaluate_claim` is the entry point. For every protocol it

1. takes the protocol's runs (or those of the protocol it ``reuse``\\ s) and applies ``where``;
2. computes every measure per run (:mod:`harness.claims.measures`);
3. keeps the best nuisance setting per scientific group (:mod:`harness.claims.selection`);
4. groups the measures as ``(groups × seeds)`` arrays;
5. evaluates each check's conditions *per seed*: the statistic is computed on every seed alone
   (paired: seed ``r`` of one arm against seed ``r`` of the other), and the estimate is the median
   of those per-seed values with its exact order-statistic interval, or the statistic's own
   interval (a proportion's Clopper-Pearson; see :mod:`harness.claims.intervals`; ``center:
   mean``, a Student-t interval, is refused on a verdict at load time). The interval carries its
   method and the level it reaches with the seeds available (3 seeds: the range, 75 %), the rule
   is judged against it (:func:`judge_interval`: an interval whose level is short of the nominal
   one decides nothing), and the reason is kept whenever the data cannot decide (too few seeds,
   too many failed runs, undefined values, too low a level).

Checks then combine their conditions (Kleene ``all`` / ``any``) and their protocols
(:func:`harness.claims.verdicts.across_protocols`). Nothing here reads an expected answer.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from harness.claims.errors import ClaimError
from harness.claims.filters import sort_keys, value_label
from harness.claims.intervals import (
    Interval,
    fmt_estimate,
    interval_for,
    order_statistic_rank,
    pct,
)
from harness.claims.measures import Measure, censor_column, compute_measures
from harness.claims.outcome import (
    OUTCOME_KINDS,
    CheckProtocolResult,
    CheckResult,
    ClaimOutcome,
    ConditionResult,
    Outcome,
    ProtocolData,
    StratumResult,
)
from harness.claims.resampling import GroupedMeasures, Sample
from harness.claims.results import RunTable
from harness.claims.selection import select_nuisance
from harness.claims.spec import (
    POOL_PARAM,
    CheckSpec,
    ClaimSpec,
    Combo,
    ConditionSpec,
    Node,
    ProtocolSpec,
)
from harness.claims.statistics import Statistic
from harness.claims.text import fmt, fmt_ci
from harness.claims.verdicts import Rule, Verdict, across_protocols, kleene_all, kleene_any

__all__ = [
    "evaluate_claim",
    "judge_interval",
    "seed_statistic",
    "seeds_sample",
    "used_measures",
]

#: Fewer seeds than this adds a caveat (the verdict itself uses the claim's ``min_seeds``).
#: Six is the smallest count whose order-statistic interval (the range) reaches 95 %.
FEW_SEEDS = 6


def _split_tables(tables: Mapping[str, RunTable] | RunTable) -> dict[str, RunTable]:
    if isinstance(tables, RunTable):
        return {p: tables.for_protocol(p) for p in tables.protocols}
    return dict(tables)


def _protocol_table(p: ProtocolSpec, tables: Mapping[str, RunTable]) -> RunTable:
    src = p.runs_from
    if src not in tables:
        raise ClaimError(
            f"tables.{src}",
            None,
            f"the runs of protocol {src!r}"
            + (f" (reused by {p.name!r})" if p.reuse else "")
            + f"; tables were given for: {', '.join(tables) or 'none'}",
        )
    t = tables[src]
    if src in set(t.runs["protocol"]) and len(set(t.runs["protocol"])) > 1:
        t = t.for_protocol(src)
    t = t.relabel(p.name)
    if p.where is not None:
        try:
            t = t.subset(p.where.mask(t.runs))
        except KeyError as exc:
            raise ClaimError(f"protocols.{p.name}.where", p.where.describe(), str(exc)) from exc
    return t


def _margin(rule: Rule, lo: float, hi: float) -> float:
    """How safely a CI satisfies the rule (negative: it does not); used to pick a stratum."""
    if rule.op == "between":
        a, b = rule.value
        return min(lo - a, b - hi)
    if rule.op in (">=", ">"):
        return lo - rule.value
    return rule.value - hi


_PHRASE = {
    Verdict.SUPPORTED: "the whole interval satisfies the rule",
    Verdict.REFUTED: "the whole interval violates the rule",
    Verdict.INCONCLUSIVE: "the interval straddles the threshold",
}


def judge_interval(rule: Rule, iv: Interval) -> tuple[Verdict, str]:
    """The engine's verdict of ``rule`` on ``iv``, and why it is inconclusive when it is forced.

    The rule is judged against the interval (:meth:`Rule.judge`); a decisive result stands only
    when the interval reaches the nominal level within
    :data:`harness.claims.intervals.LEVEL_TOLERANCE` (2 points). Otherwise it is
    ``inconclusive`` with the reason in plain words. Every verdict of a condition, a stratum and
    the calibration benchmark goes through here.
    """
    judged = rule.judge(iv.low, iv.high)
    if judged is not Verdict.INCONCLUSIVE and iv.too_weak_to_decide:
        return Verdict.INCONCLUSIVE, _too_weak(iv, judged)
    return judged, ""


def _too_weak(iv: Interval, judged: Verdict) -> str:
    """Why a decisive reading of ``iv`` is not a verdict: its level is short of the nominal one.

    Only the range of too few seeds (or a single seed) falls short (the order-statistic rank is
    otherwise chosen to reach the nominal level), so "in each seed" is what the range says.
    """
    held = "held" if judged is Verdict.SUPPORTED else "failed"
    short = f"short of {pct(iv.nominal)}"
    if iv.n < 2:
        return f"the rule {held} in the only seed, and one seed gives no interval"
    if iv.method == "order_statistic" and iv.rank == 1:
        return (
            f"the rule {held} in each of {iv.n} seeds, but the range of {iv.n} seeds covers the "
            f"median only ≈{pct(iv.level)} of the time, {short}"
        )
    return f"the rule {held} over the whole interval, but it reaches only {pct(iv.level)}, {short}"


def seed_statistic(
    stat: Statistic, seeds: Sample, level: float
) -> list[tuple[str, float, Interval, int]]:
    """The statistic per seed and its interval: ``(stratum label, estimate, interval, unknown)``.

    ``seeds`` is a sample whose draw ``r`` holds seed ``r`` of every group (so two-arm statistics
    are paired by seed). The estimate is the median of the per-seed values with its order-statistic
    interval, or their mean with a Student-t interval when the statistic's ``center`` is ``mean``;
    ``unknown`` counts seeds where the statistic is undefined (NaN). The calibration benchmark
    (``benchmarks/verdict_calibration.py``) calls this very function.
    """
    sv = stat.compute(seeds)  # (R, S)
    how = "mean" if getattr(stat, "center", "median") == "mean" else "median"
    out = []
    # a statistic with an interval of its own (a proportion of seeds) provides it
    own = getattr(stat, "seed_interval", None)
    for s, label in enumerate(sv.labels):
        vals = sv.values[:, s]
        est, iv = own(vals, level) if own is not None else interval_for(vals, how, level)
        out.append((label, est, iv, int(np.isnan(vals).sum())))
    return out


def seeds_sample(grouped: GroupedMeasures) -> Sample:
    """A sample with one draw per seed: draw ``r`` reads seed ``r`` of every group."""
    R = grouped.n_replicates
    return grouped.sample(np.arange(R)[:, None]) if R else grouped.point()


class _ProtocolEval:
    """Evaluation state of one protocol: grouped data, the per-seed sample, the point sample."""

    def __init__(
        self,
        claim: ClaimSpec,
        p: ProtocolSpec,
        grouped: GroupedMeasures,
        edge_notes: list[str] | None = None,
    ) -> None:
        self.edge_notes = list(edge_notes or [])
        self.claim = claim
        self.p = p
        self.grouped = grouped
        self.seeds: Sample = seeds_sample(grouped)
        self.point: Sample = grouped.point()
        self.level = claim.bootstrap.level

    def condition(self, check: CheckSpec, leaf: ConditionSpec) -> ConditionResult:
        stat, rule = leaf.statistic_for(self.p.name), leaf.rule_for(self.p.name)
        g = self.grouped
        if g.n_groups == 0 or g.n_replicates == 0:
            return self._empty(check, leaf, rule, "no runs left for this protocol")
        pv = stat.compute(self.point)  # pooled values: details for the report (arms, argbest)
        used = pv.used
        n_runs = n_failed = 0
        for m in stat.measures():
            r, f = g.failed(m, used)
            n_runs, n_failed = max(n_runs, r), max(n_failed, f)
        n_div = int(np.sum(g.status[used] == "diverged"))
        n_seeds = g.seeds_with_data(stat.measures(), used)
        reason = ""
        if n_runs == 0:
            reason = "no runs match the groups this statistic compares"
        elif n_failed / n_runs > self.claim.max_failed_fraction:
            reason = (
                f"too many failed runs ({n_failed} of {n_runs} > "
                f"{self.claim.max_failed_fraction:.0%})"
            )
        elif n_seeds < self.claim.min_seeds:
            reason = f"too few seeds with data ({n_seeds} < {self.claim.min_seeds})"
        strata = []
        intervals: dict[str, Interval] = {}
        unknown: dict[str, int] = {}
        for label, est, iv, n_unknown in seed_statistic(stat, self.seeds, self.level):
            intervals[label] = iv
            unknown[label] = n_unknown
            why = reason
            if not why and math.isnan(est):
                why = "the statistic is undefined on the data (a compared group has no value, "
                why += "or both sides are ∞)"
            elif not why and not iv.defined:
                why = "no interval could be computed"
            if why:
                verdict = Verdict.INCONCLUSIVE
            else:
                verdict, why = judge_interval(rule, iv)
            strata.append((label, est, (iv.low, iv.high), verdict, why))
        aside = self._set_aside(stat) if len(strata) > 1 else {}
        if len(strata) == 1:
            label, est, ci, verdict, why = strata[0]
            stratum_results: list[StratumResult] = []
        else:
            combine = kleene_all if stat.reduce == "all" else kleene_any
            scored = [st for st in strata if st[0] not in aside]
            verdict = combine(v for *_, v, _ in scored)
            stratum_results = [
                StratumResult(
                    st[0], st[1], st[2], st[3], intervals[st[0]].label(), aside.get(st[0], "")
                )
                for st in strata
            ]
            if scored:
                label, est, ci, _, why = self._deciding(scored, verdict, rule, stat.reduce)
            else:
                label, est, ci, _, _ = strata[0]
                why = "an arm diverged in every stratum, so no stratum compares two trained arms"
                verdict = Verdict.INCONCLUSIVE
        iv = intervals[label]
        desc = stat.describe()
        if label and len(strata) > 1:
            desc_val = f"{desc}; deciding stratum {label}"
        else:
            desc_val = desc
        shown = f"{fmt_estimate(est, iv)} ({iv.label()})"
        if unknown[label]:
            shown += (
                f"; undefined in {unknown[label]} of {iv.n} seeds, counted as unknown "
                "(which widens the interval)"
            )
        censored = self._censored(stat, label, rule, verdict, why)
        if censored:
            shown += f"; {censored}"
        arms = self._diverged_per_arm(stat, used)
        if arms:
            shown += f"; diverged runs {arms}"
        if why:
            text = f"{desc_val} = {shown}; inconclusive: {why}."
        else:
            text = f"{desc_val} = {shown}, rule {rule.describe()}: {_PHRASE[verdict]}."
            if len(strata) > 1:
                counts = {
                    v: sum(1 for st in strata if st[3] is v and st[0] not in aside) for v in Verdict
                }
                text += (
                    f" Per {stat.by}: {counts[Verdict.SUPPORTED]} supported, "
                    f"{counts[Verdict.REFUTED]} refuted, {counts[Verdict.INCONCLUSIVE]} inconclusive."
                )
        if aside:
            text += (
                f" Set aside (an arm diverged in most of its runs, so the stratum does not compare "
                f"two trained arms): {'; '.join(f'{k}: {v}' for k, v in aside.items())}."
            )
        if self.edge_notes:
            text += " Grid edge: " + " ".join(self.edge_notes)
        return ConditionResult(
            id=leaf.id,
            check_id=check.id,
            protocol=self.p.name,
            statistic=desc,
            rule=rule.describe(),
            verdict=verdict,
            estimate=est,
            ci=ci,
            level=iv.level,
            n_seeds=n_seeds,
            n_runs=n_runs,
            n_failed=n_failed,
            n_diverged=n_div,
            explanation=text,
            reason=why,
            strata=stratum_results,
            effect=stat.effect(g) if stat.two_group else {},
            extra={**pv.extra, **({"censored": censored} if censored else {})},
            method=iv.method,
            interval=iv.label(),
            nominal=self.level,
        )

    def _censored(self, stat: Statistic, label: str, rule: Rule, verdict: Verdict, why: str) -> str:
        """The effect as a bound when an arm never reached the target (∞) within its budget.

        A seed whose arm a never reached the target has a true value beyond its budget, so with
        the budget in place of ∞ a ratio or difference a − b is a *lower* bound (an upper one when
        arm b is the censored arm). The bound is the median over seeds of the per-seed bounds
        with its interval; the verdict *rests on censoring* when the rule, judged on the bound's
        interval, would not give the same decisive verdict.
        """
        g = self.grouped
        col = censor_column(stat.measure)
        if not stat.two_group or col not in g.arrays:
            return ""
        arr, cens = g.arrays[stat.measure], g.arrays[col]
        filled = np.where(np.isposinf(arr) & np.isfinite(cens), cens, arr)
        if np.array_equal(filled, arr, equal_nan=True):
            return ""
        bounded = GroupedMeasures(
            g.groups, g.replicates, {**g.arrays, stat.measure: filled}, g.status, g.notes
        )
        before = stat.compute(self.seeds)
        after = stat.compute(seeds_sample(bounded))
        if label not in before.labels:
            return ""
        k = before.labels.index(label)
        v0, v1 = before.values[:, k], after.values[:, k]
        changed = ~((v0 == v1) | (np.isnan(v0) & np.isnan(v1)))
        if not changed.any():
            return ""
        n_cens = int(changed.sum())
        lower = bool(np.all(v1[changed] < v0[changed]))
        upper = bool(np.all(v1[changed] > v0[changed]))
        if not (lower or upper):
            return (
                f"censored: {n_cens} seed(s) have an arm that never reached the target; with both "
                "arms censored the effect has no one-sided bound"
            )
        how = "mean" if getattr(stat, "center", "median") == "mean" else "median"
        est, iv = interval_for(v1, how, self.level)
        budget = float(np.nanmax(np.where(np.isposinf(arr), cens, np.nan)))
        rel = "≥" if lower else "≤"
        unit = {"epochs": "-epoch", "s": " s", "steps": "-step"}.get(self._unit(stat.measure), "")
        where = f"{fmt(budget)}{unit} budget" if math.isfinite(budget) else "budget"
        text = (
            f"censored: in {n_cens} of {v0.size} seeds the {'first' if lower else 'second'} arm "
            f"never reached the target, so the effect is a bound, {rel} {fmt_estimate(est, iv)} "
            f"(censored at the {where})"
        )
        if (
            verdict is not Verdict.INCONCLUSIVE
            and not why
            and rule.judge(iv.low, iv.high) is not verdict
        ):
            text += (
                f"; the {verdict} verdict rests on censoring: at the budget's value the rule "
                "would not be decided"
            )
        return text

    def _unit(self, measure: str) -> str:
        m = self.claim.measures.get(measure)
        return getattr(m, "unit", "") if m is not None else ""

    def _set_aside(self, stat: Statistic) -> dict[str, str]:
        """Strata of a two-arm ``by`` statistic where an arm diverged in most of its runs."""
        if not stat.two_group or not stat.by:
            return {}
        g = self.grouped
        base = np.ones(g.n_groups, dtype=bool)
        wf = stat.where_filter()
        if wf is not None:
            base &= wf.mask(g.groups)
        keys = g.keys(stat.by)
        out = {}
        for sv in sort_keys(k for k, ok in zip(keys, base) if ok):
            m = base & np.array([k == sv for k in keys])
            bad = []
            for name in ("a", "b"):
                side = getattr(stat, name)
                st = g.status[m & stat._side_mask(g, side)]  # type: ignore[attr-defined]
                ran, div = int(np.sum(st != "")), int(np.sum(st == "diverged"))
                if ran and div > ran / 2:
                    bad.append(f"{stat._side_label(side)} diverged in {div} of {ran}")  # type: ignore[attr-defined]
            if bad:
                out[f"{stat.by}={value_label(sv)}"] = ", ".join(bad)
        return out

    def _diverged_per_arm(self, stat: Statistic, used: np.ndarray) -> str:
        """``a: 3 of 6, b: 0 of 6`` for two-arm statistics with a diverged run, else ""."""
        g = self.grouped
        if not stat.two_group or not int(np.sum(g.status[used] == "diverged")):
            return ""
        parts = []
        for name in ("a", "b"):
            side = used & stat._side_mask(g, getattr(stat, name))  # type: ignore[attr-defined]
            st = g.status[side]
            ran = int(np.sum(st != ""))
            arm = stat._side_label(getattr(stat, name))  # type: ignore[attr-defined]
            parts.append(f"{arm}: {int(np.sum(st == 'diverged'))} of {ran}")
        return "(" + ", ".join(parts) + ")"

    @staticmethod
    def _deciding(
        strata: list[tuple[str, float, tuple[float, float], Verdict, str]],
        verdict: Verdict,
        rule: Rule,
        reduce: str,
    ) -> tuple[str, float, tuple[float, float], Verdict, str]:
        """The stratum whose numbers explain the combined verdict."""
        same = [s for s in strata if s[3] is verdict]
        if not same:
            return strata[0]
        if verdict is Verdict.INCONCLUSIVE or len(same) == 1:
            return same[0]
        margins = [_margin(rule, *s[2]) for s in same]
        # all: the weakest stratum explains the verdict (the worst case); any: the strongest
        pick = int(np.argmin(margins)) if reduce == "all" else int(np.argmax(margins))
        return same[pick]

    def _empty(
        self, check: CheckSpec, leaf: ConditionSpec, rule: Rule, why: str
    ) -> ConditionResult:
        nan = math.nan
        return ConditionResult(
            id=leaf.id,
            check_id=check.id,
            protocol=self.p.name,
            statistic=leaf.statistic_for(self.p.name).describe(),
            rule=rule.describe(),
            verdict=Verdict.INCONCLUSIVE,
            estimate=nan,
            ci=(nan, nan),
            level=self.level,
            n_seeds=0,
            n_runs=0,
            n_failed=0,
            n_diverged=0,
            explanation=f"{leaf.statistic_for(self.p.name).describe()}: inconclusive: {why}.",
            reason=why,
        )

    def node(self, check: CheckSpec, node: Node, out: list[ConditionResult]) -> Verdict:
        if isinstance(node, ConditionSpec):
            r = self.condition(check, node)
            out.append(r)
            return r.verdict
        assert isinstance(node, Combo)
        vs = [self.node(check, child, out) for child in node.children]
        return kleene_all(vs) if node.op == "all" else kleene_any(vs)


def _pooled_data(
    p: ProtocolSpec, data: Mapping[str, ProtocolData], needed: list[str]
) -> ProtocolData:
    """The data of a pool: its members' kept runs side by side, told apart by ``protocol``.

    Each member's runs are taken after its own ``where`` and nuisance selection, so a pool
    compares what its members compare. The groups are the combinations of ``protocol`` and the
    members' scientific parameters (missing where a member does not vary one); replicate ``r``
    of every member is one cluster of the seed bootstrap, so the pool's statistics pair seed
    ``r`` of one protocol with seed ``r`` of another. The runner gives replicate ``r`` the same
    seed in every protocol of a claim (``replicate_seed(study.seed, r)``) unless a protocol sets
    another study seed; a note says so when the seeds differ, and the pairing is then by
    replicate index only.
    """
    params = p.scientific
    frames, tables = [], []
    for m in p.pool:
        d = data[m]
        kept = d.measures.copy()
        kept[POOL_PARAM] = m  # the member's runs are labelled with its name already; be explicit
        for q in params:
            if q not in kept.columns:
                kept[q] = None
        frames.append(kept)
        tables.append(d.table)
    kept = pd.concat(frames, ignore_index=True)
    table = RunTable.concat(tables)
    if p.where is not None:
        kept = kept.loc[p.where.mask(kept)].reset_index(drop=True)
        keys = set(map(tuple, kept[["protocol", "trial", "replicate"]].itertuples(index=False)))
        rows = table.runs[["protocol", "trial", "replicate"]].itertuples(index=False)
        table = table.subset(np.array([tuple(k) in keys for k in rows], dtype=bool))
    notes = _seed_pairing_notes(p, kept)
    measures = [m for m in needed if m in kept.columns]
    censors = [censor_column(m) for m in measures if censor_column(m) in kept.columns]
    grouped = GroupedMeasures.from_table(kept, params, [*measures, *censors])
    status: dict[str, int] = {}
    for m in p.pool:
        for k, v in data[m].status_counts.items():
            status[k] = status.get(k, 0) + v
    return ProtocolData(
        name=p.name,
        description=p.description,
        runs_from=p.name,
        table=table,
        measures=kept,
        all_measures=kept,
        selection=None,
        grouped=grouped,
        scientific=params,
        nuisance=[],
        status_counts=status,
        notes=[*notes, *grouped.notes],
        pool=p.pool,
    )


def _seed_pairing_notes(p: ProtocolSpec, kept: pd.DataFrame) -> list[str]:
    """A note when replicate ``r`` ran with different seeds in the pooled protocols."""
    seeds: dict[int, set[int]] = {}
    for r, seed in zip(kept["replicate"], kept["seed"]):
        seeds.setdefault(int(r), set()).add(int(seed))
    odd = {r: sorted(v) for r, v in sorted(seeds.items()) if len(v) > 1}
    if not odd:
        return []
    r, v = next(iter(odd.items()))
    more = f" (and {len(odd) - 1} more replicates)" if len(odd) > 1 else ""
    return [
        f"replicate {r}{more} ran with different seeds ({', '.join(map(str, v))}) "
        f"in the protocols of {p.name} ({', '.join(p.pool)}): their runs are paired by replicate "
        "index, not by seed"
    ]


def _check_text(
    check: CheckSpec, verdict: Verdict, per: Mapping[str, CheckProtocolResult], claim: ClaimSpec
) -> str:
    def name(p: str) -> str:
        return claim.protocols[p].label

    if len(per) == 1:
        ((p, r),) = per.items()
        return f"{verdict} under {name(p)}: {r.explanation}"
    by: dict[Verdict, list[str]] = {}
    for p, r in per.items():
        by.setdefault(r.verdict, []).append(p)
    if verdict is Verdict.SUPPORTED:
        return f"supported under every protocol: {', '.join(map(name, per))}."
    if verdict is Verdict.REFUTED:
        return f"refuted under every protocol: {', '.join(map(name, per))}."
    parts = []
    if by.get(Verdict.SUPPORTED):
        parts.append("holds under " + ", ".join(map(name, by[Verdict.SUPPORTED])))
    if by.get(Verdict.REFUTED):
        parts.append("not under " + ", ".join(map(name, by[Verdict.REFUTED])))
    if by.get(Verdict.INCONCLUSIVE):
        parts.append("undecided under " + ", ".join(map(name, by[Verdict.INCONCLUSIVE])))
    return f"{verdict}: " + "; ".join(parts) + "."


def _protocol_text(conds: list[ConditionResult], verdict: Verdict, node: Node) -> str:
    if len(conds) == 1:
        return conds[0].explanation
    op = node.op if isinstance(node, Combo) else "all"
    counts = {v: sum(1 for c in conds if c.verdict is v) for v in Verdict}
    return (
        f"{verdict} ({op} of {len(conds)} conditions: {counts[Verdict.SUPPORTED]} supported, "
        f"{counts[Verdict.REFUTED]} refuted, {counts[Verdict.INCONCLUSIVE]} inconclusive)"
    )


def _auto_caveats(claim: ClaimSpec, data: Mapping[str, ProtocolData]) -> list[str]:
    """Caveats computed from the data: failed runs, few seeds, edge choices, targets missed."""
    out = []
    seen_sources: set[str] = set()
    for d in data.values():  # run statuses once per set of runs (reusing protocols share them)
        if d.runs_from in seen_sources or d.pool:  # a pool's runs are its members'
            continue
        seen_sources.add(d.runs_from)
        sc = d.status_counts
        bad = {k: v for k, v in sc.items() if k in ("diverged", "failed", "pruned") and v}
        if bad:
            what = ", ".join(f"{v} {k}" for k, v in bad.items())
            out.append(
                f"Runs of {d.runs_from}: {what} of {sum(sc.values())}. A diverged run counts as "
                "not reaching the target (∞) or takes the value its measure declares "
                "(`on_diverged`); a failed run has no value and counts against the "
                f"{claim.max_failed_fraction:.0%} limit of failed runs per statistic."
            )
    reps = sorted({d.grouped.n_replicates for d in data.values() if d.grouped.n_replicates})
    if reps and reps[0] < FEW_SEEDS:
        levels = ", ".join(
            f"{r} seeds: the range, {pct(order_statistic_rank(r, claim.bootstrap.level)[1])}"
            for r in reps
        )
        out.append(
            f"Only {'/'.join(map(str, reps))} seeds per configuration: an interval over so few "
            f"seeds cannot reach {pct(claim.bootstrap.level)} ({levels}), so no verdict there is "
            "decisive: a rule the interval satisfies or violates is reported as inconclusive, "
            "with the level the seeds reach; the full budget uses more seeds."
        )
    selected = [n for n, d in data.items() if d.selection is not None and len(d.selection)]
    if selected:
        out.append(
            f"In {', '.join(selected)} the nuisance setting was chosen once on all seeds; the intervals "
            "do not include the uncertainty of that choice."
        )
    for name, d in data.items():
        out.extend(f"{name}: {n}" for n in d.notes)
        if d.pool:  # its members' runs: their own caveats say which groups missed a target
            continue
        missed: dict[tuple[str, ...], list[str]] = {}
        for m, measure in claim.measures.items():
            if m not in d.grouped.arrays or measure.unit not in ("epochs", "s", "steps"):
                continue
            arr = d.grouped.arrays[m]
            never = tuple(
                _group_label(d, i)
                for i in range(d.grouped.n_groups)
                if np.isinf(arr[i]).sum() > arr.shape[1] / 2
            )
            if never:
                missed.setdefault(never, []).append(m)
        for groups, ms in missed.items():
            out.append(
                f"{name}: {', '.join(ms)} not reached (∞) in most seeds for {'; '.join(groups)} "
                "within the training budget; a longer budget could change these values."
            )
    return out


def _outcome(check: CheckSpec, verdict: Verdict) -> Outcome | None:
    """The check's outcome (ill-posed, not falsifiable) if its ``outcome`` applies to ``verdict``."""
    o = check.outcome
    if o is None:
        return None
    if o.on == "always" or str(verdict) == o.on:
        return OUTCOME_KINDS[o.kind]
    return None


def _outcome_text(
    check: CheckSpec, outcome: Outcome, per: Mapping[str, CheckProtocolResult], text: str
) -> str:
    assert check.outcome is not None
    head = f"{outcome}: {check.outcome.why}"
    if check.outcome.judged:
        return f"{head} (The rule's own verdict: {text})"
    nums = "; ".join(
        f"{c.protocol}: {c.statistic} = {fmt(c.estimate)} "
        f"({c.interval or f'{c.level:.0%} CI'}: {fmt_ci(*c.ci)})"
        + (f", {c.reason}" if c.reason else "")
        for r in per.values()
        for c in r.conditions
    )
    return f"{head} Reported, not judged: {nums}."


def _group_label(d: ProtocolData, i: int) -> str:
    row = d.grouped.groups.iloc[i]
    return ", ".join(f"{p}={value_label(row[p])}" for p in d.scientific) or "(all runs)"


def used_measures(claim: ClaimSpec) -> dict[str, list[str]]:
    """Per protocol, the measures it needs: those its checks, its ``select`` and its figures read.

    A protocol computes only these (a measure of recorded weights need not exist in the runs of
    a protocol that never reads it); a measure that nothing reads is computed everywhere, for the
    report's tables. Order follows ``claim.measures``.
    """
    used: dict[str, set[str]] = {p: set() for p in claim.protocols}
    for check in claim.checks:
        for pname in check.protocols:
            for leaf in check.conditions:
                used[pname].update(leaf.statistic_for(pname).measures())
    for p in claim.protocols.values():
        if p.select is not None:
            used[p.name].add(p.select.measure)
    for f in claim.figures:
        for pname in f.protocols:
            used[pname].update(f.figure.names()[0])
    for p in claim.protocols.values():  # a pool's measures are computed in its members
        for member in p.pool:
            used[member].update(used[p.name])
    anywhere = set().union(*used.values()) if used else set()
    unused = [m for m in claim.measures if m not in anywhere]
    return {p: [m for m in claim.measures if m in u or m in unused] for p, u in used.items()}


def evaluate_claim(
    claim: ClaimSpec,
    tables: Mapping[str, RunTable] | RunTable,
    *,
    n_boot: int | None = None,
) -> ClaimOutcome:
    """Measures, statistics and verdicts of every check of ``claim``.

    Parameters
    ----------
    claim : ClaimSpec
        From :func:`harness.claims.spec.load_claim` (resolved for a budget).
    tables : mapping of protocol name to RunTable, or one RunTable
        The runs of every protocol that has runs (``claim.protocols_to_run()``); a single table
        is split by its ``protocol`` column. Reusing protocols need no table.
    n_boot : int, optional
        Override the claim's number of bootstrap draws (tests use fewer).

    Raises
    ------
    ClaimError
        A protocol's runs are missing, a searched parameter has no column, or a measure's metric
        was not recorded.
    """
    tabs = _split_tables(tables)
    B = int(n_boot or claim.bootstrap.n_boot)
    needed = used_measures(claim)
    # Measures that depend on all runs (a target of 0.9 × the best accuracy reached) are
    # resolved per set of runs: protocols may train on different data (digits at init, MNIST-1D
    # for training curves), and a best value from one data set is no target for another.
    # Protocols that reuse another's runs share its resolved measures.
    prepared: dict[str, dict[str, Measure]] = {}
    for p in claim.protocols.values():
        if p.reuse is None and not p.pool:
            t = _protocol_table(p, tabs)
            # the measures of this set of runs: what this protocol and those reusing it read
            names = {
                m for q in claim.protocols.values() if q.runs_from == p.name for m in needed[q.name]
            }
            prepared[p.name] = {
                n: copy.deepcopy(m) for n, m in claim.measures.items() if n in names
            }
            for m in prepared[p.name].values():
                m.prepare(t.curves, t.runs)

    data: dict[str, ProtocolData] = {}
    evals: dict[str, _ProtocolEval] = {}
    for p in claim.protocols.values():
        if p.pool:
            continue  # evaluated below, from its members' data
        t = _protocol_table(p, tabs)
        measures = {n: prepared[p.runs_from][n] for n in needed[p.name]}
        mdf = compute_measures(t, measures, p.searched)
        at_mask = p.select.at.mask(mdf) if (p.select and p.select.at) else None
        sel = (
            select_nuisance(
                mdf,
                scientific=p.scientific,
                nuisance=p.nuisance,
                measure=p.select.measure,
                mode=p.select.mode,
                how=p.select.center,
                at_mask=at_mask,
                at_label=p.select.at.describe() if (p.select and p.select.at) else "",
            )
            if p.select is not None
            else select_nuisance(mdf, scientific=p.scientific, nuisance=[], measure="")
        )
        kept = sel.measures
        keys = set(map(tuple, kept[["protocol", "trial", "replicate"]].itertuples(index=False)))
        mask = [
            tuple(k) in keys
            for k in t.runs[["protocol", "trial", "replicate"]].itertuples(index=False)
        ]
        censors = [censor_column(m) for m in measures if censor_column(m) in kept.columns]
        grouped = GroupedMeasures.from_table(kept, p.scientific, [*measures, *censors])
        data[p.name] = ProtocolData(
            name=p.name,
            description=p.description,
            runs_from=p.runs_from,
            table=t.subset(np.asarray(mask, dtype=bool)),
            measures=kept,
            all_measures=mdf,
            selection=sel.table,
            grouped=grouped,
            scientific=p.scientific,
            nuisance=p.nuisance,
            status_counts=t.status_counts(),
            notes=[*sel.notes, *grouped.notes],
        )
        edges = [n for n in sel.notes if "edge of the searched values" in n]
        evals[p.name] = _ProtocolEval(claim, p, grouped, edges)
    for p in claim.protocols.values():
        if p.pool:
            data[p.name] = _pooled_data(p, data, needed[p.name])
            evals[p.name] = _ProtocolEval(claim, p, data[p.name].grouped)

    headline = set(claim.headline)
    results = []
    for check in claim.checks:
        per: dict[str, CheckProtocolResult] = {}
        for pname in check.protocols:
            conds: list[ConditionResult] = []
            v = evals[pname].node(check, check.node, conds)
            per[pname] = CheckProtocolResult(pname, v, conds, _protocol_text(conds, v, check.node))
        verdict = across_protocols({k: r.verdict for k, r in per.items()})
        text = _check_text(check, verdict, per, claim)
        outcome = _outcome(check, verdict)
        if outcome is not None:
            text = _outcome_text(check, outcome, per, text)
        results.append(
            CheckResult(
                id=check.id,
                claim=check.claim,
                why=check.why,
                verdict=verdict,
                protocols=per,
                explanation=text,
                headline=check.id in headline,
                outcome=outcome,
            )
        )
    return ClaimOutcome(
        claim_id=claim.id,
        title=claim.title,
        budget=claim.budget,
        checks=results,
        protocols=data,
        caveats=_auto_caveats(claim, data),
        n_boot=B,
        level=claim.bootstrap.level,
    )
