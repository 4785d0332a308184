"""Nested configuration dictionaries: YAML loading, dotted keys, ``--set`` overrides, flattening.

A config is a plain nested ``dict`` (what ``yaml.safe_load`` returns). Keys are addressed by dotted
paths (``train.optimizer.lr``) everywhere: in ``--set key=value`` overrides, in a study's search
space, in MLflow params and in error messages. Errors are :class:`ConfigError`, which names the
path, the offending value and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "apply_overrides",
    "check_keys",
    "deep_merge",
    "flatten",
    "get_dotted",
    "has_dotted",
    "load_yaml",
    "parse_override",
    "set_dotted",
    "show_value",
    "unflatten",
    "yaml_number_hint",
]

_MISSING = object()


class ConfigError(ValueError):
    """A configuration value is missing, malformed or not allowed.

    Parameters
    ----------
    path : str
        Dotted path of the offending key (``"train.batch_size"``); empty for the whole document.
    value : object
        The value found there.
    allowed : str
        What would have been accepted, in words (``"an integer >= 1"``).
    source : str, optional
        Where the value came from (a file, ``command line``, ``tracking store``...), prefixed
        to the message.
    hint : str, optional
        A few lines of help printed under the one-line message (how to fix it); not part of
        ``str(error)``.
    """

    def __init__(
        self,
        path: str,
        value: Any,
        allowed: str,
        *,
        source: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.value = value
        self.allowed = allowed = allowed + yaml_number_hint(value, allowed)
        self.source = source
        self.hint = hint
        where = f"{source}: " if source else ""
        key = path or "<document>"
        from harness.redact import redact_text  # a storage URL's password is never printed

        super().__init__(
            redact_text(f"{where}{key} = {show_value(value)} is not allowed: expected {allowed}")
        )

    @classmethod
    def missing(
        cls, path: str, allowed: str, *, source: str | None = None, hint: str | None = None
    ) -> ConfigError:
        return cls(path, _MISSING, allowed, source=source, hint=hint)

    def located(self, source: str | None) -> ConfigError:
        """This error with ``source`` as its location, unless it already has one.

        The copy is of the same class, keeps the hint and the cause, so re-raising it ``from
        None`` loses nothing but the duplicate traceback.
        """
        if not source or self.source:
            return self
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        ConfigError.__init__(
            err, self.path, self.value, self.allowed, source=source, hint=self.hint
        )
        err.__cause__ = self.__cause__
        return err


_NUMBER_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def yaml_number_hint(value: Any, allowed: str = "a number") -> str:
    """PyYAML (YAML 1.1) reads ``1e-3`` and ``1e10`` (no dot, or no exponent sign) as strings:
    say so when a number was expected and a string that looks like one was found."""
    if (
        not isinstance(value, str)
        or not _NUMBER_TEXT.fullmatch(value.strip())
        or "YAML reads" in allowed
    ):
        return ""
    if "number" in allowed:
        return (
            f" (YAML reads {value} as a string: write a number with a dot and a signed "
            "exponent, e.g. 1.0e-3 or 1.0e+3)"
        )
    if "integer" in allowed:
        number = float(value)
        example = f", e.g. {int(number)}" if number.is_integer() else ""
        return f" (YAML reads {value} as a string: write the integer in digits{example})"
    return ""


def show_value(value: Any, limit: int = 200) -> str:
    """How a value appears in an error message: its repr, shortened past ``limit`` characters."""
    text = "<missing>" if value is _MISSING else repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...)"


def check_keys(path: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raise ConfigError for the first key of ``given`` not in ``allowed`` (with a close match).

    ``path`` is the dotted location of ``given`` (empty for the top level of a document).
    """
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            hit = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {hit[0]!r}?)" if hit else ""
            raise ConfigError(
                f"{path}.{key}" if path else str(key),
                given[key],
                f"a known key{hint}; allowed keys: {', '.join(sorted(allowed))}",
            )


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last
    one silently: a second ``train:`` section would replace the first without a word)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in (<<: *anchor) may be overridden, as YAML says
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark)
        except TypeError:  # an unhashable key: the base constructor says so
            break
        if first is not key_node.start_mark:
            at = (
                f"column {first.column + 1}"
                if first.line == key_node.start_mark.line
                else f"line {first.line + 1}"
            )
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} appears twice in one mapping (first at {at})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _missing_file(p: Path) -> str:
    """Why ``p`` is not a readable file, with the closest YAML file next to it when there is one."""
    if p.is_dir():
        return "an existing YAML file (it is a directory)"
    folder = p.parent if p.parent.is_dir() else None
    names = sorted(q.name for q in folder.glob("*.y*ml")) if folder else []
    close = difflib.get_close_matches(p.name, names, n=1)
    hint = f"; did you mean {str(p.parent / close[0])!r}?" if close else ""
    return f"an existing YAML file (no such file{hint})"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, a syntax error or a key given twice raises
    ConfigError with the location."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("", str(p), _missing_file(p), source=str(p))
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "", str(p), f"a UTF-8 text file (byte {exc.start} is not UTF-8)", source=str(p)
        ) from None
    except OSError as exc:
        raise ConfigError(
            "", str(p), f"a readable file ({exc.strerror or exc})", source=str(p)
        ) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("", str(p), f"valid YAML ({where}{problem})", source=str(p)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("", data, "a mapping at the top level", source=str(p))
    return data


def get_dotted(cfg: Mapping[str, Any], key: str, default: Any = _MISSING) -> Any:
    """``get_dotted(cfg, "train.optimizer.lr")``; raises KeyError when absent and no default."""
    node: Any = cfg
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            if default is _MISSING:
                raise KeyError(key)
            return default
    return node


def has_dotted(cfg: Mapping[str, Any], key: str) -> bool:
    return get_dotted(cfg, key, _MISSING) is not _MISSING


def set_dotted(cfg: dict[str, Any], key: str, value: Any) -> None:
    """Set ``cfg[a][b][c] = value`` for ``key="a.b.c"``, creating mappings on the way.

    A string spec on the way is promoted to a mapping (``optimizer: sgd`` then
    ``optimizer.lr=0.1`` gives ``{name: sgd, lr: 0.1}``), matching the component-spec convention.
    """
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(key, value, "a dotted key without empty parts, e.g. train.optimizer.lr")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str):
            child = node[part] = {"name": child}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(where, child, f"a mapping, to set {key!r} inside it")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``"train.lr=0.1"`` into ``("train.lr", 0.1)``; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError("--set", text, "key=value, e.g. train.batch_size=64")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError("--set", text, "a non-empty key before '='")
    try:
        value = yaml.load(raw, Loader=_StrictLoader) if raw.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            key, raw, f"a YAML value ({where}{problem})", source="command line (--set)"
        ) from None
    return key, value


def apply_overrides(
    cfg: Mapping[str, Any], overrides: Iterable[str] | Mapping[str, Any] | None
) -> dict[str, Any]:
    """A deep copy of ``cfg`` with ``key=value`` strings (or a dotted-key mapping) applied."""
    out = copy.deepcopy(dict(cfg))
    if not overrides:
        return out
    pairs = overrides.items() if isinstance(overrides, Mapping) else map(parse_override, overrides)
    for key, value in pairs:
        set_dotted(out, key, copy.deepcopy(value))
    return out


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, the rest replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys → leaf values. Lists become JSON strings so that they are single params.

    ``{"train": {"optimizer": {"name": "sgd", "lr": 0.1}}}`` →
    ``{"train.optimizer.name": "sgd", "train.optimizer.lr": 0.1}``.
    """
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted))
        elif isinstance(value, (list, tuple)):
            out[dotted] = json.dumps(list(value), default=str)
        else:
            out[dotted] = value
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten` for mapping structure (JSON list strings stay strings)."""
    out: dict[str, Any] = {}
    for key in sorted(flat, key=lambda k: k.count(".")):
        set_dotted(out, key, flat[key])
    return out
