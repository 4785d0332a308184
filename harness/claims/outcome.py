"""What :func:`harness.claims.engine.evaluate_claim` returns: verdicts and the numbers behind them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pandas as pd

from harness.claims.resampling import GroupedMeasures
from harness.claims.results import RunTable
from harness.claims.verdicts import Verdict

__all__ = [
    "OUTCOME_KINDS",
    "CheckProtocolResult",
    "CheckResult",
    "ClaimOutcome",
    "ConditionResult",
    "Outcome",
    "ProtocolData",
    "StratumResult",
]


def _json_num(x: float) -> float | str | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)


class Outcome(str, Enum):
    """A check's outcome when the claim as worded cannot take a plain verdict.

    - ``ill-posed``: the question has no meaning as asked (L5: ranking models trained with
      different losses by their loss values compares numbers on different scales). The check's
      rule states what a well-posed reading would need; when the data refute it, the outcome is
      ``ill-posed`` instead of ``refuted``.
    - ``not falsifiable as worded``: no result could contradict the wording (N4: "usually before,
      sometimes after is better"). The check reports its statistic and interval, never a verdict.

    The three-valued verdict of the rule is kept next to it (``CheckResult.verdict``).
    """

    ILL_POSED = "ill-posed"
    NOT_FALSIFIABLE = "not falsifiable as worded"

    def __str__(self) -> str:
        return self.value


#: Outcome kinds as written in a claim file (``outcome: {kind: ill_posed}``).
OUTCOME_KINDS = {"ill_posed": Outcome.ILL_POSED, "not_falsifiable": Outcome.NOT_FALSIFIABLE}


@dataclass
class StratumResult:
    """One stratum of a ``by`` statistic combined with ``all`` / ``any``."""

    label: str
    estimate: float
    ci: tuple[float, float]
    verdict: Verdict
    interval: str = ""  # method and level, e.g. "range of 6 seeds, 96.9 %"
    set_aside: str = ""  # why the stratum does not decide the verdict (an arm diverged), or ""


@dataclass
class ConditionResult:
    """One statistic + rule under one protocol, with every number behind its verdict."""

    id: str
    check_id: str
    protocol: str
    statistic: str
    rule: str
    verdict: Verdict
    estimate: float
    ci: tuple[float, float]
    level: float
    n_seeds: int
    n_runs: int
    n_failed: int
    n_diverged: int
    explanation: str
    reason: str = ""
    strata: list[StratumResult] = field(default_factory=list)
    effect: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: interval method (a key of harness.claims.intervals.METHODS), its label, the nominal level;
    #: ``level`` above is the level the interval actually reaches
    method: str = ""
    interval: str = ""
    nominal: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "check": self.check_id,
            "protocol": self.protocol,
            "statistic": self.statistic,
            "rule": self.rule,
            "verdict": str(self.verdict),
            "estimate": _json_num(self.estimate),
            "ci_low": _json_num(self.ci[0]),
            "ci_high": _json_num(self.ci[1]),
            "level": self.level,
            "nominal_level": self.nominal,
            "method": self.method,
            "interval": self.interval,
            "n_seeds": self.n_seeds,
            "n_runs": self.n_runs,
            "n_failed": self.n_failed,
            "n_diverged": self.n_diverged,
            "reason": self.reason,
            "explanation": self.explanation,
            "strata": [
                {
                    "label": s.label,
                    "estimate": _json_num(s.estimate),
                    "ci_low": _json_num(s.ci[0]),
                    "ci_high": _json_num(s.ci[1]),
                    "verdict": str(s.verdict),
                    "interval": s.interval,
                    "set_aside": s.set_aside,
                }
                for s in self.strata
            ],
            "effect": {k: _json_num(v) for k, v in self.effect.items()},
            "censored": str(self.extra.get("censored", "")),
        }


@dataclass
class CheckProtocolResult:
    """A check under one protocol (its conditions combined in Kleene logic)."""

    protocol: str
    verdict: Verdict
    conditions: list[ConditionResult]
    explanation: str


@dataclass
class CheckResult:
    """A check across its protocols."""

    id: str
    claim: str
    why: str
    verdict: Verdict
    protocols: dict[str, CheckProtocolResult]
    explanation: str
    headline: bool = False
    #: set when the claim as worded takes no plain verdict (see :class:`Outcome`)
    outcome: Outcome | None = None

    @property
    def conditions(self) -> list[ConditionResult]:
        return [c for p in self.protocols.values() for c in p.conditions]

    @property
    def label(self) -> str:
        """What the report shows: the outcome when there is one, else the verdict."""
        return str(self.outcome) if self.outcome is not None else str(self.verdict)


@dataclass
class ProtocolData:
    """What one protocol's evaluation saw: its runs, measures and the nuisance selection."""

    name: str
    description: str
    runs_from: str
    table: RunTable  # the runs kept after where + selection (their curves included)
    measures: pd.DataFrame  # per-run measures of the kept runs
    all_measures: pd.DataFrame  # per-run measures before the selection
    selection: pd.DataFrame | None
    grouped: GroupedMeasures
    scientific: list[str]
    nuisance: list[str]
    status_counts: dict[str, int]  # over every run of the protocol, before selection
    notes: list[str] = field(default_factory=list)
    pool: tuple[str, ...] = ()  # the protocols a pooled protocol evaluates together


@dataclass
class ClaimOutcome:
    """Verdicts of every check of a claim, and the data they came from."""

    claim_id: str
    title: str
    budget: str
    checks: list[CheckResult]
    protocols: dict[str, ProtocolData]
    caveats: list[str]
    n_boot: int
    level: float

    @property
    def verdicts(self) -> dict[str, Verdict]:
        return {c.id: c.verdict for c in self.checks}

    def conditions_frame(self) -> pd.DataFrame:
        """Every condition result as a row (for CSV artifacts)."""
        rows = []
        for c in self.checks:
            for r in c.conditions:
                d = r.to_dict()
                d.pop("strata")
                eff = d.pop("effect")
                d.update({f"effect/{k}": v for k, v in eff.items()})
                rows.append(d)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (verdicts, numbers, caveats)."""
        return {
            "claim": self.claim_id,
            "title": self.title,
            "budget": self.budget,
            "n_boot": self.n_boot,
            "level": self.level,
            "checks": [
                {
                    "id": c.id,
                    "claim": c.claim,
                    "verdict": c.label,
                    "rule_verdict": str(c.verdict),
                    "outcome": str(c.outcome) if c.outcome is not None else None,
                    "explanation": c.explanation,
                    "headline": c.headline,
                    "protocols": {
                        p: {
                            "verdict": str(r.verdict),
                            "explanation": r.explanation,
                            "conditions": [x.to_dict() for x in r.conditions],
                        }
                        for p, r in c.protocols.items()
                    },
                }
                for c in self.checks
            ],
            "caveats": list(self.caveats),
            "runs": {p: d.status_counts for p, d in self.protocols.items()},
        }
