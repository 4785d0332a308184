"""Study plots: every PNG renders from a toy study, degenerate studies degrade with reasons."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from harness.study import SearchSpace
from harness.study.plots import edge_warnings, render_study_plots, trials_frame

optuna.logging.set_verbosity(optuna.logging.ERROR)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SPACE = SearchSpace.from_yaml(
    {
        "train.optimizer.lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        "train.batch_size": {
            "type": "categorical",
            "choices": [16, 32, 64, 128],
            "role": "scientific",
        },
        "model.init": {
            "type": "categorical",
            "choices": ["he_normal", {"name": "normal", "std": 0.01}],
            "role": "scientific",
        },
        "model.width": {"type": "int", "low": 8, "high": 64},
    }
)


def toy_value(p: dict[str, Any], epoch: int) -> float:
    """Peaks at lr = 0.1 (inside the range); slightly better with wider layers."""
    return (
        1.0
        - abs(math.log10(p["train.optimizer.lr"]) + 1.0) / 3.0
        + p["model.width"] / 640
        + 0.02 * epoch
    )


def toy_study(n_trials: int = 24, *, fail: tuple[int, ...] = (5,)) -> optuna.Study:
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4),
    )

    def objective(trial: optuna.Trial) -> float:
        p = {q.key: q.suggest(trial) for q in SPACE}
        if trial.number in fail:
            raise RuntimeError("diverged")
        value = 0.0
        for epoch in range(4):
            value = toy_value(p, epoch)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    return study


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    return toy_study(16)


CURVES = pd.DataFrame(
    [
        {"trial": t, "epoch": e, "val/accuracy": 0.5 + 0.1 * e - 0.01 * t}
        for t in range(3)
        for e in range(4)
    ]
)


@pytest.fixture(scope="module")
def rendered(
    study: optuna.Study, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path, str]:
    """One full render shared by the tests that inspect it (rendering costs seconds)."""
    import matplotlib

    facecolor = matplotlib.rcParams["axes.facecolor"]
    out = tmp_path_factory.mktemp("plots")
    res = render_study_plots(
        study,
        out,
        space=SPACE,
        roles={"model.width": "scientific"},
        objective_names=["val/accuracy"],
        curves=CURVES,
    )
    return res, out, facecolor


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_all_plots_render(study: optuna.Study, rendered: tuple[Any, Path, str]) -> None:
    res, out, _ = rendered
    states = {t.state for t in study.trials}
    assert {optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL} <= states
    expected = {
        "optimization_history",
        "parallel_coordinate",
        "param_importances",
        "slice",
        "contour",
        "intermediate_values",
        "learning_curves",
        "figure",  # the one paper figure of the sweep
        *(f"axis_{k}" for k in SPACE.keys),
        "isolation_train.batch_size",
        "isolation_model.init",
        "isolation_model.width",  # made scientific through roles=
    }
    assert set(res.paths) == expected, res.notes
    for path in res.paths.values():
        assert_png(path)
        assert path.parent == out
    assert res.notes == {}
    notes_file = out / "plots_notes.txt"
    # nothing was skipped: the notes file holds the edge warnings only, if any
    written = notes_file.read_text().splitlines() if notes_file.exists() else []
    assert written == [f"warning: {w}" for w in res.warnings]
    assert "isolation_train.optimizer.lr" not in res.paths  # nuisance: no isolation plot


def study_with(points: list[tuple[dict[str, Any], float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    dists = SPACE.distributions()
    for params, value in points:
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions={k: dists[k] for k in params}, value=value
            )
        )
    return study


def test_edge_warning_names_the_param() -> None:
    inside = {"train.optimizer.lr": 0.1, "model.width": 40}
    at_edge = {"train.optimizer.lr": 0.1, "model.width": 63}
    study = study_with([(inside, 0.5), (at_edge, 0.9)])
    (warning,) = edge_warnings(study, SPACE, objective_names=["val/accuracy"])
    assert "model.width = 63" in warning
    assert "upper edge" in warning
    assert "[8, 64]" in warning
    assert "val/accuracy (0.9, trial 1)" in warning
    # the same trials with the interior point best: nothing to widen
    assert edge_warnings(study_with([(inside, 0.9), (at_edge, 0.5)]), SPACE) == []
    assert edge_warnings(study_with([(inside, 0.9), (at_edge, 0.5)])) == []  # space from trials


def test_edge_warning_in_log_scale() -> None:
    narrow = SearchSpace.from_yaml(
        {"train.optimizer.lr": {"type": "float", "low": 0.02, "high": 0.11, "log": True}}
    )
    df = pd.DataFrame(
        {
            "number": [0, 1],
            "state": ["COMPLETE", "COMPLETE"],
            "value": [0.5, 0.9],
            "params_train.optimizer.lr": [0.03, 0.105],
        }
    )
    # 0.105 is at 97 % of [0.02, 0.11] in log space: upper edge
    (warning,) = edge_warnings(df, narrow, directions=["maximize"])
    assert "train.optimizer.lr" in warning
    assert "log scale" in warning
    assert "upper edge" in warning
    # minimizing, the best is 0.03: 24 % in log space, so inside
    assert edge_warnings(df, narrow, directions=["minimize"]) == []
    with pytest.raises(ValueError, match="one direction per objective"):
        edge_warnings(df, narrow)


def test_edge_warning_for_numeric_choices() -> None:
    sp = SearchSpace.from_yaml({"model.depth": {"type": "categorical", "choices": [1, 2, 4]}})
    df = pd.DataFrame(
        {
            "number": [0, 1, 2],
            "state": ["COMPLETE"] * 3,
            "value": [0.1, 0.2, 0.3],
            "params_model.depth": [1, 2, 4],
        }
    )
    (warning,) = edge_warnings(df, sp, directions=["maximize"])
    assert "largest of its choices" in warning


def test_isolation_bins_continuous_values_only(tmp_path: Path) -> None:
    from harness.study.plots import _Axis, _buckets

    values = pd.Series([0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0] * 2)
    keys, binned = _buckets(values, _Axis.of_choices("lr", list(values.unique()), "scientific"))
    assert not binned
    assert keys.nunique() == 8  # every choice keeps its own point
    keys, binned = _buckets(values * 1.01**values.index, _Axis("lr", False, True, 1e-3, 4.0))
    assert binned
    assert keys.nunique() <= 6


def test_multi_objective_plots_pareto_front(tmp_path: Path) -> None:
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1)
    )

    two = SearchSpace([SPACE["train.optimizer.lr"], SPACE["model.width"]])

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        p = {q.key: q.suggest(trial) for q in two}
        return toy_value(p, 3), p["model.width"] * 0.01

    study.optimize(objective, n_trials=10)
    res = render_study_plots(
        study, tmp_path, space=two, objective_names=["val/accuracy", "time/train_s"]
    )
    assert "pareto_front" in res.paths
    assert "optimization_history" not in res.paths
    assert res.notes["intermediate_values"] == "no trial reported intermediate values"
    for path in res.paths.values():
        assert_png(path)
    assert "axis_model.width" in res.paths


def test_single_trial_degrades_with_reasons(tmp_path: Path) -> None:
    res = render_study_plots(toy_study(1, fail=()), tmp_path, space=SPACE)
    assert "optimization_history" in res.paths
    assert "only 1 completed trial" in res.notes["parallel_coordinate"]
    assert "importances need" in res.notes["param_importances"]
    assert "contour" in res.notes
    written = (tmp_path / "plots_notes.txt").read_text()
    assert "param_importances: 1 completed trials (importances need 5)" in written
    for path in res.paths.values():
        assert_png(path)


def test_all_failed_degrades_with_reasons(tmp_path: Path) -> None:
    res = render_study_plots(toy_study(3, fail=(0, 1, 2)), tmp_path, space=SPACE)
    for name in ("optimization_history", "slice", "parallel_coordinate"):
        assert res.notes[name] == "no completed trial", res.notes
    assert res.warnings == []
    assert "isolation_train.batch_size" in res.notes
    # the axis plots still show where the failures were
    assert_png(res.paths["axis_train.optimizer.lr"])


def test_empty_study(tmp_path: Path) -> None:
    res = render_study_plots(optuna.create_study(), tmp_path, space=SPACE)
    assert res.paths == {}
    assert res.notes["optimization_history"] == "no completed trial"
    assert res.notes["axis"] == "no trials"


def test_categorical_only_study(tmp_path: Path) -> None:
    sp = SearchSpace.from_yaml(
        {
            "model.activation": {
                "type": "categorical",
                "choices": ["relu", "tanh", "sigmoid"],
                "role": "scientific",
            }
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: len(sp["model.activation"].suggest(t)), n_trials=6)
    res = render_study_plots(study, tmp_path, space=sp)
    assert "importances need 2 or more" in res.notes["param_importances"]
    assert "a contour needs 2" in res.notes["contour"]
    assert_png(res.paths["isolation_model.activation"])
    assert_png(res.paths["axis_model.activation"])


def test_failing_optuna_plot_falls_back(
    study: optuna.Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("cannot plot")

    vm = optuna.visualization.matplotlib
    for name in (
        "plot_optimization_history",
        "plot_parallel_coordinate",
        "plot_slice",
        "plot_contour",
        "plot_intermediate_values",
        "plot_param_importances",
    ):
        monkeypatch.setattr(vm, name, broken)
    res = render_study_plots(study, tmp_path, space=SPACE)
    for name in (
        "optimization_history",
        "parallel_coordinate",
        "slice",
        "contour",
        "intermediate_values",
        "param_importances",
    ):
        assert_png(res.paths[name])
        assert "ValueError: cannot plot" in res.notes[name]
        assert "plain version" in res.notes[name]


def test_trials_frame_columns(study: optuna.Study) -> None:
    df = trials_frame(study)
    assert len(df) == len(study.trials)
    assert {"number", "state", "value", "last_intermediate", "params_model.init"} <= set(df.columns)
    assert df.attrs["directions"] == ["maximize"]
    pruned = df[df["state"] == "PRUNED"]
    # Optuna gives a pruned trial its last reported value; the plots keep it apart by state
    assert (pruned["value"] == pruned["last_intermediate"]).all()
    assert df[df["state"] == "FAIL"]["value"].isna().all()


def test_plots_leave_matplotlib_style_alone(rendered: tuple[Any, Path, str]) -> None:
    import matplotlib

    # Optuna's plots switch to ggplot globally; the harness undoes it
    assert matplotlib.rcParams["axes.facecolor"] == rendered[2]
