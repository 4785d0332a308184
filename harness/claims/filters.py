"""Parameter values and row filters (``where:``) of claim files.

Run tables hold one column per config key (``train.batch_size``, ``train.loss``). A value there may
be a number, a name (``"relu"``) or a component spec, which different writers spell differently: a
mapping ``{name: mse, output: softmax}``, its JSON text, or the label ``mse(output=softmax)``.
:func:`value_key` maps all of these to one canonical, hashable key, so a claim file can write a
value in any of those forms and still match the table.

A ``where`` filter is a mapping from parameter to condition, or a list of such mappings (OR of
ANDs, for matched pairs such as "sigmoid with Glorot init, or ReLU with He init")::

    where: {train.batch_size: {">=": 8, "<=": 256}}
    where: {model.activation: [relu, leaky_relu]}
    where: [{model.activation: sigmoid, model.init: glorot_normal},
            {model.activation: relu, model.init: he_normal}]
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harness.claims.errors import ClaimError

__all__ = [
    "COMPARISONS",
    "Condition",
    "WhereFilter",
    "is_numeric_key",
    "parse_where",
    "sort_key_tuples",
    "sort_keys",
    "value_key",
    "value_label",
]

#: Comparison operators allowed inside a ``where`` condition.
COMPARISONS = ("==", "!=", ">", ">=", "<", "<=")

Key = float | str | bool

_LABEL_RE = re.compile(r"^([a-z][a-z0-9_]*)\((.*)\)$")


def _spec_label(spec: Mapping[str, Any]) -> str:
    """``{name: mse, output: softmax}`` → ``"mse(output=softmax)"`` (kwargs sorted)."""
    name = str(spec.get("name", "?"))
    kwargs = {str(k): v for k, v in spec.items() if k != "name"}
    if not kwargs:
        return name
    parts = [f"{k}={_scalar_text(kwargs[k])}" for k in sorted(kwargs)]
    return f"{name}({','.join(parts)})"


def _scalar_text(v: Any) -> str:
    if isinstance(v, Mapping):
        return _spec_label(v)
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_scalar_text(x) for x in v) + "]"
    return str(v)


def _parse_label(text: str) -> dict[str, Any] | None:
    """Parse ``"mse(output=softmax)"`` back to a mapping; None when ``text`` is not a label."""
    m = _LABEL_RE.match(text.strip())
    if not m:
        return None
    out: dict[str, Any] = {"name": m.group(1)}
    body = m.group(2).strip()
    if not body:
        return out
    for part in body.split(","):
        if "=" not in part:
            return None
        k, raw = part.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(raw.strip())
        except yaml.YAMLError:
            out[k.strip()] = raw.strip()
    return out


def value_key(v: Any) -> Key:
    """Canonical hashable key of a parameter value.

    Numbers become floats (``64`` and ``64.0`` match), booleans stay booleans, component specs
    become their label (``"mse(output=softmax)"``), whatever their spelling; a spec with only a
    name is its name. Missing values (None, NaN) map to ``"<missing>"``.
    """
    if v is None:
        return "<missing>"
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return "<missing>" if math.isnan(f) else f
    if isinstance(v, Mapping):
        return _spec_label(v)
    if isinstance(v, str):
        s = v.strip()
        if s.startswith("{"):
            try:
                parsed = json.loads(s)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, Mapping):
                return _spec_label(parsed)
        spec = _parse_label(s)
        if spec is not None:
            return _spec_label(spec)
        return s
    if isinstance(v, (list, tuple)):
        return _scalar_text(v)
    return str(v)


def value_label(v: Any) -> str:
    """Short human label of a parameter value (``1257``, ``0.1``, ``mse(output=softmax)``)."""
    key = value_key(v)
    if isinstance(key, float):
        return _scalar_text(key)
    return str(key).lower() if isinstance(key, bool) else str(key)


def is_numeric_key(key: Key) -> bool:
    return isinstance(key, float)


def sort_keys(keys: Iterable[Key]) -> list[Key]:
    """Unique keys in natural order: numbers ascending, then the rest alphabetically."""
    uniq = list(dict.fromkeys(keys))
    nums = sorted(k for k in uniq if isinstance(k, float))
    rest = sorted((k for k in uniq if not isinstance(k, float)), key=str)
    return [*nums, *rest]


def sort_key_tuples(keys: Iterable[tuple[Key, ...]]) -> list[tuple[Key, ...]]:
    """Unique tuples of keys in natural order (element-wise: numbers before strings)."""

    def order(t: tuple[Key, ...]) -> tuple:
        return tuple((isinstance(x, str), str(x) if isinstance(x, str) else x) for x in t)

    return sorted(dict.fromkeys(keys), key=order)


@dataclass(frozen=True)
class Condition:
    """One parameter's condition inside a filter clause: ``op`` applied to ``value``.

    ``op`` is ``"in"`` (value is a tuple of keys) or one of :data:`COMPARISONS`.
    """

    param: str
    op: str
    value: Any

    def test(self, keys: Sequence[Key]) -> np.ndarray:
        """Boolean mask over already-normalised keys."""
        if self.op == "in":
            wanted = set(self.value)
            return np.array([k in wanted for k in keys], dtype=bool)
        if self.op in ("==", "!="):
            eq = np.array([k == self.value for k in keys], dtype=bool)
            return eq if self.op == "==" else ~eq
        # ordered comparisons need numbers; a non-numeric cell never satisfies them
        x = np.array([k if isinstance(k, float) else np.nan for k in keys], dtype=float)
        with np.errstate(invalid="ignore"):
            if self.op == ">":
                return x > self.value
            if self.op == ">=":
                return x >= self.value
            if self.op == "<":
                return x < self.value
            return x <= self.value

    def describe(self) -> str:
        if self.op == "in":
            vals = [value_label(v) for v in self.value]
            return (
                f"{self.param} = {vals[0]}"
                if len(vals) == 1
                else f"{self.param} ∈ {{{', '.join(vals)}}}"
            )
        return f"{self.param} {self.op} {value_label(self.value)}"


@dataclass(frozen=True)
class WhereFilter:
    """An OR of clauses, each an AND of :class:`Condition` (see the module docstring)."""

    clauses: tuple[tuple[Condition, ...], ...]

    @property
    def params(self) -> set[str]:
        return {c.param for clause in self.clauses for c in clause}

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        """Rows of ``df`` that pass. Every filtered parameter must be a column of ``df``."""
        out = np.zeros(len(df), dtype=bool)
        for clause in self.clauses:
            m = np.ones(len(df), dtype=bool)
            for cond in clause:
                if cond.param not in df.columns:
                    raise KeyError(
                        f"filter on {cond.param!r}, which is not a column; "
                        f"columns: {', '.join(map(str, df.columns))}"
                    )
                m &= cond.test([value_key(v) for v in df[cond.param]])
            out |= m
        return out

    def describe(self) -> str:
        parts = [" and ".join(c.describe() for c in clause) for clause in self.clauses]
        return " or ".join(f"({p})" if len(self.clauses) > 1 else p for p in parts)


def _parse_condition(param: str, raw: Any, path: str) -> list[Condition]:
    """The conditions one parameter's entry stands for."""
    if isinstance(raw, Mapping) and raw and all(str(k) in COMPARISONS for k in raw):
        out = []
        for op, v in raw.items():
            if op in ("==", "!="):
                out.append(Condition(param, str(op), value_key(v)))
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ClaimError(f"{path}.{op}", v, "a number for an ordered comparison")
            out.append(Condition(param, str(op), float(v)))
        return out
    if isinstance(raw, Mapping) and "name" not in raw:
        raise ClaimError(
            path,
            raw,
            f"a value, a list of values, a component spec with a 'name', or comparisons "
            f"with the operators {', '.join(COMPARISONS)}",
        )
    if isinstance(raw, list):
        if not raw:
            raise ClaimError(path, raw, "a non-empty list of values")
        return [Condition(param, "in", tuple(value_key(v) for v in raw))]
    return [Condition(param, "in", (value_key(raw),))]


def parse_where(raw: Any, path: str = "where") -> WhereFilter:
    """Parse a ``where`` block (see the module docstring).

    Raises
    ------
    ClaimError
        Naming the YAML path of the bad part, its value and what is allowed.
    """
    clauses_raw = raw if isinstance(raw, list) else [raw]
    if not clauses_raw:
        raise ClaimError(path, raw, "a mapping {param: condition} or a non-empty list of them")
    clauses = []
    for i, clause in enumerate(clauses_raw):
        cpath = f"{path}[{i}]" if isinstance(raw, list) else path
        if not isinstance(clause, Mapping) or not clause:
            raise ClaimError(cpath, clause, "a non-empty mapping {param: condition}")
        conds: list[Condition] = []
        for param, cond in clause.items():
            conds.extend(_parse_condition(str(param), cond, f"{cpath}.{param}"))
        clauses.append(tuple(conds))
    return WhereFilter(tuple(clauses))
