"""Rules against confidence intervals, Kleene logic, and the combination across protocols."""

from __future__ import annotations

import math

import pytest

from harness.claims.errors import ClaimError
from harness.claims.verdicts import Rule, Verdict, across_protocols, kleene_all, kleene_any

S, R, I, C = Verdict.SUPPORTED, Verdict.REFUTED, Verdict.INCONCLUSIVE, Verdict.CONDITIONAL


@pytest.mark.parametrize(
    ("op", "value", "ci", "expected"),
    [
        (">=", 0.3, (0.35, 0.5), S),
        (">=", 0.3, (0.3, 0.5), S),  # the bound itself satisfies >=
        (">", 0.3, (0.3, 0.5), I),  # ... but not >
        (">=", 0.3, (0.1, 0.29), R),
        (">=", 0.3, (0.2, 0.4), I),
        ("<", 1e-3, (1e-7, 1e-6), S),
        ("<", 1e-3, (2e-3, 5e-3), R),
        ("<=", 0.5, (0.4, 0.6), I),
        (">=", 4.0, (math.inf, math.inf), S),  # "never reached" ratios are infinitely large
        ("<=", 4.0, (math.inf, math.inf), R),
        ("between", [0.1, 10], (0.5, 2.0), S),
        ("between", [0.1, 10], (11.0, 20.0), R),
        ("between", [0.1, 10], (1e-4, 1e-2), R),
        ("between", [0.1, 10], (5.0, 20.0), I),
        (">=", 0.3, (math.nan, 0.5), I),
    ],
)
def test_rule_judges_the_whole_ci(op, value, ci, expected):
    assert Rule.parse({"op": op, "value": value}).judge(*ci) is expected


def test_rule_parse_names_the_bad_field():
    with pytest.raises(ClaimError) as exc:
        Rule.parse({"op": "=>", "value": 1})
    assert exc.value.path == "op"
    assert "between" in str(exc.value)
    with pytest.raises(ClaimError) as exc:
        Rule.parse({"op": "between", "value": [3, 1]})
    assert exc.value.path == "value"
    assert "low <= high" in str(exc.value)
    with pytest.raises(ClaimError):
        Rule.parse({"op": ">=", "value": "high"})


def test_kleene_logic():
    assert kleene_all([S, S]) is S
    assert kleene_all([S, I]) is I
    assert kleene_all([I, R]) is R
    assert kleene_any([R, I]) is I
    assert kleene_any([R, S]) is S
    assert kleene_any([R, R]) is R
    assert kleene_all([]) is I
    assert kleene_any([]) is I


def test_across_protocols():
    assert across_protocols({"a": S, "b": S}) is S
    assert across_protocols({"a": R, "b": R}) is R
    assert across_protocols({"a": S, "b": R}) is C
    assert across_protocols({"a": S, "b": R, "c": I}) is C
    assert across_protocols({"a": S, "b": I}) is I
    assert across_protocols({"a": R, "b": I}) is I
    assert across_protocols({"a": S}) is S
