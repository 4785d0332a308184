"""Search spaces: conditional and derived parameters, spec choices, grids, config rebuilding."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FixedTrial

from harness.config import ConfigError
from harness.study import SafeExpression, SearchSpace, choice_label
from harness.study.space import lookup

BASE: dict[str, Any] = {
    "seed": 0,
    "data": {"name": "digits"},
    "model": {"name": "mlp", "depth": 2, "width": 16, "init": {"name": "normal", "std": 0.01}},
    "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 32, "epochs": 3},
}

INIT_CHOICES = ["he_normal", {"name": "normal", "std": 0.01}, {"name": "normal", "std": 0.1}]


def space(params: dict[str, Any], derived: dict[str, str] | None = None) -> SearchSpace:
    s = SearchSpace.from_yaml(params, derived)
    s.check(BASE)
    return s


# -- conditional parameters ---------------------------------------------------------------------

CONDITIONAL = {
    # listed before the parameter its condition reads: the space reorders it
    "train.optimizer.momentum": {
        "type": "float",
        "low": 0.5,
        "high": 0.99,
        "when": {"train.optimizer.name": ["momentum", "nesterov"]},
    },
    "train.optimizer.name": {"type": "categorical", "choices": ["sgd", "momentum", "nesterov"]},
}


def test_conditions_are_ordered_after_what_they_read() -> None:
    s = space(CONDITIONAL)
    assert s.keys == ["train.optimizer.name", "train.optimizer.momentum"]


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_conditional_param_suggested_when_condition_holds(name: str) -> None:
    s = space(CONDITIONAL)
    trial = FixedTrial({"train.optimizer.name": name, "train.optimizer.momentum": 0.9})
    cfg, chosen = s.suggest(trial, BASE)
    assert cfg["train"]["optimizer"] == {"name": name, "lr": 0.1, "momentum": 0.9}
    assert chosen == {"train.optimizer.name": name, "train.optimizer.momentum": 0.9}


def test_conditional_param_skipped_when_condition_fails() -> None:
    s = space(CONDITIONAL)
    # FixedTrial raises if asked for a parameter it was not given: momentum is never asked
    cfg, chosen = s.suggest(FixedTrial({"train.optimizer.name": "sgd"}), BASE)
    assert cfg["train"]["optimizer"] == {"name": "sgd", "lr": 0.1}
    assert chosen == {"train.optimizer.name": "sgd"}


def test_condition_on_a_fixed_spec_matches_by_name() -> None:
    params = {
        "train.optimizer.lr": {
            "type": "float",
            "low": 0.05,
            "high": 0.5,
            "when": {"train.optimizer": ["sgd"]},
        }
    }
    s = SearchSpace.from_yaml(params)
    _cfg, chosen = s.suggest(FixedTrial({"train.optimizer.lr": 0.2}), BASE)
    assert chosen == {"train.optimizer.lr": 0.2}
    assert lookup({"train": {"optimizer": "sgd"}}, "train.optimizer.name") == "sgd"


def test_condition_that_can_never_hold_is_an_error() -> None:
    params = {
        "train.optimizer.momentum": {
            "type": "float",
            "low": 0.5,
            "high": 0.9,
            "when": {"train.optimizer.name": ["adam"]},
        }
    }
    with pytest.raises(ConfigError) as info:
        space(params)
    assert info.value.path == "search.params.train.optimizer.momentum.when"
    assert "'train.optimizer.name': 'sgd'" in str(info.value)


def test_condition_on_unknown_key_is_an_error() -> None:
    params = {
        "model.width": {"type": "int", "low": 8, "high": 16, "when": {"model.activaton": ["relu"]}}
    }
    with pytest.raises(ConfigError) as info:
        space(params)
    assert info.value.path == "search.params.model.width.when.model.activaton"


def test_cyclic_conditions_are_an_error() -> None:
    params = {
        "model.width": {"type": "categorical", "choices": [8, 16], "when": {"model.depth": [1]}},
        "model.depth": {"type": "categorical", "choices": [1, 2], "when": {"model.width": [8]}},
    }
    with pytest.raises(ConfigError, match="cycle"):
        SearchSpace.from_yaml(params)


# -- derived parameters -------------------------------------------------------------------------


def test_derived_value_from_searched_and_fixed_keys() -> None:
    s = space(
        {"train.batch_size": {"type": "categorical", "choices": [32, 128]}},
        {
            "train.optimizer.lr": "0.1 * sqrt(train.batch_size / 32)",
            "model.width": "int(max(train.batch_size, model.depth * 10) // 2)",
        },
    )
    cfg, chosen = s.suggest(FixedTrial({"train.batch_size": 128}), BASE)
    assert cfg["train"]["optimizer"]["lr"] == pytest.approx(0.2)
    assert cfg["model"]["width"] == 64
    assert chosen == {"train.batch_size": 128}  # derived keys are not "chosen"


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "().__class__",
        "train.batch_size.__class__",
        "open('x')",
        "'a' * 3",
        "lambda: 1",
        "[1, 2]",
        "train.batch_size if True else 1",
        "1 < 2",
        "max(*[1, 2])",
        "round(1.5, ndigits=1)",
        "sqrt",
        "eval('1')",
        "x = 1",
    ],
)
def test_derived_rejects_everything_but_arithmetic(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        SafeExpression(text, "search.derived.train.optimizer.lr")
    assert info.value.path == "search.derived.train.optimizer.lr"
    assert "arithmetic" in str(info.value)


def test_derived_unknown_name_is_an_error_at_check() -> None:
    with pytest.raises(ConfigError, match=r"unknown name 'train.batch_sise' \(did you mean"):
        space(
            {"train.batch_size": {"type": "int", "low": 8, "high": 64}},
            {"train.optimizer.lr": "0.1 * train.batch_sise"},
        )


def test_derived_runtime_errors_are_config_errors() -> None:
    expr = SafeExpression("1 / (train.batch_size - 32)", "search.derived.x")
    with pytest.raises(ConfigError, match="division by zero"):
        expr.evaluate({"train.batch_size": 32}.__getitem__)
    with pytest.raises(ConfigError, match="exponents"):
        SafeExpression("10 ** 10 ** 10", "search.derived.x").evaluate(lambda k: 0)
    with pytest.raises(ConfigError, match="to be a number"):
        SafeExpression("model.init * 2", "search.derived.x").evaluate(lambda k: {"name": "he"})


def test_derived_key_cannot_also_be_searched() -> None:
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_yaml(
            {"train.optimizer.lr": {"type": "float", "low": 0.01, "high": 1.0}},
            {"train.optimizer.lr": "0.1"},
        )
    assert info.value.path == "search.derived.train.optimizer.lr"


# -- categorical component specs ----------------------------------------------------------------


def test_choice_labels() -> None:
    assert choice_label({"name": "normal", "std": 0.01}) == "normal(std=0.01)"
    assert choice_label({"std": 0.01, "name": "normal"}) == "normal(std=0.01)"  # order-free
    assert (
        choice_label({"name": "leaky_relu", "alpha": 0.1, "mode": "x"})
        == 'leaky_relu(alpha=0.1, mode="x")'
    )
    assert choice_label([64, 32]) == "[64,32]"
    assert choice_label(3) == 3
    assert choice_label("relu") == "relu"
    assert choice_label(None) is None


def test_spec_choices_round_trip_through_optuna_params() -> None:
    s = space(
        {
            "model.init": {"type": "categorical", "choices": INIT_CHOICES},
            "model.hidden": {"type": "categorical", "choices": [[32, 16], [64]]},
        }
    )
    dist = s.distributions()["model.init"]
    assert isinstance(dist, CategoricalDistribution)
    assert dist.choices == ("he_normal", "normal(std=0.01)", "normal(std=0.1)")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        cfg, chosen = s.suggest(trial, BASE)
        assert cfg["model"]["init"] == chosen["model.init"]
        assert chosen["model.init"] in INIT_CHOICES
        assert isinstance(cfg["model"]["hidden"], list)
        # what Optuna stored (labels) rebuilds the identical config, and decodes to the originals
        assert all(isinstance(v, str) for v in trial.params.values())
        assert s.config_from_params(trial.params, BASE) == cfg
        assert s.decode_params(trial.params) == chosen
        seen.add(trial.params["model.init"])
        study.tell(trial, 0.0)
    assert len(seen) == 3


def test_init_std_is_searchable_inside_a_component_spec() -> None:
    s = space(
        {
            "model.init.std": {
                "type": "float",
                "low": 1e-3,
                "high": 1.0,
                "log": True,
                "role": "scientific",
            }
        }
    )
    cfg, chosen = s.suggest(FixedTrial({"model.init.std": 0.05}), BASE)
    assert cfg["model"]["init"] == {"name": "normal", "std": 0.05}
    assert chosen == {"model.init.std": 0.05}


def test_param_inside_a_searched_spec_follows_it() -> None:
    s = space(
        {
            "model.init.std": {
                "type": "float",
                "low": 0.01,
                "high": 1.0,
                "log": True,
                "when": {"model.init.name": ["normal"]},
            },
            "model.init": {
                "type": "categorical",
                "choices": ["he_normal", {"name": "normal", "std": 0.1}],
            },
        }
    )
    assert s.keys == ["model.init", "model.init.std"]
    cfg, _ = s.suggest(FixedTrial({"model.init": "normal(std=0.1)", "model.init.std": 0.3}), BASE)
    assert cfg["model"]["init"] == {"name": "normal", "std": 0.3}
    cfg, chosen = s.suggest(FixedTrial({"model.init": "he_normal"}), BASE)
    assert cfg["model"]["init"] == "he_normal"
    assert chosen == {"model.init": "he_normal"}


def test_config_from_params_errors() -> None:
    s = space(CONDITIONAL)
    with pytest.raises(ConfigError, match=r"params\.train\.optimizer\.momentum"):
        s.config_from_params({"train.optimizer.name": "momentum"}, BASE)  # active but missing
    with pytest.raises(ConfigError, match=r"did you mean 'train\.optimizer\.name'"):
        s.config_from_params({"train.optimizer.nam": "sgd"}, BASE)
    with pytest.raises(ConfigError, match=r"in \[0.5, 0.99\]"):
        s.config_from_params(
            {"train.optimizer.name": "momentum", "train.optimizer.momentum": 2.0}, BASE
        )
    with pytest.raises(ConfigError, match="one of"):
        s.config_from_params({"train.optimizer.name": "adam"}, BASE)
    # an inactive parameter is ignored rather than applied
    cfg = s.config_from_params(
        {"train.optimizer.name": "sgd", "train.optimizer.momentum": 0.9}, BASE
    )
    assert "momentum" not in cfg["train"]["optimizer"]


# -- distributions and grids --------------------------------------------------------------------


def test_distributions_match_the_yaml() -> None:
    s = space(
        {
            "train.optimizer.lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
            "train.batch_size": {"type": "int", "low": 8, "high": 64, "step": 8},
            "model.width": {"type": "int", "low": 8, "high": 64, "log": True},
        }
    )
    d = s.distributions()
    assert d["train.optimizer.lr"] == FloatDistribution(1e-3, 1.0, log=True)
    assert d["train.batch_size"] == IntDistribution(8, 64, step=8)
    assert d["model.width"] == IntDistribution(8, 64, log=True)
    assert s.grid_size() is None  # lr is continuous


def test_grid_values_and_size() -> None:
    s = space(
        {
            "train.optimizer.lr": {"type": "float", "low": 0.1, "high": 0.5, "step": 0.1},
            "train.batch_size": {"type": "int", "low": 16, "high": 64, "step": 16},
            "model.init": {"type": "categorical", "choices": INIT_CHOICES},
        }
    )
    grid = s.grid_search_space()
    assert grid["train.optimizer.lr"] == [0.1, 0.2, 0.3, 0.4, 0.5]  # no 0.30000000000000004
    assert grid["train.batch_size"] == [16, 32, 48, 64]
    assert grid["model.init"] == ["he_normal", "normal(std=0.01)", "normal(std=0.1)"]
    assert s.grid_size() == 5 * 4 * 3


def test_grid_over_a_log_int_names_the_param() -> None:
    s = space({"train.batch_size": {"type": "int", "low": 8, "high": 256, "log": True}})
    with pytest.raises(ConfigError) as info:
        s.grid_search_space()
    assert info.value.path == "search.params.train.batch_size"
    assert "categorical" in str(info.value)


def test_probe_blames_the_offending_value() -> None:
    # width 0 is rejected by the run config only at the low end of the range
    with pytest.raises(ConfigError) as info:
        space({"train.batch_size": {"type": "int", "low": 0, "high": 64}})
    assert info.value.path == "search.params.train.batch_size"
    assert info.value.value == 0
    assert "train.batch_size = 0" in str(info.value)


def test_step_floats_are_decoded_exactly() -> None:
    s = space({"train.optimizer.lr": {"type": "float", "low": 0.1, "high": 0.5, "step": 0.1}})
    cfg, _ = s.suggest(FixedTrial({"train.optimizer.lr": 0.3}), BASE)
    assert math.isclose(cfg["train"]["optimizer"]["lr"], 0.3)
