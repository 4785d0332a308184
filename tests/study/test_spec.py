"""Study files: schema validation, error messages, overrides, objectives, round trips."""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from harness.config import ConfigError
from harness.study import (
    Objective,
    StudySpec,
    check_sampler_available,
    load_study,
    objective_value,
    parse_study,
)

BASE: dict[str, Any] = {
    "name": "digits_lr_batch",
    "description": "example study",
    "seed": 3,
    "data": {"name": "digits"},
    "model": {"name": "mlp", "depth": 2, "width": 16, "activation": "relu", "init": "he_normal"},
    "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 32, "epochs": 4},
    "objective": [{"metric": "val/accuracy", "direction": "maximize", "reduce": "best"}],
    "search": {
        "sampler": {"name": "qmc"},
        "pruner": {"name": "median", "metric": "val/accuracy", "n_warmup_steps": 1},
        "n_trials": 12,
        "params": {
            "train.optimizer.lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
            "train.batch_size": {
                "type": "int",
                "low": 8,
                "high": 256,
                "log": True,
                "role": "scientific",
            },
            "model.init": {
                "type": "categorical",
                "choices": ["he_normal", {"name": "normal", "std": 0.01}],
            },
        },
        "fixed_roles": {"train.epochs": "fixed"},
    },
    "replicates": 2,
}


def study(**changes: Any) -> dict[str, Any]:
    """A copy of BASE with changes: ``a__b=v`` sets raw[a][b] (None deletes it); ``add_params``
    adds entries to search.params."""
    out = copy.deepcopy(BASE)
    out["search"]["params"].update(changes.pop("add_params", {}))
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        node = out
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return out


def params(**entries: Any) -> dict[str, Any]:
    return {"add_params": {k.replace("__", "."): v for k, v in entries.items()}}


def test_valid_study_fields() -> None:
    spec = parse_study(study())
    assert isinstance(spec, StudySpec)
    assert spec.name == "digits_lr_batch"
    assert spec.seed == 3
    assert spec.replicates == 2
    assert spec.n_trials == 12
    assert spec.timeout is None
    assert spec.directions == ["maximize"]
    assert spec.sampler_spec == {"name": "qmc", "seed": 3}  # seed defaults to the study seed
    assert spec.pruner_metric == "val/accuracy"
    assert spec.base_config["seed"] == 3
    assert spec.base_config["model"]["width"] == 16
    assert spec.roles() == {
        "train.optimizer.lr": "nuisance",
        "train.batch_size": "scientific",
        "model.init": "nuisance",
        "train.epochs": "fixed",
    }
    assert spec.objectives[0]["metric"] == "val/accuracy"  # mapping-style access works too
    assert spec.resolved_base_config["train"]["loss"] == "cross_entropy"  # defaults filled


def test_load_file_and_yaml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(study()))
    spec = load_study(path)
    assert spec.source_path == path
    again_path = tmp_path / "again.yaml"
    again_path.write_text(spec.to_yaml())
    again = load_study(again_path)
    assert again.raw == spec.raw
    assert again.fingerprint() == spec.fingerprint()
    assert again.search.keys == spec.search.keys


def test_fingerprint_ignores_budget_but_not_space() -> None:
    spec = parse_study(study())
    assert (
        parse_study(study(), overrides=["search.n_trials=50"]).fingerprint() == spec.fingerprint()
    )
    changed = parse_study(study(), overrides=["search.params.train.batch_size.high=128"])
    assert changed.fingerprint() != spec.fingerprint()


def test_multi_objective_directions_and_defaults() -> None:
    spec = parse_study(
        study(
            objective=[
                {"metric": "val/loss"},
                {"metric": "time/epoch_train_s", "direction": "minimize", "reduce": "sum"},
            ],
            search__pruner=None,
            search__sampler={"name": "nsga2", "population_size": 10},
        )
    )
    assert spec.directions == ["minimize", "minimize"]
    assert spec.objectives[0] == Objective("val/loss", "minimize", "best")
    assert spec.is_multi_objective
    assert spec.pruner_metric is None


def test_grid_n_trials_defaults_to_grid_size() -> None:
    spec = parse_study(
        study(
            search__sampler="grid",
            search__n_trials=None,
            search__params={
                "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
                "train.optimizer.lr": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
            },
        )
    )
    assert spec.n_trials == 9 == spec.grid_size()


def test_hyperband_max_resource_is_the_epochs() -> None:
    spec = parse_study(study(search__pruner={"name": "hyperband", "metric": "val/accuracy"}))
    assert spec.pruner_spec["max_resource"] == 4
    pruner = spec.make_pruner()
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert pruner._max_resource == 4


# -- errors: each names the YAML path, the value and what is allowed ----------------------------

ERRORS = [
    # (changes, path in the message, words that must appear)
    (
        params(train__batch_size={"type": "int", "low": "8", "high": 64}),
        "search.params.train.batch_size.low",
        ["'8'", "integer"],
    ),
    ({"serach": {}}, "serach", ["did you mean 'search'"]),
    (
        params(train__batch_size={"type": "int", "low": 8, "hihg": 64}),
        "search.params.train.batch_size.hihg",
        ["did you mean 'high'"],
    ),
    (
        params(train__optimizer__lr={"type": "float", "low": 1.0, "high": 0.1}),
        "search.params.train.optimizer.lr.high",
        ["greater than low"],
    ),
    (
        params(train__optimizer__lr={"type": "float", "low": 0.0, "high": 1.0, "log": True}),
        "search.params.train.optimizer.lr.low",
        ["> 0 when log"],
    ),
    (
        params(train__optimizer__lr={"type": "float", "low": 0.1, "high": 1.0, "step": 0.25}),
        "search.params.train.optimizer.lr.step",
        ["divides"],
    ),
    (
        params(train__optimizer__lr={"type": "flaot", "low": 0.1, "high": 1.0}),
        "search.params.train.optimizer.lr.type",
        ["float, int, categorical"],
    ),
    (
        params(model__init={"type": "categorical", "choices": []}),
        "search.params.model.init.choices",
        ["non-empty"],
    ),
    (
        params(model__depth={"type": "categorical", "choices": [1, 1.0]}),
        "search.params.model.depth.choices.1",
        ["all different"],
    ),
    (
        params(model__depth={"choices": [1, 2], "role": "fixed"}),
        "search.params.model.depth.role",
        ["search.fixed_roles"],
    ),
    (
        params(optimizer__lr={"type": "float", "low": 0.1, "high": 1.0}),
        "search.params.optimizer.lr",
        ["data, model, train"],
    ),
    ({"search__sampler": "grid"}, "search.params.train.optimizer.lr", ["discrete", "categorical"]),
    (
        {"search__sampler": {"name": "bayes"}},
        "search.sampler.name",
        ["grid", "random", "qmc", "tpe", "cmaes", "nsga2", "gp"],
    ),
    (
        {"search__sampler": {"name": "tpe", "n_startup": 3}},
        "search.sampler.n_startup",
        ["n_startup_trials"],
    ),
    (
        {"search__pruner": {"name": "asha"}},
        "search.pruner.name",
        ["none", "median", "successive_halving", "hyperband", "wilcoxon"],
    ),
    (
        {"search__pruner": {"name": "median", "metric": "val/loss"}},
        "search.pruner.metric",
        ["maximize"],
    ),
    ({"search__n_trials": None}, "search.n_trials", ["timeout"]),
    ({"search__n_trials": 0}, "search.n_trials", [">= 1"]),
    ({"search__timeout": -5}, "search.timeout", ["seconds"]),
    ({"name": "Digits LR"}, "name", ["lowercase"]),
    ({"replicates": 0}, "replicates", [">= 1"]),
    (
        {"objective": [{"metric": "val/accuracy", "direction": "up"}]},
        "objective.0.direction",
        ["maximize, minimize"],
    ),
    (
        {"objective": [{"metric": "val/accuracy", "reduce": "median"}]},
        "objective.0.reduce",
        ["best, final"],
    ),
    ({"objective": [{"metric": "accuracy"}]}, "objective.0.metric", ["val/accuracy"]),
    (
        {"search__fixed_roles": {"train.batch_size": "fixed"}},
        "search.fixed_roles.train.batch_size",
        ["not searched"],
    ),
    (
        {"search__fixed_roles": {"train.epoch": "fixed"}},
        "search.fixed_roles.train.epoch",
        ["run config"],
    ),
    (
        {"search__fixed_roles": {"train.epochs": "constant"}},
        "search.fixed_roles.train.epochs",
        ["scientific, nuisance, fixed"],
    ),
    (params(model__dept={"choices": [1, 2]}), "search.params.model.dept", ["did you mean 'depth'"]),
    ({"data": {"name": "digits", "subsett": 100}}, "data.subsett", ["did you mean 'subset'"]),
    ({"train": {"epochs": -1}}, "train.epochs", [">= 0"]),
]


@pytest.mark.parametrize(("changes", "path", "words"), ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_name_path_value_and_allowed(
    changes: dict[str, Any], path: str, words: list[str]
) -> None:
    raw = study(**copy.deepcopy(changes))
    with pytest.raises(ConfigError) as info:
        parse_study(raw, source="studies/x.yaml")
    message = str(info.value)
    assert info.value.path == path, message
    assert message.startswith("studies/x.yaml: "), message
    assert "is not allowed: expected" in message
    for word in words:
        assert word in message, message


def test_multi_objective_rejects_pruner_and_cmaes() -> None:
    two = [{"metric": "val/loss"}, {"metric": "time/epoch_train_s", "reduce": "sum"}]
    with pytest.raises(ConfigError, match="cannot prune a multi-objective"):
        parse_study(study(objective=two))
    with pytest.raises(ConfigError, match="several objectives") as info:
        parse_study(study(objective=two, search__pruner=None, search__sampler="cmaes"))
    assert info.value.path == "search.sampler.name"


def test_grid_larger_budget_than_grid_is_an_error() -> None:
    grid_params = {"model.depth": {"type": "categorical", "choices": [1, 2]}}
    with pytest.raises(ConfigError, match=r"at most the grid size \(2\)"):
        parse_study(study(search__sampler="grid", search__params=grid_params, search__n_trials=5))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_study(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="line"):
        load_study(bad)


# -- gp without torch -------------------------------------------------------------------------


def test_gp_without_torch_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    hint = "sampler 'gp' needs PyTorch (pip install 'nn-harness[bench]' or torch)"
    with pytest.raises(ConfigError) as info:
        check_sampler_available("gp")
    assert hint in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_study(study(search__sampler="gp"))
    assert hint in str(info.value)
    assert info.value.path == "search.sampler.name"
    check_sampler_available("tpe")  # others need nothing optional


def test_gp_validates_without_importing_torch_when_installed() -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed (the optional `bench` extra)")
    spec = parse_study(study(search__sampler={"name": "gp", "n_startup_trials": 4}))
    assert spec.sampler_spec == {"name": "gp", "n_startup_trials": 4, "seed": 3}


# -- overrides ----------------------------------------------------------------------------------


def test_overrides_reach_any_field(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(study()))
    spec = load_study(
        path,
        [
            "train.epochs=2",
            "seed=11",
            "search.sampler.name=random",
            "search.params.train.batch_size.low=16",
            "search.params.train.batch_size.role=nuisance",
            "search.params.model.init=null",
            "search.params.model.width={type: int, low: 8, high: 32}",
            "search.params.train.optimizer.lr.when.train.optimizer.name=[sgd]",
        ],
    )
    assert spec.base_config["train"]["epochs"] == 2
    assert spec.seed == 11
    assert spec.sampler_spec == {"name": "random", "seed": 11}
    p = spec.search["train.batch_size"]
    assert (p.low, p.role) == (16, "nuisance")
    assert "model.init" not in spec.search
    assert spec.search["model.width"].high == 32
    assert spec.search["train.optimizer.lr"].when == {"train.optimizer.name": ("sgd",)}
    # the file on disk is untouched
    assert load_study(path).base_config["train"]["epochs"] == 4


def test_bad_override_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_study(study(), overrides=["train.epochs"])


# -- objective values ---------------------------------------------------------------------------

RECORDS = [
    {"epoch": 0, "val/accuracy": 0.1, "val/loss": 2.3, "time/epoch_train_s": 0.0},
    {"epoch": 1, "val/accuracy": 0.8, "val/loss": 0.6, "time/epoch_train_s": 0.5},
    {"epoch": 2, "val/accuracy": 0.7, "val/loss": math.nan, "time/epoch_train_s": 0.25},
]


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ({"metric": "val/accuracy", "direction": "maximize", "reduce": "best"}, 0.8),
        ({"metric": "val/accuracy", "direction": "minimize", "reduce": "best"}, 0.1),
        ({"metric": "val/accuracy", "reduce": "final"}, 0.7),
        ({"metric": "val/accuracy", "reduce": "min"}, 0.1),
        ({"metric": "val/accuracy", "reduce": "mean"}, (0.1 + 0.8 + 0.7) / 3),
        ({"metric": "val/loss", "reduce": "best"}, 0.6),  # NaN epochs skipped by best
        ({"metric": "time/epoch_train_s", "reduce": "sum"}, 0.75),
    ],
)
def test_objective_value_reductions(objective: dict[str, Any], expected: float) -> None:
    assert objective_value(RECORDS, objective) == pytest.approx(expected)


def test_objective_value_keeps_divergence_visible() -> None:
    assert math.isnan(objective_value(RECORDS, {"metric": "val/loss", "reduce": "final"}))
    assert math.isnan(objective_value(RECORDS, {"metric": "val/loss", "reduce": "mean"}))


def test_objective_value_summary_fallback_and_missing_metric() -> None:
    obj = Objective("time/train_s", "minimize", "final")
    assert objective_value(RECORDS, obj, summary={"time/train_s": 1.5}) == 1.5
    with pytest.raises(ValueError, match=r"'val/f1' was not recorded; recorded metrics: epoch"):
        objective_value(RECORDS, {"metric": "val/f1", "direction": "maximize"})


def test_time_metrics_default_to_final() -> None:
    spec = parse_study(study(objective=[{"metric": "time/train_s"}], search__pruner=None))
    assert spec.objectives[0] == Objective("time/train_s", "minimize", "final")
