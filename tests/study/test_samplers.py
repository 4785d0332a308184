"""Sampler and pruner registries: construction, seeding, determinism, grids under ask/tell."""

from __future__ import annotations

import copy
from contextlib import nullcontext
from typing import Any

import optuna
import pytest

from harness.config import ConfigError
from harness.study import (
    PRUNERS,
    REPRODUCIBLE_SAMPLERS,
    SAMPLERS,
    StudySpec,
    describe_pruners,
    describe_samplers,
    make_pruner,
    parse_study,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

RAW: dict[str, Any] = {
    "name": "sampler_test",
    "seed": 7,
    "data": {"name": "digits"},
    "model": {"name": "mlp", "depth": 1, "width": 8},
    "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 2},
    "objective": {"metric": "val/accuracy", "direction": "maximize"},
    "search": {
        "n_trials": 10,
        "params": {
            "train.optimizer.name": {"type": "categorical", "choices": ["sgd", "momentum"]},
            "train.optimizer.momentum": {
                "type": "float",
                "low": 0.5,
                "high": 0.9,
                "step": 0.1,
                "when": {"train.optimizer.name": ["momentum"]},
            },
            "train.optimizer.lr": {"type": "float", "low": 0.01, "high": 1.0, "step": 0.01},
            "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
            "model.init": {
                "type": "categorical",
                "choices": ["he_normal", {"name": "normal", "std": 0.1}],
            },
        },
    },
}


def spec_for(sampler: str | dict[str, Any], **search: Any) -> StudySpec:
    raw = copy.deepcopy(RAW)
    raw["search"]["sampler"] = sampler
    raw["search"].update(search)
    # a grid enumerates the conditional momentum even for sgd, and says so
    expect = pytest.warns(UserWarning, match="conditional") if sampler == "grid" else nullcontext()
    with expect:
        return parse_study(raw)


def ask_params(spec: StudySpec, n: int, *, tell_late: bool) -> list[dict[str, Any]]:
    """Ask ``n`` trials one after another, as the runner's driver does.

    ``tell_late`` finishes trials in a shuffled, delayed order (as parallel workers would), so a
    sampler that reads finished trials would diverge from the in-order run.
    """
    study = optuna.create_study(sampler=spec.make_sampler(), directions=spec.directions)
    asked: list[tuple[optuna.Trial, float]] = []
    out = []
    for i in range(n):
        trial = study.ask()
        config, _ = spec.search.suggest(trial, spec.base_config)
        out.append(dict(trial.params))
        value = float(config["train"]["optimizer"]["lr"])
        if tell_late:
            asked.append((trial, value))
            if i % 3 == 2:  # finish the middle one of every three, then the others later
                study.tell(*asked.pop(1))
        else:
            study.tell(trial, value)
    for trial, value in reversed(asked):
        study.tell(trial, value)
    return out


@pytest.mark.parametrize("name", sorted(REPRODUCIBLE_SAMPLERS))
def test_same_seed_same_trials_whatever_the_finishing_order(name: str) -> None:
    spec = spec_for(name)
    first = ask_params(spec, 10, tell_late=False)
    again = ask_params(spec_for(name), 10, tell_late=False)
    late = ask_params(spec_for(name), 10, tell_late=True)
    assert first == again == late
    assert len({tuple(sorted(p.items())) for p in first}) == 10  # not one point repeated


@pytest.mark.parametrize("name", ["random", "qmc"])
def test_other_seed_other_trials(name: str) -> None:
    a = ask_params(spec_for({"name": name, "seed": 1}), 5, tell_late=False)
    b = ask_params(spec_for({"name": name, "seed": 2}), 5, tell_late=False)
    assert a != b


def test_sampler_seed_defaults_to_study_seed() -> None:
    assert spec_for("random").sampler_spec["seed"] == 7
    explicit = spec_for({"name": "random", "seed": 7})
    assert ask_params(explicit, 4, tell_late=False) == ask_params(
        spec_for("random"), 4, tell_late=False
    )


def test_qmc_samples_the_conditional_parameter_too() -> None:
    # Optuna's own QMCSampler infers its space from trial 0, so a parameter absent there would
    # fall back to random sampling; ours knows the space up front.
    sampler = spec_for("qmc").make_sampler()
    space = sampler.infer_relative_search_space(optuna.create_study(), None)  # type: ignore[arg-type]
    assert "train.optimizer.momentum" in space


def test_grid_covers_every_point_once_under_ask_and_tell() -> None:
    raw_params = {
        "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
        "train.optimizer.lr": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
    }
    raw = copy.deepcopy(RAW)
    raw["search"] = {"sampler": "grid", "params": raw_params}
    spec = parse_study(raw)
    assert spec.n_trials == 9
    study = optuna.create_study(sampler=spec.make_sampler(), direction="maximize")
    points = []
    for _ in range(spec.n_trials):
        trial = study.ask()
        spec.search.suggest(trial, spec.base_config)
        points.append((trial.params["train.batch_size"], trial.params["train.optimizer.lr"]))
        study.tell(trial, 1.0)  # Optuna's GridSampler would raise here on the last point
    assert sorted(points) == sorted((b, lr) for b in (16, 32, 64) for lr in (0.1, 0.2, 0.3))


def test_grid_warns_about_conditional_parameters() -> None:
    with pytest.warns(UserWarning, match=r"train.optimizer.momentum.*repeat"):
        parse_study(
            {**copy.deepcopy(RAW), "search": {**RAW["search"], "sampler": "grid", "n_trials": None}}
        )


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_builds_and_suggests(name: str) -> None:
    if name == "gp":
        # torch is optional (the `bench` extra); without it the install hint is tested elsewhere
        pytest.importorskip("torch", reason="sampler 'gp' needs PyTorch, which is not installed")
        spec = spec_for({"name": "gp", "n_startup_trials": 2})
    else:
        spec = spec_for(name)
    sampler = spec.make_sampler()
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    if name == "gp":
        return  # building is the contract here; running GP fits is slow and needs torch
    params = ask_params(spec, 3, tell_late=False)
    assert all("train.optimizer.lr" in p for p in params)


def test_bad_sampler_argument_value_surfaces_at_load() -> None:
    with pytest.raises(ConfigError) as info:
        spec_for({"name": "qmc", "qmc_type": "lattice"})
    assert info.value.path == "search.sampler"


@pytest.mark.parametrize("name", PRUNERS.names())
def test_every_pruner_builds(name: str) -> None:
    pruner = {"name": name} if name == "none" else {"name": name, "metric": "val/accuracy"}
    spec = spec_for("random", pruner=pruner)
    assert isinstance(spec.make_pruner(), optuna.pruners.BasePruner)
    assert isinstance(make_pruner(spec.pruner_spec), optuna.pruners.BasePruner)  # as a worker does


def test_median_pruner_prunes_a_bad_trial() -> None:
    spec = spec_for("random", pruner={"name": "median", "n_startup_trials": 2})
    assert spec.pruner_metric == "val/accuracy"
    study = optuna.create_study(
        sampler=spec.make_sampler(), pruner=spec.make_pruner(), direction="maximize"
    )
    for _ in range(2):
        trial = study.ask()
        for epoch in range(3):
            trial.report(0.9, epoch)
        study.tell(trial, 0.9)
    bad = study.ask()
    bad.report(0.1, 0)
    assert bad.should_prune()


def test_pruner_arguments_are_checked() -> None:
    with pytest.raises(ConfigError) as info:
        spec_for("random", pruner={"name": "median", "n_warmup": 3})
    assert info.value.path == "search.pruner.n_warmup"
    assert "n_warmup_steps" in str(info.value)
    with pytest.raises(ConfigError, match="no arguments for pruner 'none'"):
        spec_for("random", pruner={"name": "none", "n_warmup_steps": 3})


def test_describe_lists_every_registered_name() -> None:
    rows = {r["name"]: r for r in describe_samplers()}
    assert set(rows) == {"grid", "random", "qmc", "tpe", "cmaes", "nsga2", "gp"}
    assert rows["qmc"]["reproducible"]
    assert not rows["tpe"]["reproducible"]
    assert not rows["cmaes"]["multi_objective"]
    assert rows["tpe"]["arguments"]["n_startup_trials"] == 10
    assert {r["name"] for r in describe_pruners()} == {
        "none",
        "median",
        "successive_halving",
        "hyperband",
        "wilcoxon",
    }
