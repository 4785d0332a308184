"""The configuration of one training run: defaults and validation.

A run config has four sections, each addressable by dotted keys::

    seed: 0                      # the run's seed (init, batch order, dropout masks)
    data:  {name: digits, ...}   # harness.data spec (split seed, preprocessing, subset, layout)
    model: {name: mlp, ...}      # a builder from models.NETWORKS and its keyword arguments
    train: {...}                 # loss, optimizer, schedule, batch size, epochs, guards (TRAIN_DEFAULTS)

:func:`resolve_run_config` fills the defaults and validates every field it knows, raising
:class:`~harness.config.ConfigError` with the dotted path, the value and what is allowed. The
resolved config is what gets logged (flattened) as MLflow params, so it is complete and explicit.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.config import ConfigError, check_keys, deep_merge
from models.registry import Registry, SpecError, UnknownNameError, parse_spec

__all__ = [
    "ARG_RANGES",
    "CONV_MODELS",
    "RUN_SECTIONS",
    "TELEMETRY_AT_INIT",
    "TRAIN_DEFAULTS",
    "data_error_to_config",
    "direction_of",
    "resolve_run_config",
]

#: ``train.telemetry`` value for the statistics at initialization only (no per-step telemetry)
TELEMETRY_AT_INIT = "init"

#: top-level keys of a run config (a study file adds its own keys around these)
RUN_SECTIONS = ("seed", "data", "model", "train")

TRAIN_DEFAULTS: dict[str, Any] = {
    "loss": "cross_entropy",
    "optimizer": {"name": "sgd", "lr": 0.1},
    "schedule": "constant",
    "batch_size": 32,
    "epochs": 20,
    # stop after this many parameter updates (the book counts iterations, not epochs); null = no cap
    "max_steps": None,
    # "shuffle": one permutation per epoch; "replacement": the book's np.random.choice sampling
    "sampling": "shuffle",
    # L2 (book convention ½·λ·‖W‖²) and L1 penalties on weights only
    "weight_decay": 0.0,
    "l1": 0.0,
    # {metric, value}: record epochs/time to reach it (val/accuracy >= 0.95, val/loss <= 0.1, ...)
    "target": None,
    "stop_at_target": False,
    # {monitor, patience, min_delta, mode}; null = off
    "early_stopping": None,
    # a finite loss above factor × the initial loss is "exploding" and stops the run as diverged
    "divergence_factor": 1.0e3,
    # per-layer activation / gradient statistics (models telemetry); costs time, so off by default.
    # true: at init (epoch 0) and averaged over every training step; "init": at init only (the
    # per-step statistics are 30-40 % of a digits MLP trial's CPU, benchmarks/telemetry_cost.py,
    # and a claim that reads epoch 0 only need not pay them)
    "telemetry": False,
    # evaluate the train split in eval mode each epoch (book style); false = running batch mean only
    "eval_train": True,
    "eval_batch_size": 2048,
    # the first steps of a run are not timed for throughput (caches, allocator warm-up)
    "warmup_steps": 20,
    "dtype": "float32",
    # extra records: trained-weight statistics, per-unit activity over the whole training set,
    # loss noise over the last steps (harness.run_records); null = off
    "record": None,
}

#: builders that need image-layout inputs ((C, H, W) or (C, L)) rather than flat vectors
CONV_MODELS = frozenset({"simple_conv_net", "deep_conv_net", "conv1d_net"})

_SAMPLING = ("shuffle", "replacement")
_DTYPES = ("float32", "float64")
_ES_KEYS = {"monitor", "patience", "min_delta", "mode"}


def direction_of(metric: str) -> str:
    """'min' for loss-, error- and time-like metric names, 'max' otherwise (accuracy, r2, rates).

    >>> direction_of("val/loss"), direction_of("time/train_s"), direction_of("throughput/samples_per_s")
    ('min', 'min', 'max')
    """
    lowered = metric.lower()
    leaf = lowered.rsplit("/", 1)[-1]
    if "per_s" in leaf or lowered.startswith("throughput"):
        return "max"
    if lowered.startswith("time/") or leaf.endswith("_s") or leaf in ("steps", "epochs"):
        return "min"
    if any(w in leaf for w in ("loss", "error", "mae", "mse", "epochs_to", "time_to")):
        return "min"
    return "max"


@dataclass(frozen=True)
class Range:
    """The values a numeric argument may take: ``[low, high]``, each end open or closed."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, x: float) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.high_open else x > self.high))

    def words(self, integer: bool = False) -> str:
        kind = "an integer" if integer else "a finite number"
        if self.low is not None and self.high is not None:
            lo, hi = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{kind} in {lo}{self.low:g}, {self.high:g}{hi}"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
        return kind


_UNIT = Range(0, 1, high_open=True)
_POSITIVE = Range(0, low_open=True)
_NON_NEGATIVE = Range(0)
_AT_LEAST_1 = Range(1)
#: The values the harness accepts for a component argument, by argument name (whatever the
#: component): what the zoo's components need for a meaningful run. Most components check
#: their arguments only when they are used (an optimizer's ``lr`` at the first update), which is
#: after a run was created; these ranges are checked while the config is resolved. An argument
#: not listed here is still type-checked from the component's signature (numbers must be finite).
ARG_RANGES: dict[str, Range] = {
    "lr": _NON_NEGATIVE,
    "momentum": _UNIT,
    "beta1": _UNIT,
    "beta2": _UNIT,
    "decay_rate": _UNIT,
    "eps": _POSITIVE,
    "weight_decay": _NON_NEGATIVE,
    "gamma": _POSITIVE,
    "min_factor": Range(0, 1),
    "step_size": _AT_LEAST_1,
    "total_steps": _AT_LEAST_1,
    "std": _POSITIVE,
    "limit": _POSITIVE,
    "weight_init_std": _POSITIVE,
    "alpha": _NON_NEGATIVE,
    "pieces": Range(2),
    "dropout": _UNIT,
    "rate": _UNIT,
    "depth": _NON_NEGATIVE,
    "width": _AT_LEAST_1,
    "hidden": _AT_LEAST_1,
    "hidden_size": _AT_LEAST_1,
    "filters": _AT_LEAST_1,
    "channels": _AT_LEAST_1,
    "kernel_size": _AT_LEAST_1,
    "stride": _AT_LEAST_1,
    "padding": _NON_NEGATIVE,
    "pool_size": _AT_LEAST_1,
    "pool_every": _AT_LEAST_1,
    "n_layers": _AT_LEAST_1,
}
#: arguments whose value is itself a component spec, by argument name → registry kind
_SPEC_ARGS = {
    "activation": "activation",
    "output_activation": "activation",
    "init": "initializer",
    "bias_init": "initializer",
    "schedule": "schedule",
    "loss": "loss",
}
#: arguments the harness supplies itself (never required from the YAML)
_SUPPLIED = {"input_shape", "n_outputs", "total_steps", "schedule"}


def _registry(kind: str) -> Registry[Any]:
    import models

    registries: dict[str, Registry[Any]] = {
        "activation": models.ACTIVATIONS,
        "initializer": models.INITIALIZERS,
        "schedule": models.SCHEDULES,
        "loss": models.LOSSES,
        "optimizer": models.OPTIMIZERS,
        "network": models.NETWORKS,
    }
    return registries[kind]


def _arg_types(param: inspect.Parameter) -> tuple[set[str], bool]:
    """(kinds, nullable) of an argument from its annotation (a string here) or its default."""
    ann = param.annotation
    default = param.default
    kinds: set[str] = set()
    if isinstance(ann, str) and ann:
        for part in (p.strip() for p in ann.split("|")):
            if part in ("float", "int", "bool", "str"):
                kinds.add(part)
            elif part.startswith(("Sequence[int]", "list[int]", "tuple[int")):
                kinds.add("ints")
            elif part.startswith(("Spec", "Schedule")):
                kinds.add("spec")
            elif part != "None":
                kinds.add("any")
        nullable = "None" in (p.strip() for p in ann.split("|")) or default is None
    else:
        nullable = default is None
        if isinstance(default, bool):
            kinds.add("bool")
        elif isinstance(default, int):
            kinds.add("int")
        elif isinstance(default, float):
            kinds.add("float")
        elif isinstance(default, str):
            kinds.add("str")
        else:
            kinds.add("any")
    if "float" in kinds:
        kinds.add("int")  # an integer is a fine float
    return kinds, nullable


def _check_argument(path: str, arg: str, value: Any, param: inspect.Parameter) -> None:
    """One component argument against its signature's type and :data:`ARG_RANGES`."""
    kinds, nullable = _arg_types(param)
    if value is None:
        if nullable or "any" in kinds:
            return
        raise ConfigError(path, value, _describe(arg, kinds) + " (not null)")
    rng = ARG_RANGES.get(arg)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(path, value, _describe(arg, kinds))
    if "spec" in kinds and arg in _SPEC_ARGS and isinstance(value, (str, Mapping)):
        _check_component(_registry(_SPEC_ARGS[arg]), path, value)
        return
    if "any" in kinds:
        return
    if "bool" in kinds and isinstance(value, bool):
        return
    if "str" in kinds and isinstance(value, str):
        return
    if is_number and ("float" in kinds or ("int" in kinds and isinstance(value, int))):
        if rng is not None and not rng.contains(value):
            raise ConfigError(path, value, _describe(arg, kinds))
        return
    if "ints" in kinds and isinstance(value, (list, tuple)):
        low = rng or _AT_LEAST_1
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int) or not low.contains(v):
                raise ConfigError(f"{path}.{i}", v, low.words(integer=True))
        return
    raise ConfigError(path, value, _describe(arg, kinds))


def _describe(arg: str, kinds: set[str]) -> str:
    rng = ARG_RANGES.get(arg, Range())
    words = []
    if "float" in kinds:
        words.append(rng.words())
    elif "int" in kinds:
        words.append(rng.words(integer=True))
    if "ints" in kinds:
        words.append(f"a list of integers >= {(rng.low if rng.low is not None else 1):g}")
    if "bool" in kinds:
        words.append("true or false")
    if "str" in kinds:
        words.append("a string")
    if "spec" in kinds:
        words.append(f"a {_SPEC_ARGS.get(arg, 'component')} spec")
    return " or ".join(words) or "a value of the right type"


def _check_component(registry: Registry[Any], path: str, spec: Any) -> tuple[str, dict[str, Any]]:
    """A component spec whose name is registered and whose arguments its factory accepts.

    Every given argument is checked against the factory's signature (unknown names, types,
    finite numbers, :data:`ARG_RANGES`); a required argument the harness does not supply must be
    given. Returns the canonical name and the arguments.
    """
    try:
        name, kwargs = parse_spec(spec, kind=registry.kind)
        canonical = registry.canonical(name)
    except UnknownNameError as exc:
        unknown = getattr(exc, "name", "") or spec
        raise ConfigError(path, unknown, f"a registered {registry.kind} ({exc})") from None
    except SpecError as exc:
        raise ConfigError(path, spec, str(exc)) from None
    factory = registry.get(canonical)
    try:
        params = dict(inspect.signature(factory).parameters)
    except (TypeError, ValueError):  # not introspectable: its own checks will have to do
        return canonical, kwargs
    params.pop("self", None)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return canonical, kwargs
    accepted = [k for k in params if k not in ("input_shape", "n_outputs")]
    if kwargs and not accepted:
        arg = next(iter(kwargs))
        raise ConfigError(
            f"{path}.{arg}", kwargs[arg], f"no argument ({registry.kind} {canonical!r} takes none)"
        )
    check_keys(path, kwargs, accepted)
    for arg, value in kwargs.items():
        _check_argument(f"{path}.{arg}", arg, value, params[arg])
    for arg, p in params.items():
        required = p.default is inspect.Parameter.empty and p.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        )
        if required and arg not in kwargs and arg not in _SUPPLIED:
            kinds, _ = _arg_types(p)
            raise ConfigError.missing(
                f"{path}.{arg}", f"{_describe(arg, kinds)} ({registry.kind} {canonical!r} needs it)"
            )
    return canonical, kwargs


def _check_spec(registry: Registry[Any], path: str, spec: Any) -> None:
    """A component spec whose name is registered and whose arguments are acceptable; for
    components that need no data (loss, optimizer, schedule) the component is also built, so
    that the checks of its constructor run now rather than when a run has started."""
    name, kwargs = _check_component(registry, path, spec)
    if registry.kind not in ("loss", "optimizer", "schedule"):
        return
    extra: dict[str, Any] = {}
    if registry.kind == "schedule":
        extra["total_steps"] = kwargs.get("total_steps", 1000)
    try:
        component = registry.build({"name": name, **kwargs, **extra})
        if registry.kind == "schedule":  # schedules check their arguments when asked a factor
            component.factor(0)
            component.factor(int(extra["total_steps"]))
    except (SpecError, ValueError, TypeError, ArithmeticError) as exc:
        raise ConfigError(
            path, spec, f"arguments {registry.kind} {name!r} accepts ({exc})"
        ) from None


def _int(path: str, value: Any, *, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(path, value, f"an integer >= {low}" + (" or null" if allow_none else ""))


def _number(path: str, value: Any, *, low: float = 0.0) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low:
        raise ConfigError(path, value, f"a finite number >= {low}")


def _validate_train(train: dict[str, Any]) -> None:
    from models import LOSSES, OPTIMIZERS, SCHEDULES

    check_keys("train", train, set(TRAIN_DEFAULTS))
    _check_spec(LOSSES, "train.loss", train["loss"])
    _check_spec(OPTIMIZERS, "train.optimizer", train["optimizer"])
    if train["schedule"] is not None:
        _check_spec(SCHEDULES, "train.schedule", train["schedule"])
    _int("train.batch_size", train["batch_size"], low=1)
    _int("train.epochs", train["epochs"], low=0)
    _int("train.max_steps", train["max_steps"], low=1, allow_none=True)
    _int("train.eval_batch_size", train["eval_batch_size"], low=1)
    _int("train.warmup_steps", train["warmup_steps"], low=0)
    if train["sampling"] not in _SAMPLING:
        raise ConfigError("train.sampling", train["sampling"], f"one of {list(_SAMPLING)}")
    if train["dtype"] not in _DTYPES:
        raise ConfigError("train.dtype", train["dtype"], f"one of {list(_DTYPES)}")
    for key in ("weight_decay", "l1"):
        _number(f"train.{key}", train[key])
    _number("train.divergence_factor", train["divergence_factor"], low=1.0)
    for key in ("stop_at_target", "eval_train"):
        if not isinstance(train[key], bool):
            raise ConfigError(f"train.{key}", train[key], "true or false")
    if not (isinstance(train["telemetry"], bool) or train["telemetry"] == TELEMETRY_AT_INIT):
        raise ConfigError(
            "train.telemetry", train["telemetry"], f"true, false or {TELEMETRY_AT_INIT!r}"
        )
    target = train["target"]
    if target is not None:
        if not isinstance(target, Mapping) or set(target) != {"metric", "value"}:
            raise ConfigError(
                "train.target",
                target,
                "null or a mapping {metric: <split/metric>, value: <number>}",
            )
        if not isinstance(target["metric"], str) or "/" not in target["metric"]:
            raise ConfigError("train.target.metric", target["metric"], "a name like val/accuracy")
        _number("train.target.value", target["value"], low=-math.inf)
    if train["record"] is not None:
        from harness.run_records import resolve_record

        train["record"] = resolve_record(train["record"])
    if train["stop_at_target"] and target is None:
        raise ConfigError("train.stop_at_target", True, "false when train.target is not set")
    es = train["early_stopping"]
    if es is not None:
        if not isinstance(es, Mapping):
            raise ConfigError("train.early_stopping", es, "null or a mapping {monitor, patience}")
        check_keys("train.early_stopping", es, _ES_KEYS)
        if not isinstance(es.get("monitor", "val/loss"), str):
            raise ConfigError("train.early_stopping.monitor", es.get("monitor"), "a metric name")
        _int("train.early_stopping.patience", es.get("patience", 5), low=1)
        _number("train.early_stopping.min_delta", es.get("min_delta", 0.0))
        if es.get("mode", "auto") not in ("auto", "min", "max"):
            raise ConfigError("train.early_stopping.mode", es.get("mode"), "auto, min or max")


def _validate_model(model: Any) -> dict[str, Any]:
    if isinstance(model, str):
        model = {"name": model}
    if not isinstance(model, Mapping) or "name" not in model:
        raise ConfigError("model", model, "a mapping with a 'name' (a registered network builder)")
    from models import NETWORKS

    model = dict(model)
    if isinstance(model["name"], str) and model["name"] in NETWORKS:
        # `--set model.init.std=0.1` on a model without `init` sets an argument of the
        # builder's default initializer (as for train.optimizer)
        try:
            params = inspect.signature(NETWORKS.get(model["name"])).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        for arg, given in model.items():
            default = params[arg].default if arg in params else None
            if arg in _SPEC_ARGS and isinstance(given, Mapping) and "name" not in given:
                if isinstance(default, str):
                    model[arg] = {"name": default, **given}
                elif isinstance(default, Mapping):
                    model[arg] = {**default, **given}
    _check_component(NETWORKS, "model", model)
    return model


_NON_FINITE_HINT = (
    "Fix or drop those samples; for a generated dataset, check its noise and scale arguments."
)


def data_error_to_config(exc: Exception, spec: Any) -> ConfigError:
    """A :class:`~harness.data.DataError` as a ConfigError at ``data.<key>`` (or ``data``)."""
    key = getattr(exc, "key", None)
    if key:
        value = getattr(exc, "value", None)
        return ConfigError(f"data.{key}", value, exc.allowed)  # type: ignore[attr-defined]
    detail = getattr(exc, "detail", "")
    if detail:  # NaN or inf in the arrays
        return ConfigError(
            "data", spec, f"finite features and targets ({detail})", hint=_NON_FINITE_HINT
        )
    text = str(exc)
    first, _, rest = text.partition("\n")
    return ConfigError("data", spec, f"data that loads ({first})", hint=rest or None)


def _validate_data(data: Any) -> dict[str, Any]:
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, Mapping) or "name" not in data:
        raise ConfigError("data", data, "a mapping with a 'name' (a registered dataset)")
    from harness.data import DATASETS, DataError, resolve_spec

    _check_spec(DATASETS, "data.name", data["name"])
    try:
        resolve_spec(dict(data))  # keys and values per dataset (nothing is loaded)
    except DataError as exc:
        raise data_error_to_config(exc, data) from None
    return dict(data)


def _check_loss_fits_task(cfg: Mapping[str, Any]) -> None:
    """A classification loss on a regression dataset cannot train (one output, real targets)."""
    from harness.data import DATASETS
    from models import LOSSES

    task = DATASETS.get(cfg["data"]["name"]).task
    name, _ = parse_spec(cfg["train"]["loss"], kind="loss")
    loss_task = getattr(LOSSES.get(name), "task", "classification")
    if task == "regression" and loss_task != "regression":
        fits = [n for n, cls in LOSSES.items() if getattr(cls, "task", "") == "regression"]
        raise ConfigError(
            "train.loss",
            cfg["train"]["loss"],
            f"a regression loss for dataset {cfg['data']['name']!r} (a regression task): "
            f"one of {', '.join(fits)}",
        )


def resolve_run_config(cfg: Mapping[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """Fill defaults and validate one run config; returns a new, complete dict.

    Keys outside :data:`RUN_SECTIONS` are kept untouched (a study file's ``name``, ``search``...)
    so that the same function validates the run part of a study. Errors carry ``source``.
    """
    try:
        out = copy.deepcopy(dict(cfg))
        seed = out.setdefault("seed", 0)
        _int("seed", seed, low=0)
        out["data"] = _validate_data(out.get("data", {"name": "digits"}))
        out["model"] = _validate_model(out.get("model", {"name": "mlp"}))
        train = out.get("train") or {}
        if not isinstance(train, Mapping):
            raise ConfigError("train", train, "a mapping of training settings")
        out["train"] = deep_merge(TRAIN_DEFAULTS, train)
        # a component spec given with a name replaces the default one instead of merging into
        # it (adam does not take sgd's arguments); one without a name (`--set
        # train.optimizer.lr=0.01`) sets arguments of the default component
        for key in ("optimizer", "loss", "schedule"):
            given = train.get(key)
            if isinstance(given, Mapping) and "name" in given:
                out["train"][key] = copy.deepcopy(dict(given))
            elif isinstance(given, Mapping):
                default = TRAIN_DEFAULTS[key]
                base = dict(default) if isinstance(default, Mapping) else {"name": default}
                out["train"][key] = {**copy.deepcopy(base), **copy.deepcopy(dict(given))}
        _validate_train(out["train"])
        if out["model"]["name"] in CONV_MODELS:
            out["data"].setdefault("layout", "image")
        _check_loss_fits_task(out)
        return out
    except ConfigError as exc:
        raise exc.located(source) from None
