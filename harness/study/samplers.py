"""Sampler and pruner registries: ``search.sampler`` and ``search.pruner`` become Optuna objects.

A sampler spec is ``{name: qmc, seed: 0, <keyword arguments>}``; the seed defaults to the study
seed. ``grid``, ``random`` and ``qmc`` give a sequence of configurations that depends only on the
seed and the trial number when trials are asked one after another in one process (what the study
runner does), so their studies reproduce whatever the number of workers. Model-based samplers
(``tpe``, ``cmaes``, ``nsga2``, ``gp``) also read the results of finished trials, so with several
workers their suggestions depend on which trials have finished when a new one is asked.

A pruner spec is ``{name: median, metric: val/accuracy, <keyword arguments>}``: the runner reports
``metric`` after every epoch (step = epoch). Optuna prunes in the study's direction, so the metric
must improve in that direction, and multi-objective studies cannot be pruned.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

from harness.config import ConfigError
from harness.runconfig import direction_of
from harness.study.space import SearchSpace
from models.registry import Registry, UnknownNameError

__all__ = [
    "DEFAULT_SAMPLER",
    "MULTI_OBJECTIVE_SAMPLERS",
    "PRUNERS",
    "REPRODUCIBLE_SAMPLERS",
    "SAMPLERS",
    "check_sampler_available",
    "describe_pruners",
    "describe_samplers",
    "make_pruner",
    "make_sampler",
    "normalize_pruner_spec",
    "normalize_sampler_spec",
]

#: factories ``(space, seed, **kwargs) -> BaseSampler``
SAMPLERS: Registry[Callable[..., BaseSampler]] = Registry("sampler")
#: factories ``(epochs, **kwargs) -> BasePruner``
PRUNERS: Registry[Callable[..., BasePruner]] = Registry("pruner")

#: samplers whose suggestions depend only on (seed, trial number) when trials are asked in order
REPRODUCIBLE_SAMPLERS = frozenset({"grid", "random", "qmc"})
#: samplers that accept several objectives
MULTI_OBJECTIVE_SAMPLERS = frozenset({"grid", "random", "qmc", "tpe", "nsga2", "gp"})
#: the playbook's choice while exploring, and reproducible whatever the number of workers
DEFAULT_SAMPLER = "qmc"
_RESERVED = ("space", "epochs")
_GP_MISSING = "sampler 'gp' needs PyTorch (pip install 'nn-harness[bench]' or torch)"


def _quiet(factory: Callable[[], Any]) -> Any:
    # QMCSampler, GPSampler... are "experimental" in Optuna; the warning says nothing actionable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory()


# -- samplers ---------------------------------------------------------------------------------


class _GridSampler(optuna.samplers.GridSampler):
    """GridSampler that does not call ``study.stop()`` outside ``optimize``.

    Optuna's GridSampler stops the study from ``after_trial`` once the grid is exhausted, which
    raises ``RuntimeError`` under the ask/tell interface the runner uses; there the budget
    (``n_trials`` = grid size) ends the study instead.
    """

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        in_optimize = getattr(getattr(study, "_thread_local", None), "in_optimize_loop", True)
        if in_optimize:
            super().after_trial(study, trial, state, values)


class _FixedSpaceQMCSampler(optuna.samplers.QMCSampler):
    """QMCSampler over a search space known in advance.

    Optuna's QMCSampler samples the first trial at random and infers its space from it (or from
    the trials running at that moment), so the design would depend on timing and miss conditional
    parameters absent from the first trial. Here trial 0 is already the first Sobol point.
    """

    def __init__(self, search_space: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fixed_space = dict(search_space)

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return dict(self._fixed_space)


@SAMPLERS.register("grid")
def grid_sampler(space: SearchSpace, seed: int) -> BaseSampler:
    """Every combination of the (discrete) parameters, in a seeded random order."""
    return _GridSampler(space.grid_search_space(), seed=seed)


@SAMPLERS.register("random")
def random_sampler(space: SearchSpace, seed: int) -> BaseSampler:
    """Independent uniform (or log-uniform) draws."""
    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("qmc")
def qmc_sampler(
    space: SearchSpace, seed: int, *, qmc_type: str = "sobol", scramble: bool = True
) -> BaseSampler:
    """Quasi-random (scrambled Sobol by default): the playbook's choice for exploration."""
    return _quiet(
        lambda: _FixedSpaceQMCSampler(
            space.distributions(),
            qmc_type=qmc_type,
            scramble=scramble,
            seed=seed,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
        )
    )


@SAMPLERS.register("tpe")
def tpe_sampler(
    space: SearchSpace,
    seed: int,
    *,
    n_startup_trials: int = 10,
    n_ei_candidates: int = 24,
    multivariate: bool = False,
    group: bool = False,
    constant_liar: bool = True,
) -> BaseSampler:
    """Tree-structured Parzen estimator; ``constant_liar`` spreads parallel suggestions."""
    return _quiet(
        lambda: optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            n_ei_candidates=n_ei_candidates,
            multivariate=multivariate,
            group=group,
            constant_liar=constant_liar,
        )
    )


@SAMPLERS.register("cmaes")
def cmaes_sampler(
    space: SearchSpace,
    seed: int,
    *,
    n_startup_trials: int = 1,
    sigma0: float | None = None,
    restart_strategy: str | None = None,
    popsize: int | None = None,
    use_separable_cma: bool = False,
    with_margin: bool = False,
    lr_adapt: bool = False,
    consider_pruned_trials: bool = False,
) -> BaseSampler:
    """CMA-ES (the ``cmaes`` package); categoricals are sampled at random."""
    return _quiet(
        lambda: optuna.samplers.CmaEsSampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            sigma0=sigma0,
            restart_strategy=restart_strategy,
            popsize=popsize,
            use_separable_cma=use_separable_cma,
            with_margin=with_margin,
            lr_adapt=lr_adapt,
            consider_pruned_trials=consider_pruned_trials,
            independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
        )
    )


@SAMPLERS.register("nsga2")
def nsga2_sampler(
    space: SearchSpace,
    seed: int,
    *,
    population_size: int = 50,
    mutation_prob: float | None = None,
    crossover_prob: float = 0.9,
    swapping_prob: float = 0.5,
) -> BaseSampler:
    """NSGA-II genetic algorithm, for multi-objective studies."""
    return optuna.samplers.NSGAIISampler(
        seed=seed,
        population_size=population_size,
        mutation_prob=mutation_prob,
        crossover_prob=crossover_prob,
        swapping_prob=swapping_prob,
    )


@SAMPLERS.register("gp")
def gp_sampler(
    space: SearchSpace,
    seed: int,
    *,
    n_startup_trials: int = 10,
    deterministic_objective: bool = False,
) -> BaseSampler:
    """Gaussian-process Bayesian optimization (needs PyTorch)."""
    check_sampler_available("gp")
    return _quiet(
        lambda: optuna.samplers.GPSampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            deterministic_objective=deterministic_objective,
        )
    )


def check_sampler_available(name: str) -> None:
    """Raise ConfigError when a sampler's optional dependency is missing (``gp`` needs torch).

    Checked with ``importlib.util.find_spec`` so that torch is never imported just to validate.
    """
    if name == "gp" and importlib.util.find_spec("torch") is None:
        raise ConfigError("search.sampler.name", name, f"an installed sampler: {_GP_MISSING}")


# -- pruners ----------------------------------------------------------------------------------


@PRUNERS.register("none")
def no_pruner(epochs: int | None) -> BasePruner:
    """Never prune."""
    return optuna.pruners.NopPruner()


@PRUNERS.register("median")
def median_pruner(
    epochs: int | None,
    *,
    n_startup_trials: int = 5,
    n_warmup_steps: int = 0,
    interval_steps: int = 1,
    n_min_trials: int = 1,
) -> BasePruner:
    """Prune when the trial is worse than the median of earlier trials at the same epoch."""
    return optuna.pruners.MedianPruner(
        n_startup_trials=n_startup_trials,
        n_warmup_steps=n_warmup_steps,
        interval_steps=interval_steps,
        n_min_trials=n_min_trials,
    )


@PRUNERS.register("successive_halving")
def successive_halving_pruner(
    epochs: int | None,
    *,
    min_resource: int = 1,
    reduction_factor: int = 4,
    min_early_stopping_rate: int = 0,
    bootstrap_count: int = 0,
) -> BasePruner:
    """Asynchronous successive halving; ``min_resource`` is fixed (Optuna's ``auto`` would
    depend on whichever trial finishes first)."""
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_resource,
        reduction_factor=reduction_factor,
        min_early_stopping_rate=min_early_stopping_rate,
        bootstrap_count=bootstrap_count,
    )


@PRUNERS.register("hyperband")
def hyperband_pruner(
    epochs: int | None,
    *,
    min_resource: int = 1,
    max_resource: int | None = None,
    reduction_factor: int = 3,
    bootstrap_count: int = 0,
) -> BasePruner:
    """Hyperband; ``max_resource`` defaults to the run config's ``train.epochs``."""
    return optuna.pruners.HyperbandPruner(
        min_resource=min_resource,
        max_resource=max_resource if max_resource is not None else (epochs or "auto"),
        reduction_factor=reduction_factor,
        bootstrap_count=bootstrap_count,
    )


@PRUNERS.register("wilcoxon")
def wilcoxon_pruner(
    epochs: int | None, *, p_threshold: float = 0.1, n_startup_steps: int = 2
) -> BasePruner:
    """Wilcoxon signed-rank test of the trial's per-step values against the best trial's."""
    return _quiet(
        lambda: optuna.pruners.WilcoxonPruner(
            p_threshold=p_threshold, n_startup_steps=n_startup_steps
        )
    )


# -- spec validation --------------------------------------------------------------------------


def _keyword_args(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return {
        name: p
        for name, p in inspect.signature(factory).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _spec_mapping(raw: Any, path: str, default_name: str) -> dict[str, Any]:
    if raw is None:
        return {"name": default_name}
    if isinstance(raw, str):
        return {"name": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "a name or a mapping {name: ..., <keyword arguments>}")
    out = dict(raw)
    out.setdefault("name", default_name)
    return out


def _canonical(registry: Registry[Any], name: Any, path: str) -> str:
    if not isinstance(name, str):
        raise ConfigError(path, name, f"one of {', '.join(registry.names())}")
    try:
        return registry.canonical(name)
    except UnknownNameError as exc:
        raise ConfigError(path, name, f"a registered {registry.kind} ({exc})") from None


def _check_kwargs(
    factory: Callable[..., Any], kwargs: Mapping[str, Any], path: str, what: str
) -> None:
    accepted = _keyword_args(factory)
    for key, value in kwargs.items():
        if key not in accepted or key in _RESERVED:
            allowed = ", ".join(accepted) or "none"
            raise ConfigError(f"{path}.{key}", value, f"an argument of {what}; accepted: {allowed}")


def normalize_sampler_spec(
    raw: Any,
    *,
    space: SearchSpace,
    default_seed: int,
    n_objectives: int,
    path: str = "search.sampler",
) -> dict[str, Any]:
    """Validate ``search.sampler`` and fill its defaults: ``{name, seed, **kwargs}``.

    The sampler is built once to surface bad argument values now rather than in the runner
    (except ``gp``, whose check avoids importing torch).
    """
    spec = _spec_mapping(raw, path, DEFAULT_SAMPLER)
    name = _canonical(SAMPLERS, spec["name"], f"{path}.name")
    spec["name"] = name
    check_sampler_available(name)
    seed = spec.setdefault("seed", default_seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{path}.seed", seed, "an integer >= 0 (default: the study seed)")
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "seed")}
    _check_kwargs(SAMPLERS.get(name), kwargs, path, f"sampler {name!r}")
    if n_objectives > 1 and name not in MULTI_OBJECTIVE_SAMPLERS:
        raise ConfigError(
            f"{path}.name",
            name,
            f"a sampler for several objectives: {', '.join(sorted(MULTI_OBJECTIVE_SAMPLERS))}",
        )
    if name != "gp":
        make_sampler(spec, space=space, path=path)
    return spec


def make_sampler(
    spec: Mapping[str, Any], *, space: SearchSpace, path: str = "search.sampler"
) -> BaseSampler:
    """Build the sampler of a normalized spec (see :func:`normalize_sampler_spec`)."""
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "seed")}
    factory = SAMPLERS.get(spec["name"])
    try:
        return factory(space, int(spec["seed"]), **kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(path, dict(spec), f"arguments Optuna accepts ({exc})") from None


def _direction(metric: str, objectives: Sequence[Mapping[str, Any]]) -> str:
    for obj in objectives:
        if obj["metric"] == metric:
            return str(obj["direction"])
    return "minimize" if direction_of(metric) == "min" else "maximize"


def normalize_pruner_spec(
    raw: Any,
    *,
    objectives: Sequence[Mapping[str, Any]],
    epochs: int,
    path: str = "search.pruner",
) -> dict[str, Any]:
    """Validate ``search.pruner`` and fill its defaults: ``{name, metric, **kwargs}``.

    ``metric`` defaults to the first objective's; it must improve in the study's direction.
    """
    spec = _spec_mapping(raw, path, "none")
    name = _canonical(PRUNERS, spec["name"], f"{path}.name")
    spec["name"] = name
    if name == "none":
        if set(spec) - {"name", "metric"}:
            extra = sorted(set(spec) - {"name", "metric"})[0]
            raise ConfigError(f"{path}.{extra}", spec[extra], "no arguments for pruner 'none'")
        spec["metric"] = spec.get("metric")
        return spec
    if len(objectives) > 1:
        raise ConfigError(
            f"{path}.name", name, "none (Optuna cannot prune a multi-objective study)"
        )
    metric = spec.setdefault("metric", objectives[0]["metric"])
    if not isinstance(metric, str) or "/" not in metric:
        raise ConfigError(f"{path}.metric", metric, "a per-epoch metric such as val/accuracy")
    study_direction = str(objectives[0]["direction"])
    if _direction(metric, objectives) != study_direction:
        raise ConfigError(
            f"{path}.metric",
            metric,
            f"a metric that improves in the study's direction ({study_direction}, from "
            f"{objectives[0]['metric']}); Optuna prunes in that direction",
        )
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "metric")}
    _check_kwargs(PRUNERS.get(name), kwargs, path, f"pruner {name!r}")
    if name == "hyperband" and spec.get("max_resource") is None:
        # explicit, so that a worker can rebuild the pruner from the spec alone
        spec["max_resource"] = max(epochs, int(spec.get("min_resource", 1)))
    make_pruner(spec, path=path)
    return spec


def make_pruner(
    spec: Mapping[str, Any] | None, *, epochs: int | None = None, path: str = "search.pruner"
) -> BasePruner:
    """Build the pruner of a normalized spec (see :func:`normalize_pruner_spec`).

    ``epochs`` is only needed for a hyperband spec without ``max_resource`` (normalized specs
    have it); None falls back to Optuna's ``auto``.
    """
    if spec is None:
        return optuna.pruners.NopPruner()
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "metric")}
    factory = PRUNERS.get(spec["name"])
    try:
        return factory(epochs, **kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(path, dict(spec), f"arguments Optuna accepts ({exc})") from None


def describe_samplers() -> list[dict[str, Any]]:
    """One row per sampler for ``harness list``: name, arguments, reproducible, multi-objective."""
    return [
        {
            "name": name,
            "arguments": {k: p.default for k, p in _keyword_args(factory).items()},
            "reproducible": name in REPRODUCIBLE_SAMPLERS,
            "multi_objective": name in MULTI_OBJECTIVE_SAMPLERS,
            "description": (inspect.getdoc(factory) or "").splitlines()[0],
        }
        for name, factory in SAMPLERS.items()
    ]


def describe_pruners() -> list[dict[str, Any]]:
    """One row per pruner for ``harness list``: name, arguments, description."""
    return [
        {
            "name": name,
            "arguments": {k: p.default for k, p in _keyword_args(factory).items()},
            "description": " ".join((inspect.getdoc(factory) or "").split()),
        }
        for name, factory in PRUNERS.items()
    ]
