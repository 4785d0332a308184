"""From a run config to a trained model and its history: ``run_config(config) -> RunResult``.

This is the pure function a study worker calls: it builds the data, the network and the optimizer
from a resolved config, trains, and returns everything the caller may want to log. It never
touches MLflow or Optuna. Every random number comes from the config's ``seed``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import ConfigError
from harness.runconfig import resolve_run_config
from harness.seeding import run_streams
from harness.train import Callback, History, Trainer, TrainSettings
from models.registry import SpecError, UnknownNameError, parse_spec

__all__ = ["Run", "RunResult", "build_run", "load_data", "run_config"]


@dataclass
class RunResult:
    """A finished run: its resolved config, history, trained network and data description."""

    config: dict[str, Any]
    history: History
    network: Any
    data_meta: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] | None = None

    @property
    def status(self) -> str:
        return self.history.status


@dataclass
class Run:
    """Everything built for one run, before training (lets callers drive :class:`Trainer`)."""

    config: dict[str, Any]
    splits: Any
    network: Any
    optimizer: Any
    trainer: Trainer


@functools.lru_cache(maxsize=8)
def _load_cached(spec_json: str, data_dir: str | None, dtype: str) -> Any:
    import json

    from harness.data import load_dataset

    return load_dataset(json.loads(spec_json), data_dir=data_dir, dtype=np.dtype(dtype))


def load_data(data_spec: Mapping[str, Any], *, dtype: str, data_dir: str | Path | None) -> Any:
    """Load (and cache per process) the splits for a data spec.

    Study workers run many trials on the same data: the cache makes the second trial free.
    """
    import json

    spec_json = json.dumps(dict(data_spec), sort_keys=True, default=str)
    return _load_cached(spec_json, None if data_dir is None else str(data_dir), dtype)


def _field_holding(spec: Mapping[str, Any], name: str) -> str | None:
    """The dotted key of ``spec`` whose value is ``name`` (or a component spec named ``name``)."""
    for key, value in spec.items():
        if value == name:
            return str(key)
        if isinstance(value, Mapping):
            if value.get("name") == name:
                return str(key)
            inner = _field_holding(value, name)
            if inner:
                return f"{key}.{inner}"
    return None


def _regularizers(train: Mapping[str, Any]) -> list[dict[str, Any]]:
    regs: list[dict[str, Any]] = []
    if train["weight_decay"]:
        regs.append({"name": "l2", "weight_decay": float(train["weight_decay"])})
    if train["l1"]:
        regs.append({"name": "l1", "weight_decay": float(train["l1"])})
    return regs


def _steps_per_epoch(n_train: int, train: Mapping[str, Any]) -> int:
    return math.ceil(n_train / int(train["batch_size"]))


def _schedule_spec(train: Mapping[str, Any], n_train: int) -> Any:
    """The schedule spec with ``total_steps`` filled from epochs × steps per epoch."""
    spec = train["schedule"]
    if spec is None:
        return None
    name, kwargs = parse_spec(spec, kind="schedule")
    if name == "constant":
        return {"name": name, **kwargs}
    total = int(train["epochs"]) * _steps_per_epoch(n_train, train)
    if train["max_steps"]:
        total = min(total, int(train["max_steps"]))
    kwargs.setdefault("total_steps", max(total, 1))
    return {"name": name, **kwargs}


def build_run(
    config: Mapping[str, Any],
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    data_dir: str | Path | None = None,
    resolved: bool = False,
) -> Run:
    """Resolve ``config``, load data, build the network and optimizer, and set up a Trainer."""
    from models import OPTIMIZERS, build_network

    cfg = dict(config) if resolved else resolve_run_config(config)
    train = cfg["train"]
    splits = load_data(cfg["data"], dtype=train["dtype"], data_dir=data_dir)
    streams = run_streams(cfg["seed"])
    model = dict(cfg["model"])
    name = model.pop("name")
    try:
        network = build_network(
            {"name": name, **model},
            input_shape=tuple(splits.feature_shape),
            n_outputs=int(splits.n_outputs),
            loss=train["loss"],
            regularizers=_regularizers(train),
            rng=streams.init,
            dtype=np.dtype(train["dtype"]),
            # "init": epoch 0's statistics come from the trainer (layer_statistics), none per step
            telemetry=train["telemetry"] is True,
        )
    except UnknownNameError as exc:
        key = _field_holding(cfg["model"], exc.name)
        path, value = (f"model.{key}", exc.name) if key else ("model", cfg["model"])
        raise ConfigError(path, value, f"a registered {exc.kind} ({exc})") from exc
    except (SpecError, ValueError, TypeError) as exc:
        raise ConfigError("model", cfg["model"], f"a buildable model ({exc})") from exc
    # dropout masks get their own stream so that changing the batch order does not change them
    network.set_rng(streams.dropout)
    try:
        optimizer = OPTIMIZERS.build(
            train["optimizer"], schedule=_schedule_spec(train, splits.train.n)
        )
    except (SpecError, ValueError, TypeError) as exc:
        raise ConfigError("train.optimizer", train["optimizer"], str(exc)) from exc
    trainer = Trainer(
        network,
        optimizer,
        splits,
        TrainSettings.from_config(train),
        order_rng=streams.order,
        callbacks=callbacks,
        progress=progress,
        label=f"{name} seed={cfg['seed']}",
    )
    return Run(config=cfg, splits=splits, network=network, optimizer=optimizer, trainer=trainer)


def run_config(
    config: Mapping[str, Any],
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
    data_dir: str | Path | None = None,
    keep_weights: bool = False,
) -> RunResult:
    """Train one run from its config and return the result (pure: no logging).

    ``keep_weights`` copies the trained parameters into the result (what a worker process sends
    back to the driver instead of the whole network object).
    """
    run = build_run(config, callbacks=callbacks, progress=progress, data_dir=data_dir)
    history = run.trainer.run()
    weights = None
    if keep_weights:
        weights = {k: np.array(v, copy=True) for k, v in run.network.params.items()}
    return RunResult(
        config=run.config,
        history=history,
        network=run.network,
        data_meta=dict(getattr(run.splits, "meta", {})),
        weights=weights,
    )
