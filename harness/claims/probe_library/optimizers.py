"""The toy-objective probe (O1, O2, erratum E2): an optimizer's path on a 2-D test function.

The run is :func:`models.objectives.optimize`; the probe turns the trajectory into the measures
of the catalogue and its points into per-step records (the paths-over-contour figure).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.claims.probes import PROBES, Probe, ProbeResult
from models import OPTIMIZERS
from models.objectives import OBJECTIVES, SeedAdaGrad, optimize
from models.registry import SpecError, UnknownNameError

__all__ = ["ToyDescent"]

#: Relative tolerance before a growing effective step counts as an increase (float rounding).
_EFF_TOL = 1e-9


@PROBES.register("toy_descent")
class ToyDescent(Probe):
    """``steps`` updates of ``optimizer`` on ``objective`` from ``start``.

    Parameters
    ----------
    objective : spec
        A name of :data:`models.objectives.OBJECTIVES` (``book_bowl`` is the book's x²/20 + y²).
    optimizer : spec
        A zoo optimizer spec (``{name: momentum, lr: 0.1}``), or ``{name: seed_adagrad, lr: …}``
        for seed 001's AdaGrad as printed (erratum E2).
    start : [x, y] or "random"
        The start point; ``random`` draws it uniformly from the objective's box with the
        replicate's generator (seeded random starts).

    Outputs: ``final_value``, ``value_ratio`` (final / start value), ``y_sign_changes``,
    ``x_sign_changes``, ``final_abs_y``, ``y_reached`` (1 when |y| < 1e-3 at the end),
    ``eff_step_increases`` (steps where some coordinate's effective step |Δp_i|/|g_i| grew),
    ``basin`` (index of the nearest minimum), ``global_basin`` (1 when that minimum is global),
    ``diverged``. Records: one per point (``step`` 0 = start) with ``x``, ``y``, ``f``,
    ``grad_norm``, ``eff_step_x``, ``eff_step_y``.
    """

    outputs = (
        "final_value",
        "value_ratio",
        "y_sign_changes",
        "x_sign_changes",
        "final_abs_y",
        "y_reached",
        "eff_step_increases",
        "basin",
        "global_basin",
        "diverged",
    )

    def __init__(
        self,
        *,
        objective: Any = "book_bowl",
        optimizer: Any = None,
        start: Any = (-7.0, 2.0),
        steps: int = 30,
    ) -> None:
        self.objective = objective
        self.optimizer = optimizer
        self.start = start
        self.steps = steps

    def _optimizer(self) -> Any:
        spec = self.optimizer if self.optimizer is not None else {"name": "sgd", "lr": 0.95}
        if isinstance(spec, dict) and spec.get("name") == SeedAdaGrad.registry_name:
            return SeedAdaGrad(**{k: v for k, v in spec.items() if k != "name"})
        return OPTIMIZERS.build(spec)

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self.positive_int("steps", self.steps)
        try:
            OBJECTIVES.build(self.objective)
        except (UnknownNameError, SpecError):
            out.append(("objective", self.objective, f"one of {', '.join(OBJECTIVES.names())}"))
        try:
            self._optimizer()
        except (UnknownNameError, SpecError, TypeError):
            names = [*OPTIMIZERS.names(), SeedAdaGrad.registry_name]
            out.append(
                ("optimizer", self.optimizer, f"an optimizer spec: one of {', '.join(names)}")
            )
        s = self.start
        if not (s == "random" or (isinstance(s, (list, tuple)) and len(s) == 2)):
            out.append(("start", s, "[x, y] or random"))
        return out

    def run(self, rng: np.random.Generator) -> ProbeResult:
        obj = OBJECTIVES.build(self.objective)
        start = obj.random_start(rng) if self.start == "random" else np.asarray(self.start, float)
        traj = optimize(obj, self._optimizer(), start=start, steps=int(self.steps))
        end = traj.points[-1]
        eff = traj.effective_steps()
        with np.errstate(invalid="ignore"):
            grew = np.diff(eff, axis=0) > _EFF_TOL * np.abs(eff[:-1])
        basin = obj.basin(end)
        f0 = float(traj.values[0])
        values = {
            "final_value": float(traj.values[-1]),
            "value_ratio": float(traj.values[-1]) / f0 if f0 != 0 else math.nan,
            "y_sign_changes": float(traj.sign_changes(1)),
            "x_sign_changes": float(traj.sign_changes(0)),
            "final_abs_y": float(abs(end[1])),
            "y_reached": float(abs(end[1]) < 1e-3),
            "eff_step_increases": float(np.any(grew, axis=1).sum()) if len(eff) > 1 else 0.0,
            "basin": float(basin),
            "global_basin": float(basin in obj.global_minima),
            "diverged": float(traj.diverged),
        }
        return ProbeResult(values, traj.records())
