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
import math
from collections.abc import Mapping
from typing import Any

from harness.config import ConfigError, check_keys, deep_merge
from models.registry import Registry, SpecError, UnknownNameError, parse_spec

__all__ = [
    "CONV_MODELS",
    "RUN_SECTIONS",
    "TRAIN_DEFAULTS",
    "direction_of",
    "resolve_run_config",
]

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
    # per-layer activation / gradient statistics (models telemetry); costs time, so off by default
    "telemetry": False,
    # evaluate the train split in eval mode each epoch (book style); false = running batch mean only
    "eval_train": True,
    "eval_batch_size": 2048,
    # the first steps of a run are not timed for throughput (caches, allocator warm-up)
    "warmup_steps": 20,
    "dtype": "float32",
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


def _check_spec(registry: Registry[Any], path: str, spec: Any) -> None:
    """A component spec whose name is registered (arguments are checked when it is built)."""
    try:
        name, _ = parse_spec(spec, kind=registry.kind)
        registry.canonical(name)
    except UnknownNameError as exc:
        raise ConfigError(path, spec, f"a registered {registry.kind} ({exc})") from None
    except SpecError as exc:
        raise ConfigError(path, spec, str(exc)) from None


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
    for key in ("stop_at_target", "telemetry", "eval_train"):
        if not isinstance(train[key], bool):
            raise ConfigError(f"train.{key}", train[key], "true or false")
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
    from models import NETWORKS
    from models.registry import _accepted_kwargs

    if isinstance(model, str):
        model = {"name": model}
    if not isinstance(model, Mapping) or "name" not in model:
        raise ConfigError("model", model, "a mapping with a 'name' (a registered network builder)")
    _check_spec(NETWORKS, "model.name", model["name"])
    builder = NETWORKS.get(model["name"])
    accepted = _accepted_kwargs(builder)
    if accepted is not None:
        accepted -= {"input_shape", "n_outputs"}
        check_keys("model", {k: v for k, v in model.items() if k != "name"}, accepted)
    return dict(model)


def _validate_data(data: Any) -> dict[str, Any]:
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, Mapping) or "name" not in data:
        raise ConfigError("data", data, "a mapping with a 'name' (a registered dataset)")
    from harness.data import DATASETS

    _check_spec(DATASETS, "data.name", data["name"])
    return dict(data)


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
        # a mapping given for optimizer replaces the default one instead of merging into it
        if "optimizer" in train:
            out["train"]["optimizer"] = copy.deepcopy(train["optimizer"])
        _validate_train(out["train"])
        if out["model"]["name"] in CONV_MODELS:
            out["data"].setdefault("layout", "image")
        return out
    except ConfigError as exc:
        if source and not exc.source:
            raise ConfigError(exc.path, exc.value, exc.allowed, source=source) from None
        raise
