"""Study files (``studies/<name>.yaml``): schema, validation, ``--set`` overrides, objectives.

A study file is a run config (``seed``, ``data``, ``model``, ``train``, validated by
:func:`harness.runconfig.resolve_run_config`) plus what to search and how to judge a run::

    name: digits_lr_batch          # required, [a-z0-9_-]+
    description: "..."
    seed: 0                        # sampler seed (unless search.sampler.seed) and root of trial seeds
    data: {name: digits}
    model: {name: mlp, depth: 2, width: 100}
    train: {optimizer: {name: sgd, lr: 0.1}, batch_size: 32, epochs: 20}
    objective:                     # one mapping, or a list of them (multi-objective)
      - {metric: val/accuracy, direction: maximize, reduce: best}
    search:
      sampler: {name: qmc, seed: 0}   # grid | random | qmc | tpe | cmaes | nsga2 | gp (default qmc)
      pruner: {name: median, metric: val/accuracy, n_warmup_steps: 3}  # default none
      n_trials: 20                 # and/or timeout (seconds); grid: defaults to the grid size
      timeout: 600
      params: {train.optimizer.lr: {type: float, low: 1.0e-3, high: 1.0, log: true}}
      derived: {train.optimizer.lr: "0.1 * sqrt(train.batch_size / 32)"}
      fixed_roles: {train.epochs: fixed}
    replicates: 1                  # seeds per configuration (median and its interval over seeds)

See :mod:`harness.study.space` for ``params`` and ``derived``, :mod:`harness.study.samplers` for
``sampler`` and ``pruner``. An objective's ``reduce`` turns a per-epoch series into one number:
``best`` (in its direction; the default, except ``final`` for ``time/`` metrics), ``final``,
``min``, ``max``, ``mean`` or ``sum`` (``time/epoch_train_s`` summed = training time).
Every error is a :class:`~harness.config.ConfigError` naming the file, the YAML path, the value and
what is allowed.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

from harness.config import (
    ConfigError,
    apply_overrides,
    check_keys,
    load_yaml,
    parse_override,
    set_dotted,
)
from harness.runconfig import RUN_SECTIONS, direction_of, resolve_run_config
from harness.seeding import stable_hash
from harness.study.samplers import (
    make_pruner,
    make_sampler,
    normalize_pruner_spec,
    normalize_sampler_spec,
)
from harness.study.space import SearchSpace, has_key

__all__ = [
    "DIRECTIONS",
    "REDUCTIONS",
    "ROLES",
    "STUDY_KEYS",
    "Objective",
    "StudySpec",
    "apply_study_overrides",
    "load_study",
    "objective_value",
    "parse_study",
    "study_paths",
]

STUDY_KEYS = ("name", "description", *RUN_SECTIONS, "objective", "search", "replicates")
SEARCH_KEYS = ("sampler", "pruner", "n_trials", "timeout", "params", "derived", "fixed_roles")
OBJECTIVE_KEYS = ("metric", "direction", "reduce")
DIRECTIONS = ("maximize", "minimize")
Direction = Literal["maximize", "minimize"]
REDUCTIONS = ("best", "final", "min", "max", "mean", "sum")
#: Deep Learning Tuning Playbook roles
ROLES = ("scientific", "nuisance", "fixed")
DEFAULT_OBJECTIVE = {"metric": "val/loss", "direction": "minimize", "reduce": "best"}
_NAME = re.compile(r"^[a-z0-9_-]+$")
# blocks whose keys are themselves dotted config keys: `--set` must not split them
_KEYED_BLOCKS = ("search.params", "search.derived", "search.fixed_roles")
_PARAM_FIELDS = ("type", "low", "high", "log", "step", "choices", "role", "when")


def _int(path: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(path, value, f"an integer >= {low}")
    return value


# -- objectives -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """What a trial returns to Optuna: ``reduce`` applied to the per-epoch series of ``metric``."""

    metric: str
    direction: str
    reduce: str = "best"

    @classmethod
    def from_yaml(cls, raw: Any, path: str) -> Objective:
        if isinstance(raw, str):
            raw = {"metric": raw}
        if not isinstance(raw, Mapping):
            raise ConfigError(path, raw, "a mapping {metric: val/accuracy, direction: maximize}")
        check_keys(path, raw, OBJECTIVE_KEYS)
        metric = raw.get("metric")
        if not isinstance(metric, str) or not re.fullmatch(
            r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+", metric
        ):
            raise ConfigError(
                f"{path}.metric", metric, "a metric name split/metric, e.g. val/accuracy"
            )
        inferred = "minimize" if direction_of(metric) == "min" else "maximize"
        direction = raw.get("direction", inferred)
        if direction not in DIRECTIONS:
            raise ConfigError(f"{path}.direction", direction, f"one of {', '.join(DIRECTIONS)}")
        reduce = raw.get("reduce", "final" if metric.startswith("time/") else "best")
        if reduce not in REDUCTIONS:
            raise ConfigError(f"{path}.reduce", reduce, f"one of {', '.join(REDUCTIONS)}")
        return cls(metric, direction, reduce)

    def to_yaml(self) -> dict[str, str]:
        return {"metric": self.metric, "direction": self.direction, "reduce": self.reduce}

    def __getitem__(self, key: str) -> str:
        """Mapping-style access (``objective["metric"]``), as in the YAML."""
        if key not in OBJECTIVE_KEYS:
            raise KeyError(key)
        return str(getattr(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in OBJECTIVE_KEYS else default


def objective_value(
    history_records: Sequence[Mapping[str, float]],
    objective: Objective | Mapping[str, Any],
    *,
    summary: Mapping[str, float] | None = None,
) -> float:
    """Apply an objective's ``reduce`` to the per-epoch series of its metric.

    Parameters
    ----------
    history_records : list of dict
        One flat metric dict per epoch (``History.records``); epochs without the metric are
        skipped.
    objective : Objective or mapping
        ``{metric, direction, reduce}``.
    summary : mapping, optional
        Run-level numbers (``History.summary()``), used when no epoch recorded the metric
        (``time/train_s``).

    Returns
    -------
    float
        ``best``/``min``/``max`` ignore non-finite epochs (NaN when none is finite); ``final``,
        ``mean`` and ``sum`` keep them, so a diverged run does not look good.
    """
    obj = (
        objective
        if isinstance(objective, Objective)
        else Objective.from_yaml(objective, "objective")
    )
    series = [float(r[obj.metric]) for r in history_records if r.get(obj.metric) is not None]
    if not series:
        if summary is not None and obj.metric in summary:
            return float(summary[obj.metric])
        seen = sorted({k for r in history_records for k in r} | set(summary or ()))
        raise ValueError(
            f"objective metric {obj.metric!r} was not recorded; recorded metrics: {', '.join(seen)}"
        )
    finite = [v for v in series if math.isfinite(v)]
    reduce = obj.reduce
    if reduce == "best":
        reduce = "max" if obj.direction == "maximize" else "min"
    if reduce == "final":
        return series[-1]
    if reduce == "mean":
        return math.fsum(series) / len(series)
    if reduce == "sum":
        return math.fsum(series)
    if not finite:
        return math.nan
    return max(finite) if reduce == "max" else min(finite)


# -- the spec ---------------------------------------------------------------------------------


@dataclass
class StudySpec:
    """A validated study file. ``raw`` is the normalized study (defaults filled, YAML types)."""

    name: str
    description: str
    seed: int
    base_config: dict[str, Any]
    objectives: list[Objective]
    search: SearchSpace
    sampler_spec: dict[str, Any]
    pruner_spec: dict[str, Any]
    n_trials: int | None
    timeout: float | None
    replicates: int
    source_path: Path | None
    raw: dict[str, Any]
    fixed_roles: dict[str, str] = field(default_factory=dict)

    @property
    def directions(self) -> list[Direction]:
        """``"maximize"`` / ``"minimize"`` per objective (Optuna's ``directions=``)."""
        return [cast(Direction, o.direction) for o in self.objectives]

    @property
    def is_multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def pruner_metric(self) -> str | None:
        """The per-epoch metric to ``trial.report`` (None when the pruner is ``none``)."""
        return None if self.pruner_spec["name"] == "none" else self.pruner_spec["metric"]

    @property
    def resolved_base_config(self) -> dict[str, Any]:
        """The base run config with every default filled in."""
        return resolve_run_config(self.base_config)

    def roles(self) -> dict[str, str]:
        """Dotted key → ``scientific`` / ``nuisance`` / ``fixed`` (searched, then declared)."""
        return {**self.search.roles(), **self.fixed_roles}

    def grid_size(self) -> int | None:
        return self.search.grid_size()

    def make_sampler(self) -> BaseSampler:
        """A fresh, seeded sampler (one per study object; never shared between studies)."""
        return make_sampler(self.sampler_spec, space=self.search)

    def make_pruner(self) -> BasePruner:
        return make_pruner(self.pruner_spec)

    def to_yaml(self) -> str:
        """The normalized study as YAML (run sections with defaults): the parent-run artifact."""
        return yaml.safe_dump(self.raw, sort_keys=False, allow_unicode=True)

    def fingerprint(self) -> str:
        """A hash of what defines the trials (not the budget or description), to detect a study
        whose file changed between a run and its resume."""
        core = {k: v for k, v in self.raw.items() if k != "description"}
        core["search"] = {
            k: v for k, v in core["search"].items() if k not in ("n_trials", "timeout")
        }
        return stable_hash(core)


def _epochs(resolved: Mapping[str, Any], space: SearchSpace) -> int:
    """The largest number of epochs a trial can run (Hyperband's ``max_resource``)."""
    if "train.epochs" in space:
        p = space["train.epochs"]
        values = p.choices if p.type == "categorical" else p.bounds
        return int(max(v for v in values if isinstance(v, (int, float))))
    return int(resolved["train"]["epochs"])


def study_paths(directory: str | Path = "studies") -> list[Path]:
    """The study files of a directory (``*.yaml``, not the ``claims/`` subdirectory), sorted."""
    return sorted(p for p in Path(directory).glob("*.yaml") if p.is_file())


def load_study(path: str | Path, overrides: Iterable[str] | None = None) -> StudySpec:
    """Read, override (``--set key=value``) and validate a study file."""
    raw = load_yaml(path)
    return parse_study(raw, source=str(path), overrides=overrides, source_path=Path(path))


def apply_study_overrides(
    raw: Mapping[str, Any], overrides: Iterable[str] | None
) -> dict[str, Any]:
    """Apply ``key=value`` overrides to a raw study dict.

    Keys under ``search.params``, ``search.derived`` and ``search.fixed_roles`` are dotted config
    keys themselves, so ``search.params.train.batch_size.low=16`` sets the field ``low`` of the
    parameter ``train.batch_size``; a whole entry can be replaced (``...batch_size={type: int,
    low: 8, high: 64}``) or removed (``search.params.model.depth=null``).
    """
    out = copy.deepcopy(dict(raw))
    for text in overrides or ():
        key, value = parse_override(text)
        block = next((b for b in _KEYED_BLOCKS if key.startswith(b + ".")), None)
        if block is None:
            out = apply_overrides(out, {key: value})
        else:
            _set_keyed(out, block, key[len(block) + 1 :], value)
    return out


def _set_keyed(raw: dict[str, Any], block: str, rest: str, value: Any) -> None:
    search = raw.setdefault("search", {})
    if not isinstance(search, dict):
        raise ConfigError("search", search, "a mapping, to apply --set " + block)
    name = block.split(".", 1)[1]
    entries = search.get(name)
    if entries is None:
        entries = search[name] = {}
    if not isinstance(entries, dict):
        raise ConfigError(block, entries, f"a mapping, to apply --set {block}.{rest}")
    if block == "search.params":
        for key in sorted(entries, key=len, reverse=True):
            if not rest.startswith(key + "."):
                continue
            field_path = rest[len(key) + 1 :]
            if field_path.split(".")[0] not in _PARAM_FIELDS:
                continue
            spec = entries[key]
            if not isinstance(spec, dict):
                raise ConfigError(f"{block}.{key}", spec, "a mapping, to set one of its fields")
            if field_path.startswith("when."):
                spec.setdefault("when", {})[field_path[5:]] = value
            else:
                set_dotted(spec, field_path, value)
            return
    if value is None:
        entries.pop(rest, None)
    else:
        entries[rest] = value


def parse_study(
    raw: Mapping[str, Any],
    *,
    source: str | None = None,
    overrides: Iterable[str] | None = None,
    source_path: Path | None = None,
) -> StudySpec:
    """Validate a study dict (after applying ``overrides``); errors carry ``source``."""
    try:
        return _parse(apply_study_overrides(raw, overrides), source, source_path)
    except ConfigError as exc:
        if source and not exc.source:
            raise ConfigError(exc.path, exc.value, exc.allowed, source=source) from None
        raise


def _parse(raw: dict[str, Any], source: str | None, source_path: Path | None) -> StudySpec:
    check_keys("", raw, STUDY_KEYS)
    name = raw.get("name")
    if name is None:
        raise ConfigError.missing("name", "a study name of [a-z0-9_-]+ (it names the experiment)")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("name", name, "a study name of lowercase letters, digits, _ and -")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError("description", description, "a string")
    seed = _int("seed", raw.get("seed", 0), 0)
    replicates = _int("replicates", raw.get("replicates", 1), 1)

    base = {k: copy.deepcopy(raw[k]) for k in RUN_SECTIONS if k in raw}
    base["seed"] = seed
    resolved = resolve_run_config(base)

    obj_raw = raw.get("objective", [DEFAULT_OBJECTIVE])
    if isinstance(obj_raw, (Mapping, str)):
        obj_raw = [obj_raw]
    if not isinstance(obj_raw, list) or not obj_raw:
        raise ConfigError("objective", obj_raw, "an objective mapping or a non-empty list of them")
    objectives = [Objective.from_yaml(o, f"objective.{i}") for i, o in enumerate(obj_raw)]
    metrics = [o.metric for o in objectives]
    if len(set(metrics)) != len(metrics):
        raise ConfigError("objective", obj_raw, "objectives on different metrics")

    search_raw = raw.get("search")
    if not isinstance(search_raw, Mapping):
        raise ConfigError("search", search_raw, "a mapping with params (and sampler, n_trials...)")
    check_keys("search", search_raw, SEARCH_KEYS)
    space = SearchSpace.from_yaml(search_raw.get("params"), search_raw.get("derived"))
    space.check(base)

    fixed_roles = _fixed_roles(search_raw.get("fixed_roles"), space, resolved)
    objective_dicts = [o.to_yaml() for o in objectives]
    sampler_spec = normalize_sampler_spec(
        search_raw.get("sampler"), space=space, default_seed=seed, n_objectives=len(objectives)
    )
    pruner_spec = normalize_pruner_spec(
        search_raw.get("pruner"), objectives=objective_dicts, epochs=_epochs(resolved, space)
    )
    n_trials, timeout = _budget(search_raw, space, sampler_spec["name"])
    if sampler_spec["name"] == "grid" and any(p.when for p in space):
        # Optuna's grid enumerates a conditional parameter even where it is inactive
        conditional = [p.key for p in space if p.when]
        warnings.warn(
            f"{source or 'study'}: the grid sampler enumerates conditional parameters "
            f"{conditional} even where their condition fails, so those configurations repeat",
            UserWarning,
            stacklevel=3,
        )

    normalized: dict[str, Any] = {
        "name": name,
        "description": description,
        "seed": seed,
        **{k: resolved[k] for k in RUN_SECTIONS if k != "seed"},
        "objective": [o.to_yaml() for o in objectives],
        "search": {
            "sampler": sampler_spec,
            "pruner": pruner_spec,
            "n_trials": n_trials,
            "timeout": timeout,
            **space.to_yaml(),
            **({"fixed_roles": fixed_roles} if fixed_roles else {}),
        },
        "replicates": replicates,
    }
    return StudySpec(
        name=name,
        description=description,
        seed=seed,
        base_config=base,
        objectives=objectives,
        search=space,
        sampler_spec=sampler_spec,
        pruner_spec=pruner_spec,
        n_trials=n_trials,
        timeout=timeout,
        replicates=replicates,
        source_path=source_path,
        raw=copy.deepcopy(normalized),
        fixed_roles=fixed_roles,
    )


def _fixed_roles(raw: Any, space: SearchSpace, resolved: Mapping[str, Any]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("search.fixed_roles", raw, "a mapping {dotted.key: fixed}")
    out: dict[str, str] = {}
    for key, role in raw.items():
        path = f"search.fixed_roles.{key}"
        if key in space:
            raise ConfigError(
                path, role, f"a key that is not searched (set its role in search.params.{key}.role)"
            )
        if not isinstance(key, str) or not has_key(resolved, key):
            raise ConfigError(path, role, "a key of the run config (with its defaults)")
        if role not in ROLES:
            raise ConfigError(path, role, f"one of {', '.join(ROLES)}")
        out[key] = role
    return out


def _budget(
    search: Mapping[str, Any], space: SearchSpace, sampler: str
) -> tuple[int | None, float | None]:
    n_trials = search.get("n_trials")
    if n_trials is not None:
        _int("search.n_trials", n_trials, 1)
    timeout = search.get("timeout")
    if timeout is not None:
        ok = isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0
        if not ok or not math.isfinite(timeout):
            raise ConfigError("search.timeout", timeout, "a number of seconds > 0, or null")
        timeout = float(timeout)
    if sampler == "grid":
        size = space.grid_size()
        assert size is not None  # normalize_sampler_spec built the grid
        if n_trials is None:
            n_trials = size
        elif n_trials > size:
            raise ConfigError(
                "search.n_trials",
                n_trials,
                f"at most the grid size ({size}); use replicates to repeat configurations",
            )
    if n_trials is None and timeout is None:
        raise ConfigError.missing("search.n_trials", "n_trials and/or timeout (seconds)")
    return n_trials, timeout
