"""Studies: study files, search spaces, samplers and pruners (and, in ``plots``, study plots).

``load_study(path, overrides)`` gives a validated :class:`StudySpec`; its ``search`` space turns an
Optuna trial into a resolved run config with :meth:`SearchSpace.suggest`. Plotting lives in
:mod:`harness.study.plots` and is imported on demand (it pulls in matplotlib).
"""

from __future__ import annotations

from harness.study.samplers import (
    DEFAULT_SAMPLER,
    MULTI_OBJECTIVE_SAMPLERS,
    PRUNERS,
    REPRODUCIBLE_SAMPLERS,
    SAMPLERS,
    check_sampler_available,
    describe_pruners,
    describe_samplers,
    make_pruner,
    make_sampler,
)
from harness.study.space import Param, SafeExpression, SearchSpace, choice_label
from harness.study.spec import (
    DIRECTIONS,
    REDUCTIONS,
    ROLES,
    Objective,
    StudySpec,
    apply_study_overrides,
    load_study,
    objective_value,
    parse_study,
    study_paths,
)

__all__ = [
    "DEFAULT_SAMPLER",
    "DIRECTIONS",
    "MULTI_OBJECTIVE_SAMPLERS",
    "PRUNERS",
    "REDUCTIONS",
    "REPRODUCIBLE_SAMPLERS",
    "ROLES",
    "SAMPLERS",
    "Objective",
    "Param",
    "SafeExpression",
    "SearchSpace",
    "StudySpec",
    "apply_study_overrides",
    "check_sampler_available",
    "choice_label",
    "describe_pruners",
    "describe_samplers",
    "load_study",
    "make_pruner",
    "make_sampler",
    "objective_value",
    "parse_study",
    "study_paths",
]
