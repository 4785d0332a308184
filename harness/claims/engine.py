"""Evaluate a claim on run tables: measures → nuisance selection → statistics → verdicts.

:func:`evaluate_claim` is the entry point. For every protocol it

1. takes the protocol's runs (or those of the protocol it ``reuse``\\ s) and applies ``where``;
2. computes every measure per run (:mod:`harness.claims.measures`);
3. keeps the best nuisance setting per scientific group (:mod:`harness.claims.selection`);
4. groups the measures as ``(groups × seeds)`` arrays and draws one cluster-bootstrap index set
   (seeded from the claim's ``bootstrap.seed`` and the protocol name, so reports reproduce);
5. evaluates each check's conditions: point estimate, percentile CI, rule → verdict, with the
   reason whenever the data cannot decide (too few seeds, too many failed runs, undefined values).

Checks then combine their conditions (Kleene ``all`` / ``any``) and their protocols
(:func:`harness.claims.verdicts.across_protocols`). Nothing here reads an expected answer.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import numpy as np

from harness.claims.errors import ClaimError
from harness.claims.filters import value_label
from harness.claims.measures import Measure, compute_measures
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
from harness.claims.resampling import GroupedMeasures, Sample, bootstrap_indices, percentile_ci
from harness.claims.results import RunTable
from harness.claims.selection import select_nuisance
from harness.claims.spec import CheckSpec, ClaimSpec, Combo, ConditionSpec, Node, ProtocolSpec
from harness.claims.text import fmt, fmt_ci
from harness.claims.verdicts import Rule, Verdict, across_protocols, kleene_all, kleene_any
from harness.seeding import derive_seed

__all__ = ["evaluate_claim"]

#: Above this share of undefined bootstrap draws, a CI is not trusted.
MAX_UNDEFINED_DRAWS = 0.05
#: Fewer seeds than this adds a caveat (the verdict itself uses the claim's ``min_seeds``).
FEW_SEEDS = 5


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
    Verdict.SUPPORTED: "the whole CI satisfies the rule",
    Verdict.REFUTED: "the whole CI violates the rule",
    Verdict.INCONCLUSIVE: "the CI straddles the threshold",
}


class _ProtocolEval:
    """Evaluation state of one protocol: grouped data, the bootstrap draw, the point sample."""

    def __init__(
        self, claim: ClaimSpec, p: ProtocolSpec, grouped: GroupedMeasures, n_boot: int, seed: int
    ) -> None:
        self.claim = claim
        self.p = p
        self.grouped = grouped
        rng = np.random.default_rng(derive_seed(seed, "bootstrap", p.name))
        R = max(grouped.n_replicates, 1)
        self.boot: Sample = grouped.sample(bootstrap_indices(R, n_boot, rng))
        self.point: Sample = grouped.point()
        self.level = claim.bootstrap.level

    def condition(self, check: CheckSpec, leaf: ConditionSpec) -> ConditionResult:
        stat, rule = leaf.statistic_for(self.p.name), leaf.rule_for(self.p.name)
        g = self.grouped
        if g.n_groups == 0 or g.n_replicates == 0:
            return self._empty(check, leaf, rule, "no runs left for this protocol")
        pv = stat.compute(self.point)
        bv = stat.compute(self.boot)
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
        for s, label in enumerate(pv.labels):
            est = float(pv.values[0, s])
            lo, hi, undefined = percentile_ci(bv.values[:, s], self.level)
            why = reason
            if not why and math.isnan(est):
                why = "the statistic is undefined on the data (a compared group has no value, "
                why += "or both sides are ∞)"
            elif not why and undefined > MAX_UNDEFINED_DRAWS:
                why = f"the statistic is undefined in {undefined:.0%} of bootstrap resamples"
            verdict = Verdict.INCONCLUSIVE if why else rule.judge(lo, hi)
            strata.append((label, est, (lo, hi), verdict, why))
        if len(strata) == 1:
            label, est, ci, verdict, why = strata[0]
            stratum_results: list[StratumResult] = []
        else:
            combine = kleene_all if stat.reduce == "all" else kleene_any
            verdict = combine(v for *_, v, _ in strata)
            stratum_results = [StratumResult(s[0], s[1], s[2], s[3]) for s in strata]
            label, est, ci, _, why = self._deciding(strata, verdict, rule, stat.reduce)
        desc = stat.describe()
        if label and len(strata) > 1:
            desc_val = f"{desc}; deciding stratum {label}"
        else:
            desc_val = desc
        level = f"{self.level:.0%} CI"
        if why:
            text = f"{desc_val} = {fmt(est)} ({level} {fmt_ci(*ci)}); inconclusive: {why}."
        else:
            text = (
                f"{desc_val} = {fmt(est)} ({level} {fmt_ci(*ci)}), rule {rule.describe()}: "
                f"{_PHRASE[verdict]}."
            )
            if len(strata) > 1:
                counts = {v: sum(1 for s in strata if s[3] is v) for v in Verdict}
                text += (
                    f" Per {stat.by}: {counts[Verdict.SUPPORTED]} supported, "
                    f"{counts[Verdict.REFUTED]} refuted, {counts[Verdict.INCONCLUSIVE]} inconclusive."
                )
        return ConditionResult(
            id=leaf.id,
            check_id=check.id,
            protocol=self.p.name,
            statistic=desc,
            rule=rule.describe(),
            verdict=verdict,
            estimate=est,
            ci=ci,
            level=self.level,
            n_seeds=n_seeds,
            n_runs=n_runs,
            n_failed=n_failed,
            n_diverged=n_div,
            explanation=text,
            reason=why,
            strata=stratum_results,
            effect=stat.effect(g) if stat.two_group else {},
            extra=pv.extra,
        )

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


def _check_text(
    check: CheckSpec, verdict: Verdict, per: Mapping[str, CheckProtocolResult], claim: ClaimSpec
) -> str:
    def name(p: str) -> str:
        return f"{p} ({claim.protocols[p].description})"

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
        if d.runs_from in seen_sources:
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
        out.append(
            f"Only {'/'.join(map(str, reps))} seeds per configuration: a bootstrap CI over so few "
            "seeds is coarse and tends to be too narrow; the full budget uses more seeds."
        )
    selected = [n for n, d in data.items() if d.selection is not None and len(d.selection)]
    if selected:
        out.append(
            f"In {', '.join(selected)} the nuisance setting was chosen once on all seeds; the CIs "
            "do not include the uncertainty of that choice."
        )
    for name, d in data.items():
        out.extend(f"{name}: {n}" for n in d.notes)
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
        f"{c.protocol}: {c.statistic} = {fmt(c.estimate)} ({c.level:.0%} CI {fmt_ci(*c.ci)})"
        + (f", {c.reason}" if c.reason else "")
        for r in per.values()
        for c in r.conditions
    )
    return f"{head} Reported, not judged: {nums}."


def _group_label(d: ProtocolData, i: int) -> str:
    row = d.grouped.groups.iloc[i]
    return ", ".join(f"{p}={value_label(row[p])}" for p in d.scientific) or "(all runs)"


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
    # Measures that depend on all runs (a target of 0.9 × the best accuracy reached) are
    # resolved per set of runs: protocols may train on different data (digits at init, MNIST-1D
    # for training curves), and a best value from one data set is no target for another.
    # Protocols that reuse another's runs share its resolved measures.
    prepared: dict[str, dict[str, Measure]] = {}
    for p in claim.protocols.values():
        if p.reuse is None:
            t = _protocol_table(p, tabs)
            prepared[p.name] = copy.deepcopy(claim.measures)
            for m in prepared[p.name].values():
                m.prepare(t.curves, t.runs)

    data: dict[str, ProtocolData] = {}
    evals: dict[str, _ProtocolEval] = {}
    for p in claim.protocols.values():
        t = _protocol_table(p, tabs)
        measures = prepared[p.runs_from]
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
        grouped = GroupedMeasures.from_table(kept, p.scientific, list(measures))
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
        evals[p.name] = _ProtocolEval(claim, p, grouped, B, claim.bootstrap.seed)

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
