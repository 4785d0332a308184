"""Every shipped study file validates (``studies/*.yaml``; ``studies/claims/`` has its own schema)."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from harness.study import load_study, objective_value, study_paths

STUDIES = Path(__file__).resolve().parents[2] / "studies"
PATHS = study_paths(STUDIES)

#: the sweeps the user asked for, on both datasets, plus the smoke study
EXPECTED = {"smoke"} | {
    f"{data}_{factor}"
    for data in ("digits", "mnist1d")
    for factor in ("batch_size", "lr", "init_std", "depth", "joint")
}


def test_the_requested_studies_ship() -> None:
    assert {p.stem for p in PATHS} == EXPECTED
    assert not any(p.parent.name == "claims" for p in PATHS)


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_study_validates(path: Path) -> None:
    spec = load_study(path)
    assert spec.name == path.stem  # the file name is the study (and experiment) name
    assert spec.description.strip(), "every shipped study says what it measures"
    assert spec.n_trials is not None
    assert spec.n_trials >= 4
    assert any(role == "scientific" for role in spec.roles().values())
    # every sampled configuration is a valid run config
    study = optuna.create_study(sampler=spec.make_sampler(), directions=spec.directions)
    for _ in range(3):
        trial = study.ask()
        config, chosen = spec.search.suggest(trial, spec.base_config)
        assert set(chosen) <= set(spec.search.keys)
        assert spec.search.config_from_params(trial.params, spec.base_config) == config
        study.tell(trial, [0.0] * len(spec.directions))


def test_init_std_studies_search_inside_the_init_spec() -> None:
    for data in ("digits", "mnist1d"):
        spec = load_study(STUDIES / f"{data}_init_std.yaml")
        assert spec.search["model.init.std"].log
        trial = optuna.create_study(sampler=spec.make_sampler()).ask()
        config, _ = spec.search.suggest(trial, spec.base_config)
        assert config["model"]["init"]["name"] == "normal"
        assert 1e-3 <= config["model"]["init"]["std"] <= 1.0


def test_smoke_study_is_small() -> None:
    spec = load_study(STUDIES / "smoke.yaml")
    assert spec.n_trials is not None
    assert spec.n_trials <= 6
    assert spec.resolved_base_config["train"]["epochs"] <= 3


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_study_trains_one_epoch(path: Path) -> None:
    """One trial of every study, cut to one epoch: data, model and training all accept it."""
    from harness.experiment import run_config

    spec = load_study(path, ["train.epochs=1"])
    trial = optuna.create_study(sampler=spec.make_sampler(), directions=spec.directions).ask()
    config, _ = spec.search.suggest(trial, spec.base_config)
    result = run_config(config)
    assert result.status in ("completed", "diverged"), result.history.reason
    for objective in spec.objectives:
        value = objective_value(result.history.records, objective)
        assert isinstance(value, float)
        assert math.isfinite(value) or result.status == "diverged"
