"""Three-valued verdicts: a rule against a confidence interval, Kleene logic, protocols.

Under one protocol a rule gives

- ``supported`` when the whole interval satisfies it (``>= 0.3``: its low end ≥ 0.3),
- ``refuted`` when the whole interval violates it (its high end < 0.3),
- ``inconclusive`` when the interval straddles the threshold, or the statistic could not be computed
  (too few seeds, too many failed runs, undefined values); the reason is kept.

Conditions combine with ``all`` / ``any`` in Kleene's three-valued logic (supported = true,
refuted = false, inconclusive = unknown). Across protocols: all supported → ``supported``, all
refuted → ``refuted``, at least one of each → ``conditional`` (the claim holds under some
protocols only), anything else → ``inconclusive``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.claims.errors import ClaimError

__all__ = ["OPS", "Rule", "Verdict", "across_protocols", "kleene_all", "kleene_any"]

#: Rule operators. ``between`` takes ``[low, high]`` (inclusive).
OPS = (">=", ">", "<=", "<", "between")
_SYMBOL = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


class Verdict(str, Enum):
    """The verdict of a condition, a check under one protocol, or a check across protocols."""

    SUPPORTED = "supported"
    REFUTED = "refuted"
    CONDITIONAL = "conditional"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Rule:
    """``op`` and threshold ``value`` (a pair for ``between``)."""

    op: str
    value: Any

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Rule:
        """From ``{op: ">=", value: 0.3}``; raises ClaimError naming the bad key."""
        op = raw.get("op")
        if op not in OPS:
            raise ClaimError("op", op, f"one of {', '.join(OPS)}")
        v: Any = raw.get("value")
        if op == "between":
            ok = (
                isinstance(v, list)
                and len(v) == 2
                and all(_is_num(x) for x in v)
                and float(v[0]) <= float(v[1])
            )
            if not ok:
                raise ClaimError("value", v, "[low, high] with low <= high for op 'between'")
            return cls(op, (float(v[0]), float(v[1])))
        if not _is_num(v):
            raise ClaimError("value", v, "a number")
        return cls(op, float(v))

    def holds(self, x: float) -> bool:
        if math.isnan(x):
            return False
        if self.op == "between":
            lo, hi = self.value
            return bool(lo <= x <= hi)
        t = self.value
        return bool({">=": x >= t, ">": x > t, "<=": x <= t, "<": x < t}[self.op])

    def judge(self, low: float, high: float) -> Verdict:
        """Verdict of a CI ``[low, high]`` (NaN bounds: inconclusive)."""
        if math.isnan(low) or math.isnan(high):
            return Verdict.INCONCLUSIVE
        if self.op == "between":
            a, b = self.value
            if a <= low and high <= b:
                return Verdict.SUPPORTED
            if high < a or low > b:
                return Verdict.REFUTED
            return Verdict.INCONCLUSIVE
        # the CI is an interval: the rule holds for all of it iff it holds at the worse end
        worse, better = (low, high) if self.op in (">=", ">") else (high, low)
        if self.holds(worse):
            return Verdict.SUPPORTED
        if not self.holds(better):
            return Verdict.REFUTED
        return Verdict.INCONCLUSIVE

    def describe(self) -> str:
        if self.op == "between":
            lo, hi = self.value
            return f"in [{_num(lo)}, {_num(hi)}]"
        return f"{_SYMBOL[self.op]} {_num(self.value)}"


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _num(x: float) -> str:
    return f"{x:.4g}"


def kleene_all(verdicts: Iterable[Verdict]) -> Verdict:
    """AND: any refuted → refuted; all supported → supported; else inconclusive."""
    vs = list(verdicts)
    if any(v is Verdict.REFUTED for v in vs):
        return Verdict.REFUTED
    if vs and all(v is Verdict.SUPPORTED for v in vs):
        return Verdict.SUPPORTED
    return Verdict.INCONCLUSIVE


def kleene_any(verdicts: Iterable[Verdict]) -> Verdict:
    """OR: any supported → supported; all refuted → refuted; else inconclusive."""
    vs = list(verdicts)
    if any(v is Verdict.SUPPORTED for v in vs):
        return Verdict.SUPPORTED
    if vs and all(v is Verdict.REFUTED for v in vs):
        return Verdict.REFUTED
    return Verdict.INCONCLUSIVE


def across_protocols(per_protocol: Mapping[str, Verdict]) -> Verdict:
    """Combine one check's verdicts under several protocols (see the module docstring)."""
    vs = list(per_protocol.values())
    if vs and all(v is Verdict.SUPPORTED for v in vs):
        return Verdict.SUPPORTED
    if vs and all(v is Verdict.REFUTED for v in vs):
        return Verdict.REFUTED
    if Verdict.SUPPORTED in vs and Verdict.REFUTED in vs:
        return Verdict.CONDITIONAL
    return Verdict.INCONCLUSIVE
