"""A study's search space: parameters over dotted config keys, turned into Optuna suggestions.

A parameter is addressed by the dotted key it sets in the run config (``train.optimizer.lr``,
``model.init.std``) and has a type:

* ``float`` / ``int``: ``low``, ``high``, optional ``log: true`` (``low > 0``) or ``step``;
* ``categorical``: ``choices``, which may be component specs such as ``{name: normal, std: 0.01}``.
  Optuna stores only primitive choices, so each mapping (or list) choice gets a stable string
  *label* (``"normal(std=0.01)"``); :meth:`Param.decode` maps the label back to the mapping.

Each parameter has a *role* from Google's Deep Learning Tuning Playbook (``scientific`` or
``nuisance``; default nuisance) and an optional condition ``when: {dotted.key: [values]}``: it is
only suggested when every key holds one of the values in the config decided so far (a component
spec matches by its ``name``). Parameters are suggested in dependency order, so a condition always
refers to a value already decided or fixed. ``derived`` keys are computed last from a safe
arithmetic expression (parsed with :mod:`ast`, never ``eval``)::

    derived:
      train.optimizer.lr: "0.1 * sqrt(train.batch_size / 32)"

Every error is a :class:`~harness.config.ConfigError` naming the YAML path under ``search``.
"""

from __future__ import annotations

import ast
import copy
import difflib
import json
import math
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import BaseTrial

from harness.config import ConfigError, set_dotted
from harness.runconfig import RUN_SECTIONS, resolve_run_config

__all__ = [
    "PARAM_TYPES",
    "SEARCHABLE_SECTIONS",
    "SEARCH_ROLES",
    "Derived",
    "Param",
    "SafeExpression",
    "SearchSpace",
    "choice_label",
    "has_key",
    "lookup",
    "validate_run_config",
]

PARAM_TYPES = ("float", "int", "categorical")
#: roles a searched parameter may have (``fixed`` is for parameters that are not searched)
SEARCH_ROLES = ("scientific", "nuisance")
#: run-config sections a parameter may live in (the seed is the replicates' business)
SEARCHABLE_SECTIONS = tuple(s for s in RUN_SECTIONS if s != "seed")
_PARAM_FIELDS = ("type", "low", "high", "log", "step", "choices", "role", "when")
_MISSING = object()
# a numeric value this close to a range end (relative to the range) still counts as inside it
_RANGE_TOL = 1e-9


def lookup(cfg: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted ``key``, or a private sentinel when absent.

    A string component spec answers ``<key>.name`` with itself, so ``train.optimizer.name`` works
    whether the optimizer is written ``sgd`` or ``{name: sgd, lr: 0.1}``.
    """
    node: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, str) and part == "name" and i == len(parts) - 1:
            return node
        else:
            return _MISSING
    return node


def has_key(cfg: Mapping[str, Any], key: str) -> bool:
    """Whether :func:`lookup` finds ``key`` in ``cfg``."""
    return lookup(cfg, key) is not _MISSING


def _matches(value: Any, allowed: Sequence[Any]) -> bool:
    """Whether a config value satisfies a ``when`` list (a spec matches by its name)."""
    for a in allowed:
        # True == 1 in Python; a condition on a flag must not match a count
        if value == a and isinstance(value, bool) == isinstance(a, bool):
            return True
        if isinstance(value, Mapping) and isinstance(a, str) and value.get("name") == a:
            return True
    return False


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _close(name: str, options: Sequence[str]) -> str:
    hit = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {hit[0]!r}?)" if hit else ""


def choice_label(choice: Any) -> optuna.distributions.CategoricalChoiceType:
    """The primitive Optuna stores for a categorical choice.

    Primitives stay as they are; a component spec ``{name: normal, std: 0.01}`` becomes
    ``"normal(std=0.01)"`` (arguments sorted, values as JSON); any other mapping or list becomes
    its canonical JSON.
    """
    if choice is None or isinstance(choice, (bool, int, float, str)):
        return choice
    if isinstance(choice, Mapping) and isinstance(choice.get("name"), str):
        args = ", ".join(
            f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(choice.items()) if k != "name"
        )
        return f"{choice['name']}({args})"
    return json.dumps(choice, sort_keys=True, separators=(",", ":"), default=str)


# -- safe arithmetic --------------------------------------------------------------------------

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "int": int,
    "float": float,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
# 10 ** 10 ** 10 would hang the driver; no sensible hyperparameter needs a larger exponent
_MAX_EXPONENT = 64
# bounds that keep evaluating an expression cheap whatever is typed (a derived key is computed
# for every trial, in the driver): its length, its nesting, the size of any value on the way
# (an integer of more bits than a float can hold is no hyperparameter) and the time it takes
_MAX_EXPRESSION_CHARS = 1000
_MAX_DEPTH = 32
_MAX_INT_BITS = 1024
_MAX_EVAL_S = 1.0
_ALLOWED_TEXT = (
    "arithmetic (+ - * / // % **) on numbers and config keys (e.g. train.batch_size), "
    f"with the functions {', '.join(_FUNCTIONS)} and the constants {', '.join(_CONSTANTS)}"
)


def _dotted_name(node: ast.expr) -> str | None:
    """``train.optimizer.lr`` parses as nested Attribute nodes over a Name; anything else: None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class SafeExpression:
    """An arithmetic expression over config keys, checked by walking its AST (no ``eval``).

    Parameters
    ----------
    text : str
        ``"0.1 * sqrt(train.batch_size / 32)"``.
    path : str
        YAML path used in errors (``search.derived.train.optimizer.lr``).
    """

    def __init__(self, text: Any, path: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(path, text, f"an expression string: {_ALLOWED_TEXT}")
        self.text = text
        self.path = path
        if len(text) > _MAX_EXPRESSION_CHARS:
            raise ConfigError(
                path, text, f"an expression of at most {_MAX_EXPRESSION_CHARS} characters"
            )
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ConfigError(
                path, text, f"a valid expression ({exc.msg}): {_ALLOWED_TEXT}"
            ) from None
        except (RecursionError, MemoryError):
            raise ConfigError(
                path, text, f"an expression nested at most {_MAX_DEPTH} levels deep"
            ) from None
        self._tree = tree
        self.names: tuple[str, ...] = tuple(dict.fromkeys(self._check(tree.body)))

    def _reject(self, what: str) -> ConfigError:
        return ConfigError(self.path, self.text, f"{_ALLOWED_TEXT}; {what} is not allowed")

    def _check(self, node: ast.expr, depth: int = 0) -> list[str]:
        """Validate ``node`` and return the config keys it reads."""
        if depth > _MAX_DEPTH:
            raise ConfigError(
                self.path, self.text, f"an expression nested at most {_MAX_DEPTH} levels deep"
            )
        depth += 1
        if isinstance(node, ast.Constant):
            if not _is_number(node.value):
                raise self._reject(f"the constant {node.value!r}")
            return []
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise self._reject(f"the operator {type(node.op).__name__}")
            return self._check(node.left, depth) + self._check(node.right, depth)
        if isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise self._reject(f"the operator {type(node.op).__name__}")
            return self._check(node.operand, depth)
        if isinstance(node, ast.Call):
            fname = node.func.id if isinstance(node.func, ast.Name) else None
            if fname not in _FUNCTIONS:
                shown = fname or ast.unparse(node.func)
                raise self._reject(f"calling {shown!r}")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise self._reject("keyword or starred arguments")
            return [n for a in node.args for n in self._check(a, depth)]
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _dotted_name(node)
            if name is None or any(p.startswith("_") for p in name.split(".")):
                raise self._reject(f"the expression {ast.unparse(node)!r}")
            if name in _CONSTANTS:
                return []
            if name in _FUNCTIONS:
                raise self._reject(f"the function {name!r} without a call")
            return [name]
        raise self._reject(f"{type(node).__name__} ({ast.unparse(node)!r})")

    def evaluate(self, values: Callable[[str], Any]) -> float | int:
        """Evaluate with ``values(dotted_key)`` giving each config key's value."""
        try:
            out = self._eval(self._tree.body, values, time.monotonic() + _MAX_EVAL_S)
        except ConfigError:
            raise
        except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError) as exc:
            raise ConfigError(
                self.path, self.text, f"an expression that evaluates ({exc})"
            ) from None
        if not _is_number(out):
            raise ConfigError(
                self.path, self.text, f"an expression giving a finite number, got {out!r}"
            )
        return out

    def _bounded(self, value: Any, deadline: float) -> Any:
        """``value`` if it is within the bounds on size (and time is left), else ConfigError."""
        if time.monotonic() > deadline:
            raise ConfigError(
                self.path, self.text, f"an expression that evaluates within {_MAX_EVAL_S:g} s"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            if value.bit_length() > _MAX_INT_BITS:
                raise ConfigError(
                    self.path, self.text, f"values within ±2**{_MAX_INT_BITS} on the way"
                )
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(self.path, self.text, f"finite values on the way, got {value!r}")
        return value

    def _eval(self, node: ast.expr, values: Callable[[str], Any], deadline: float) -> Any:
        if isinstance(node, ast.Constant):
            return self._bounded(node.value, deadline)
        if isinstance(node, ast.BinOp):
            left = self._eval(node.left, values, deadline)
            right = self._eval(node.right, values, deadline)
            if isinstance(node.op, ast.Pow):
                if abs(right) > _MAX_EXPONENT:
                    raise ConfigError(self.path, self.text, f"exponents within ±{_MAX_EXPONENT}")
                # (2 ** 64) ** 64: each exponent is small, the power is not; refuse it before
                # computing it (an integer power is exact, so its size is known in advance)
                whole = isinstance(left, int) and isinstance(right, int) and abs(left) > 1
                if whole and left.bit_length() * abs(right) > _MAX_INT_BITS + 64:
                    raise ConfigError(
                        self.path, self.text, f"values within ±2**{_MAX_INT_BITS} on the way"
                    )
            return self._bounded(_BINARY[type(node.op)](left, right), deadline)
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, values, deadline)
            return self._bounded(_UNARY[type(node.op)](operand), deadline)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)  # guaranteed by _check
            args = [self._eval(a, values, deadline) for a in node.args]
            digits = args[1] if node.func.id == "round" and len(args) > 1 else 0
            if _is_number(digits) and abs(digits) > 400:  # round(x, 10**9): a huge decimal
                raise ConfigError(self.path, self.text, "round() to at most 400 digits")
            return self._bounded(_FUNCTIONS[node.func.id](*args), deadline)
        name = _dotted_name(node)
        assert name is not None  # guaranteed by _check
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        value = values(name)
        if not _is_number(value):
            shown = "<missing>" if value is _MISSING else repr(value)
            raise ConfigError(self.path, self.text, f"{name} to be a number, it is {shown}")
        return value


# -- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One searched parameter (see the module docstring for the YAML form).

    ``choices`` hold the original values (mappings included) and ``labels`` what Optuna stores.
    ``when`` maps dotted keys to the tuple of values that activate the parameter.
    """

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    labels: tuple[Any, ...] = ()
    role: str = "nuisance"
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    # -- construction from YAML ---------------------------------------------------------------
    @classmethod
    def from_yaml(cls, key: Any, raw: Any, *, path: str = "search.params") -> Param:
        """Validate one ``search.params`` entry; errors name ``<path>.<key>.<field>``."""
        here = f"{path}.{key}"
        if not isinstance(key, str) or not key or not all(key.split(".")):
            raise ConfigError(here, key, "a dotted config key such as train.optimizer.lr")
        if key.split(".")[0] not in SEARCHABLE_SECTIONS or "." not in key:
            raise ConfigError(
                here,
                key,
                f"a key inside one of the sections {', '.join(SEARCHABLE_SECTIONS)}, written as "
                "one dotted key (train.optimizer.lr: {type: float, ...}, not nested mappings)",
            )
        if not isinstance(raw, Mapping):
            raise ConfigError(here, raw, "a mapping such as {type: float, low: 0.001, high: 1.0}")
        for k in raw:
            if k not in _PARAM_FIELDS:
                raise ConfigError(
                    f"{here}.{k}",
                    raw[k],
                    f"a parameter field{_close(str(k), _PARAM_FIELDS)}; allowed: {', '.join(_PARAM_FIELDS)}",
                )
        ptype = raw.get("type", "categorical" if "choices" in raw else _MISSING)
        if ptype is _MISSING:
            raise ConfigError.missing(f"{here}.type", f"one of {', '.join(PARAM_TYPES)}")
        if ptype not in PARAM_TYPES:
            raise ConfigError(f"{here}.type", ptype, f"one of {', '.join(PARAM_TYPES)}")
        role = raw.get("role", "nuisance")
        if role not in SEARCH_ROLES:
            hint = " (a fixed parameter is not searched: declare it in search.fixed_roles)"
            raise ConfigError(
                f"{here}.role",
                role,
                f"one of {', '.join(SEARCH_ROLES)}{hint if role == 'fixed' else ''}",
            )
        when = cls._parse_when(raw.get("when"), f"{here}.when", key)
        if ptype == "categorical":
            for k in ("low", "high", "log", "step"):
                if k in raw:
                    raise ConfigError(f"{here}.{k}", raw[k], "no numeric range for a categorical")
            choices, labels = cls._parse_choices(raw.get("choices", _MISSING), f"{here}.choices")
            return cls(key, ptype, choices=choices, labels=labels, role=role, when=when)
        if "choices" in raw:
            raise ConfigError(f"{here}.choices", raw["choices"], f"no choices for type {ptype}")
        low, high, log, step = cls._parse_range(raw, here, ptype)
        return cls(key, ptype, low=low, high=high, log=log, step=step, role=role, when=when)

    @staticmethod
    def _parse_when(raw: Any, here: str, key: str) -> dict[str, tuple[Any, ...]]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigError(here, raw, "a mapping {dotted.key: [allowed values]}")
        out: dict[str, tuple[Any, ...]] = {}
        for k, v in raw.items():
            if not isinstance(k, str) or not k or not all(k.split(".")):
                raise ConfigError(f"{here}.{k}", v, "a dotted config key as the condition")
            if k == key or k.startswith(key + "."):
                raise ConfigError(f"{here}.{k}", v, f"a condition on another key than {key}")
            values = tuple(v) if isinstance(v, (list, tuple)) else (v,)
            if not values:
                raise ConfigError(f"{here}.{k}", v, "a non-empty list of allowed values")
            out[k] = values
        return out

    @staticmethod
    def _parse_choices(raw: Any, here: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        if raw is _MISSING:
            raise ConfigError.missing(here, "a non-empty list of choices")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(here, raw, "a non-empty list of choices")
        labels: list[Any] = []
        for i, choice in enumerate(raw):
            if isinstance(choice, float) and not math.isfinite(choice):
                raise ConfigError(f"{here}.{i}", choice, "a finite number, string or spec")
            label = choice_label(choice)
            # 1, 1.0 and True compare equal: Optuna would store them as the same choice
            if any(label == seen for seen in labels):
                raise ConfigError(f"{here}.{i}", choice, "choices that are all different")
            labels.append(label)
        return tuple(copy.deepcopy(raw)), tuple(labels)

    @staticmethod
    def _parse_range(
        raw: Mapping[str, Any], here: str, ptype: str
    ) -> tuple[float, float, bool, float | None]:
        kind = "an integer" if ptype == "int" else "a finite number"
        bounds = []
        for k in ("low", "high"):
            if k not in raw:
                raise ConfigError.missing(f"{here}.{k}", kind)
            v = raw[k]
            ok = _is_number(v) and (ptype == "float" or isinstance(v, int))
            if not ok:
                raise ConfigError(f"{here}.{k}", v, kind)
            bounds.append(v)
        low, high = bounds
        if not low < high:
            raise ConfigError(f"{here}.high", high, f"a value greater than low ({low})")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{here}.log", log, "true or false")
        if log and low <= 0:
            raise ConfigError(f"{here}.low", low, "a value > 0 when log: true")
        step = raw.get("step")
        if step is not None:
            ok = _is_number(step) and step > 0 and (ptype == "float" or isinstance(step, int))
            if not ok:
                raise ConfigError(f"{here}.step", step, f"{kind} > 0, or null")
            if log:
                raise ConfigError(f"{here}.step", step, "null when log: true (Optuna allows one)")
            n = (high - low) / step
            if abs(n - round(n)) > 1e-6:
                raise ConfigError(
                    f"{here}.step", step, f"a step that divides high - low ({high - low})"
                )
        return low, high, log, step

    # -- Optuna ------------------------------------------------------------------------------
    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a numeric parameter."""
        if self.low is None or self.high is None:
            raise TypeError(f"parameter {self.key!r} is {self.type}, it has no range")
        return self.low, self.high

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution (categoricals over labels)."""
        if self.type == "categorical":
            return CategoricalDistribution(list(self.labels))
        low, high = self.bounds
        if self.type == "int":
            return IntDistribution(int(low), int(high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(low, high, log=self.log, step=self.step)

    def suggest(self, trial: BaseTrial) -> Any:
        """Ask ``trial`` for this parameter; returns what Optuna stores (a label for specs)."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.labels))
        low, high = self.bounds
        if self.type == "int":
            return trial.suggest_int(
                self.key, int(low), int(high), log=self.log, step=int(self.step or 1)
            )
        return trial.suggest_float(self.key, low, high, log=self.log, step=self.step)

    def decode(self, stored: Any, *, path: str = "params") -> Any:
        """The config value for a stored Optuna value (a label, or an original choice)."""
        where = f"{path}.{self.key}"
        if self.type == "categorical":
            for label, choice in zip(self.labels, self.choices):
                if stored == label and type(stored) is type(label):
                    return copy.deepcopy(choice)
            for label, choice in zip(self.labels, self.choices):
                if stored in (label, choice):
                    return copy.deepcopy(choice)
            raise ConfigError(where, stored, f"one of {list(self.labels)}")
        low, high = self.bounds
        ok = _is_number(stored) and (self.type == "float" or float(stored).is_integer())
        tol = _RANGE_TOL * (high - low)
        if not ok or not low - tol <= stored <= high + tol:
            raise ConfigError(where, stored, f"a {self.type} in [{low}, {high}]")
        return int(stored) if self.type == "int" else float(stored)

    def grid_values(self) -> list[Any] | None:
        """Every value a grid visits, or None when the parameter is continuous."""
        if self.type == "categorical":
            return list(self.labels)
        low, high = self.bounds
        if (self.type == "float" and self.step is None) or self.log:
            return None
        step = self.step or 1
        n = round((high - low) / step) + 1
        if self.type == "int":
            return [int(low + k * step) for k in range(n)]
        # rounding keeps 0.1 + 2 * 0.1 from becoming 0.30000000000000004, outside [low, high]
        return [min(round(low + k * step, 12), high) for k in range(n)]

    def is_active(self, cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> bool:
        """Whether every ``when`` condition holds on ``cfg`` (falling back on ``defaults``)."""
        for key, allowed in self.when.items():
            value = lookup(cfg, key)
            if value is _MISSING:
                value = lookup(defaults, key)
            if value is _MISSING or not _matches(value, allowed):
                return False
        return True

    def to_yaml(self) -> dict[str, Any]:
        """The normalized YAML mapping (round-trips through :meth:`from_yaml`)."""
        out: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = copy.deepcopy(list(self.choices))
        else:
            out.update(low=self.low, high=self.high, log=self.log)
            if self.step is not None:
                out["step"] = self.step
        out["role"] = self.role
        if self.when:
            out["when"] = {k: list(v) for k, v in self.when.items()}
        return out


@dataclass(frozen=True)
class Derived:
    """A config key computed from other keys after the parameters are decided."""

    key: str
    expression: SafeExpression

    @property
    def names(self) -> tuple[str, ...]:
        return self.expression.names


def validate_run_config(cfg: Mapping[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """``resolve_run_config`` plus the data spec's own check (keys and values per dataset)."""
    resolved = resolve_run_config(cfg, source=source)
    from harness.data import resolve_spec

    try:
        resolve_spec(resolved["data"])
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            "data", resolved["data"], f"a valid data spec: {exc}", source=source
        ) from None
    return resolved


def _related(a: str, b: str) -> bool:
    """Whether setting key ``a`` can change what is read at key ``b`` (or the reverse)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


class SearchSpace:
    """Ordered parameters and derived keys; builds run configs from Optuna trials.

    Parameters
    ----------
    params : sequence of Param
        In YAML order; reordered so that conditions and nested keys follow what they depend on.
    derived : sequence of Derived
        Evaluated in order after every parameter, so each may use earlier derived keys.
    """

    def __init__(self, params: Sequence[Param], derived: Sequence[Derived] = ()) -> None:
        keys = [p.key for p in params]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ConfigError(f"search.params.{dup}", dup, "each key searched once")
        self.params: tuple[Param, ...] = self._dependency_order(params)
        self.derived: tuple[Derived, ...] = tuple(derived)
        for d in self.derived:
            if d.key in keys:
                raise ConfigError(
                    f"search.derived.{d.key}",
                    d.expression.text,
                    "a key that is not also searched (drop it from search.params or from derived)",
                )
            for p in self.params:
                for k in p.when:
                    if k == d.key or k.startswith(d.key + "."):
                        raise ConfigError(
                            f"search.params.{p.key}.when.{k}",
                            list(p.when[k]),
                            f"a condition on a key that is not derived ({d.key} is computed "
                            "after every parameter is decided)",
                        )

    @staticmethod
    def _dependency_order(params: Sequence[Param]) -> tuple[Param, ...]:
        """Stable topological order: a parameter follows the parameters its conditions read and
        the parameters whose value contains its key (``model.init`` before ``model.init.std``)."""

        def needs(p: Param, q: Param) -> bool:
            if p is q:
                return False
            if p.key.startswith(q.key + "."):
                return True
            return any(_related(k, q.key) for k in p.when)

        remaining = list(params)
        ordered: list[Param] = []
        while remaining:
            ready = next(
                (p for p in remaining if not any(needs(p, q) for q in remaining)),
                None,
            )
            if ready is None:
                cycle = [p.key for p in remaining]
                raise ConfigError(
                    f"search.params.{cycle[0]}.when",
                    dict(remaining[0].when),
                    f"conditions without a cycle (these parameters depend on each other: {cycle})",
                )
            ordered.append(ready)
            remaining.remove(ready)
        return tuple(ordered)

    @classmethod
    def from_yaml(cls, params: Any, derived: Any = None, *, path: str = "search") -> SearchSpace:
        """Validate ``search.params`` and ``search.derived`` (structure only; see :meth:`check`)."""
        if not isinstance(params, Mapping) or not params:
            raise ConfigError(
                f"{path}.params",
                params,
                "a non-empty mapping {dotted.key: {type: ..., ...}} of searched parameters",
            )
        plist = [Param.from_yaml(k, v, path=f"{path}.params") for k, v in params.items()]
        dlist: list[Derived] = []
        if derived is not None:
            if not isinstance(derived, Mapping):
                raise ConfigError(f"{path}.derived", derived, "a mapping {dotted.key: expression}")
            for k, text in derived.items():
                here = f"{path}.derived.{k}"
                if not isinstance(k, str) or k.split(".")[0] not in SEARCHABLE_SECTIONS:
                    raise ConfigError(
                        here, k, f"a dotted key in one of {', '.join(SEARCHABLE_SECTIONS)}"
                    )
                dlist.append(Derived(k, SafeExpression(text, here)))
        return cls(plist, dlist)

    # -- lookups ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.params)

    def __contains__(self, key: object) -> bool:
        return any(p.key == key for p in self.params)

    def __iter__(self) -> Any:
        return iter(self.params)

    def __getitem__(self, key: str) -> Param:
        for p in self.params:
            if p.key == key:
                return p
        raise KeyError(key)

    @property
    def keys(self) -> list[str]:
        """Parameter keys in suggestion order."""
        return [p.key for p in self.params]

    def roles(self) -> dict[str, str]:
        return {p.key: p.role for p in self.params}

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter's Optuna distribution (conditional ones included)."""
        return {p.key: p.distribution() for p in self.params}

    def grid_search_space(self) -> dict[str, list[Any]]:
        """The explicit grid for ``GridSampler``; continuous parameters are an error."""
        out: dict[str, list[Any]] = {}
        for p in self.params:
            values = p.grid_values()
            if values is None:
                fix = "add a step, or use type: categorical with choices"
                if p.log:
                    fix = "use type: categorical with the values to visit (log ranges have no step)"
                raise ConfigError(
                    f"search.params.{p.key}",
                    p.to_yaml(),
                    f"a discrete parameter for the grid sampler ({fix})",
                )
            out[p.key] = values
        return out

    def grid_size(self) -> int | None:
        """The number of grid points, or None when a parameter is continuous."""
        size = 1
        for p in self.params:
            values = p.grid_values()
            if values is None:
                return None
            size *= len(values)
        return size

    def to_yaml(self) -> dict[str, Any]:
        """``{"params": ..., "derived": ...}`` in normalized YAML form (YAML order kept)."""
        out: dict[str, Any] = {"params": {p.key: p.to_yaml() for p in self.params}}
        if self.derived:
            out["derived"] = {d.key: d.expression.text for d in self.derived}
        return out

    # -- building configs ---------------------------------------------------------------------
    def suggest(
        self, trial: BaseTrial, base_config: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Ask ``trial`` for every active parameter and build the resolved run config.

        Returns
        -------
        config : dict
            The resolved run config (``resolve_run_config`` applied).
        chosen : dict
            Dotted key → value chosen, with original values (mappings for spec choices).
        """
        return self._build(lambda p: p.decode(p.suggest(trial)), base_config)

    def config_from_params(
        self, params: Mapping[str, Any], base_config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Rebuild the resolved run config from stored Optuna params (labels or originals).

        Used when an interrupted trial is re-run with its original parameters. An active
        parameter missing from ``params`` or a key the space does not have is an error.
        """
        unknown = sorted(set(params) - set(self.keys))
        if unknown:
            raise ConfigError(
                f"params.{unknown[0]}",
                params[unknown[0]],
                f"a key of this search space{_close(unknown[0], self.keys)}: {', '.join(self.keys)}",
            )

        def stored(p: Param) -> Any:
            if p.key not in params:
                raise ConfigError.missing(f"params.{p.key}", "a value (the parameter is active)")
            return p.decode(params[p.key])

        return self._build(stored, base_config)[0]

    def decode_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Stored Optuna params → original values (labels of spec choices become mappings)."""
        return {k: self[k].decode(v) if k in self else v for k, v in params.items()}

    def _build(
        self, value_of: Callable[[Param], Any], base_config: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg = copy.deepcopy(dict(base_config))
        defaults = resolve_run_config(base_config)
        chosen: dict[str, Any] = {}
        for p in self.params:
            if not p.is_active(cfg, defaults):
                continue
            value = value_of(p)
            chosen[p.key] = value
            set_dotted(cfg, p.key, copy.deepcopy(value))
        self._apply_derived(cfg, defaults)
        return resolve_run_config(cfg), chosen

    def _apply_derived(self, cfg: dict[str, Any], defaults: Mapping[str, Any]) -> None:
        def value(key: str) -> Any:
            v = lookup(cfg, key)
            return lookup(defaults, key) if v is _MISSING else v

        for d in self.derived:
            set_dotted(cfg, d.key, d.expression.evaluate(value))

    # -- validation against a base config -------------------------------------------------------
    def check(self, base_config: Mapping[str, Any], *, source: str | None = None) -> None:
        """Check the space against the study's run config; raise ConfigError on the first problem.

        Condition keys and derived names must be searched or present in the resolved base config;
        every condition must be satisfiable; and the config built with each parameter at each end
        of its range (each choice for a categorical) must pass ``resolve_run_config``.
        """
        defaults = validate_run_config(base_config, source=source)
        known = set(self.keys)
        for p in self.params:
            for k in p.when:
                searched = any(_related(k, q) for q in known)
                if not searched and lookup(defaults, k) is _MISSING:
                    raise ConfigError(
                        f"search.params.{p.key}.when.{k}",
                        list(p.when[k]),
                        "a condition on a searched key or a key of the run config"
                        f"{_close(k, list(known))}",
                        source=source,
                    )
        seen_derived: list[str] = []
        for d in self.derived:
            for name in d.names:
                if name in known or name in seen_derived or lookup(defaults, name) is not _MISSING:
                    continue
                raise ConfigError(
                    d.expression.path,
                    d.expression.text,
                    f"names that are searched, derived earlier or in the run config; unknown "
                    f"name {name!r}{_close(name, [*known, *seen_derived])}",
                    source=source,
                )
            seen_derived.append(d.key)
        for p, value, labels in self._probes():
            self._check_probe(p, value, labels, base_config, defaults, source)

    def _probes(self) -> list[tuple[Param, Any, dict[str, Any]]]:
        """(param, probed stored value, stored values of every parameter) for each probe."""
        first = {q.key: (q.labels[0] if q.type == "categorical" else q.low) for q in self.params}
        out = []
        for p in self.params:
            ends = list(p.labels) if p.type == "categorical" else [p.low, p.high]
            for value in ends:
                labels = dict(first)
                labels[p.key] = value
                # make p's condition hold through the searched categoricals it reads
                for k, allowed in p.when.items():
                    for q in self.params:
                        if q.type != "categorical" or not _related(k, q.key) or q is p:
                            continue
                        for label, choice in zip(q.labels, q.choices):
                            tmp: dict[str, Any] = {}
                            set_dotted(tmp, q.key, copy.deepcopy(choice))
                            if _matches(lookup(tmp, k), allowed):
                                labels[q.key] = label
                                break
                out.append((p, value, labels))
        return out

    def _check_probe(
        self,
        p: Param,
        value: Any,
        labels: Mapping[str, Any],
        base_config: Mapping[str, Any],
        defaults: Mapping[str, Any],
        source: str | None,
    ) -> None:
        cfg = copy.deepcopy(dict(base_config))
        active = False
        for q in self.params:
            if q.is_active(cfg, defaults):
                set_dotted(cfg, q.key, q.decode(labels[q.key]))
                active = active or q is p
        if not active:
            held = {}
            for k in p.when:
                v = lookup(cfg, k)
                v = lookup(defaults, k) if v is _MISSING else v
                held[k] = "<missing>" if v is _MISSING else v
            raise ConfigError(
                f"search.params.{p.key}.when",
                {k: list(v) for k, v in p.when.items()},
                f"a condition that can hold (the config has {held})",
                source=source,
            )
        try:
            self._apply_derived(cfg, defaults)
            validate_run_config(cfg)
        except ConfigError as exc:
            # blame the parameter the error is about, if any, rather than the one being probed
            culprit = next((q for q in self.params if _related(exc.path, q.key)), p)
            raise ConfigError(
                f"search.params.{culprit.key}",
                culprit.decode(labels[culprit.key]),
                f"values the run config accepts; with this value: {exc}",
                source=source,
            ) from None
