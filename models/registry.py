"""Name registries: how a string from a study file becomes a component.

One :class:`Registry` per kind of component (activation, loss, initializer, layer, optimizer,
schedule, network, regularizer). A component is named by a stable snake_case string, and a
*spec* is either that string or a mapping with a ``name`` key plus keyword arguments::

    "relu"
    {"name": "leaky_relu", "alpha": 0.1}

The same spec shape is used in YAML, in Optuna categorical choices and in MLflow params.
Unknown names raise :class:`UnknownNameError`, which lists the valid names.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "Spec", "SpecError", "UnknownNameError", "parse_spec"]

T = TypeVar("T")

#: A component spec: a registered name, or a mapping ``{"name": ..., **kwargs}``.
Spec = str | Mapping[str, Any]


class SpecError(ValueError):
    """A component spec is malformed or its arguments are not accepted."""


class UnknownNameError(SpecError, KeyError):
    """A name is not registered. The message lists the valid names (and a close match).

    ``name`` and ``kind`` say what was asked for, so a caller can point at the config field that
    holds the name.
    """

    name: str = ""
    kind: str = ""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


def parse_spec(spec: Spec, *, kind: str = "component") -> tuple[str, dict[str, Any]]:
    """Split a spec into ``(name, kwargs)``.

    Parameters
    ----------
    spec : str or mapping
        ``"relu"`` or ``{"name": "leaky_relu", "alpha": 0.1}``.
    kind : str
        What the spec names, used in error messages ("activation", "loss", ...).
    """
    if isinstance(spec, str):
        return spec, {}
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise SpecError(
                f"{kind} spec {dict(spec)!r} has no 'name' key; "
                f"write a name such as {{name: ..., <arguments>}} or just the name as a string"
            )
        kwargs = {str(k): v for k, v in spec.items() if k != "name"}
        name = spec["name"]
        if not isinstance(name, str):
            raise SpecError(f"{kind} spec name must be a string, got {name!r}")
        return name, kwargs
    raise SpecError(
        f"{kind} spec must be a name (string) or a mapping with a 'name' key, "
        f"got {type(spec).__name__}: {spec!r}"
    )


class Registry(Generic[T]):
    """A small name → component table for one kind of component.

    Parameters
    ----------
    kind : str
        Human name of the kind, used in errors: ``Registry("activation")``.

    Examples
    --------
    >>> ACTIVATIONS: Registry[type] = Registry("activation")
    >>> @ACTIVATIONS.register("relu")
    ... class ReLU: ...
    >>> ACTIVATIONS.get("relu") is ReLU
    True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """Decorator registering a class or factory under ``name`` (and ``aliases``).

        The registered object gets a ``registry_name`` attribute (when it accepts attributes), so
        a component can report the name it was built from.
        """
        if not name or name != name.lower() or " " in name:
            raise ValueError(f"{self.kind} names are lower snake_case, got {name!r}")

        def decorator(obj: T) -> T:
            for key in (name, *aliases):
                if key in self._items or key in self._aliases:
                    raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[name] = obj
            for alias in aliases:
                self._aliases[alias] = name
            try:
                # only set the canonical name once: a class registered in two registries
                # (e.g. an activation that is also a layer) keeps its first name.
                if "registry_name" not in getattr(obj, "__dict__", {}):
                    obj.registry_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return decorator

    # -- lookup -------------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The registered name for ``name`` (resolving aliases), or raise UnknownNameError."""
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        valid = self.names()
        close = difflib.get_close_matches(name, valid + list(self._aliases), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        error = UnknownNameError(
            f"unknown {self.kind} {name!r}{hint}; valid {self.kind} names: {', '.join(valid)}"
        )
        error.name, error.kind = name, self.kind
        raise error

    def get(self, name: str) -> T:
        """The component registered under ``name`` (or one of its aliases)."""
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        """Registered names, sorted (aliases excluded)."""
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"

    # -- construction -------------------------------------------------------------------------
    def build(self, spec: Spec, **defaults: Any) -> Any:
        """Instantiate a spec: ``build({"name": "adam", "lr": 1e-3})``.

        ``defaults`` are keyword arguments the caller supplies unless the spec overrides them.
        A rejected argument raises :class:`SpecError` naming the component, the argument and the
        accepted ones.
        """
        name, kwargs = parse_spec(spec, kind=self.kind)
        factory = self.get(name)
        if not callable(factory):
            raise SpecError(f"{self.kind} {name!r} is not constructible")
        merged = {**defaults, **kwargs}
        accepted = _accepted_kwargs(factory)
        if accepted is not None:
            unknown = sorted(set(kwargs) - accepted)
            if unknown:
                raise SpecError(
                    f"{self.kind} {name!r} got unknown argument(s) {unknown}; "
                    f"accepted: {sorted(accepted) or 'none'}"
                )
            # caller defaults the component does not take are dropped, not errors
            merged = {k: v for k, v in merged.items() if k in accepted}
        try:
            return factory(**merged)
        except TypeError as exc:
            raise SpecError(f"{self.kind} {name!r}: {exc}") from exc


def _accepted_kwargs(factory: Callable[..., Any]) -> set[str] | None:
    """Keyword names a factory accepts, or None when it takes ``**kwargs``."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    names: set[str] = set()
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.add(p.name)
    names.discard("self")
    return names
