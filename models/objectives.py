"""Toy 2-D objectives optimized by the zoo's optimizers: trajectories, basins, sign changes.

The book's ``ch06/optimizer_compare_naive.py`` draws the paths of SGD, Momentum, AdaGrad and Adam
on ``f(x, y) = x²/20 + y²`` from (−7, 2). This module makes such objectives first-class: each is
a registered :class:`Objective` (value, gradient, known minima), and :func:`optimize` runs any
optimizer of :data:`models.optimizers.OPTIMIZERS` (or the seed's erroneous AdaGrad, erratum E2)
from a start point, returning the whole :class:`Trajectory`::

    from models.objectives import OBJECTIVES, optimize
    from models.optimizers import OPTIMIZERS
    traj = optimize(OBJECTIVES.build("book_bowl"), OPTIMIZERS.build({"name": "sgd", "lr": 0.95}),
                    start=(-7.0, 2.0), steps=30)
    traj.sign_changes(1), traj.values[-1]       # 30 zig-zags of y, f after 30 steps

Everything is float64 NumPy; the objectives know nothing of the harness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Array, Component, Optimizer
from .optimizers import BOOK_EPS, ParamDict
from .registry import Registry

__all__ = [
    "OBJECTIVES",
    "BookBowl",
    "Himmelblau",
    "Objective",
    "Rosenbrock",
    "SeedAdaGrad",
    "SixHumpCamel",
    "Trajectory",
    "optimize",
    "sign_changes",
]

OBJECTIVES: Registry[type[Objective]] = Registry("objective")


class Objective(Component):
    """A smooth function of a point ``p`` of shape (2,) with a known list of minima.

    Subclasses implement :meth:`value` and :meth:`gradient` and list their local minima in
    :attr:`minima` (global ones first in :attr:`global_minima`), so a run can be scored by where
    it ended (:meth:`basin`).
    """

    #: Local minima, shape (M, 2).
    minima: ClassVar[tuple[tuple[float, float], ...]] = ()
    #: Indices into :attr:`minima` of the global minima.
    global_minima: ClassVar[tuple[int, ...]] = (0,)
    #: A box ``((x_lo, x_hi), (y_lo, y_hi))`` that shows the interesting region (plots, random starts).
    box: ClassVar[tuple[tuple[float, float], tuple[float, float]]] = ((-10.0, 10.0), (-10.0, 10.0))

    def value(self, p: Array) -> float:
        raise NotImplementedError

    def gradient(self, p: Array) -> Array:
        raise NotImplementedError

    def grid(self, n: int = 200) -> tuple[Array, Array, Array]:
        """``(X, Y, Z)`` meshes over :attr:`box` for contour plots, each of shape (n, n)."""
        (x0, x1), (y0, y1) = self.box
        X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        Z = np.vectorize(lambda a, b: self.value(np.array([a, b])))(X, Y)
        return X, Y, Z

    def basin(self, p: Array) -> int:
        """Index of the minimum nearest to ``p`` (−1 when ``p`` is not finite)."""
        if not np.all(np.isfinite(p)):
            return -1
        m = np.asarray(self.minima, dtype=float)
        return int(np.argmin(np.sum((m - np.asarray(p, dtype=float)) ** 2, axis=1)))

    def random_start(self, rng: np.random.Generator) -> Array:
        """A start point drawn uniformly from :attr:`box`."""
        (x0, x1), (y0, y1) = self.box
        return np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])


@OBJECTIVES.register("book_bowl")
class BookBowl(Objective):
    """The book's ``f(x, y) = x²/20 + y²`` (``ch06/optimizer_compare_naive.py``): an elongated bowl
    whose y-curvature is 20× its x-curvature, so a step size good for x makes y zig-zag."""

    minima = ((0.0, 0.0),)
    box = ((-10.0, 10.0), (-5.0, 5.0))

    def value(self, p: Array) -> float:
        return float(p[0] ** 2 / 20.0 + p[1] ** 2)

    def gradient(self, p: Array) -> Array:
        return np.array([p[0] / 10.0, 2.0 * p[1]])


@OBJECTIVES.register("himmelblau")
class Himmelblau(Objective):
    """Himmelblau's function ``(x² + y − 11)² + (x + y² − 7)²``: four minima, all with value 0."""

    minima = (
        (3.0, 2.0),
        (-2.805118, 3.131312),
        (-3.779310, -3.283186),
        (3.584428, -1.848126),
    )
    global_minima = (0, 1, 2, 3)
    box = ((-5.0, 5.0), (-5.0, 5.0))

    def value(self, p: Array) -> float:
        x, y = float(p[0]), float(p[1])
        return (x * x + y - 11.0) ** 2 + (x + y * y - 7.0) ** 2

    def gradient(self, p: Array) -> Array:
        x, y = float(p[0]), float(p[1])
        a, b = x * x + y - 11.0, x + y * y - 7.0
        return np.array([4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b])


@OBJECTIVES.register("six_hump_camel")
class SixHumpCamel(Objective):
    """The six-hump camel ``(4 − 2.1x² + x⁴/3)x² + xy + (−4 + 4y²)y²``: two global minima
    (value −1.0316) and four local ones, so *which* minimum a run reaches is a real question."""

    minima = (
        (0.089842, -0.712656),
        (-0.089842, 0.712656),
        (-1.703607, 0.796084),
        (1.703607, -0.796084),
        (-1.607105, -0.568651),
        (1.607105, 0.568651),
    )
    global_minima = (0, 1)
    box = ((-2.0, 2.0), (-1.0, 1.0))

    def value(self, p: Array) -> float:
        x, y = float(p[0]), float(p[1])
        return (4.0 - 2.1 * x * x + x**4 / 3.0) * x * x + x * y + (-4.0 + 4.0 * y * y) * y * y

    def gradient(self, p: Array) -> Array:
        x, y = float(p[0]), float(p[1])
        dx = 8.0 * x - 8.4 * x**3 + 2.0 * x**5 + y
        dy = x - 8.0 * y + 16.0 * y**3
        return np.array([dx, dy])


@OBJECTIVES.register("rosenbrock")
class Rosenbrock(Objective):
    """Rosenbrock's valley ``(1 − x)² + 100(y − x²)²``: one minimum at (1, 1) in a curved valley."""

    minima = ((1.0, 1.0),)
    box = ((-2.0, 2.0), (-1.0, 3.0))

    def value(self, p: Array) -> float:
        x, y = float(p[0]), float(p[1])
        return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2

    def gradient(self, p: Array) -> Array:
        x, y = float(p[0]), float(p[1])
        return np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


class SeedAdaGrad(Optimizer):
    """The AdaGrad update as printed in seed 001 (erratum E2), kept only to run it beside the
    correct one: ``h += g²; p -= lr · h / (√h + 1e-7)``.

    The numerator should be the gradient (the book's ``common/optimizer.py``). As printed, every
    parameter moves by about ``−lr·√h`` whatever the sign of its gradient, so the update cannot
    minimise even ``x²/20 + y²``. Deliberately not registered in ``OPTIMIZERS``: it is an
    erratum, not a component a study should pick.
    """

    registry_name = "seed_adagrad"

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr
        self.iterations = 0
        self._h: dict[str, Array] = {}

    @property
    def current_lr(self) -> float:
        return float(self.lr)

    def update(self, params: Any, grads: Any) -> None:
        for key, p in params.items():
            h = self._h.setdefault(key, np.zeros_like(p))
            h += grads[key] * grads[key]
            p -= self.lr * h / (np.sqrt(h) + BOOK_EPS)
        self.iterations += 1


def sign_changes(v: Array) -> int:
    """How often the sign of a sequence flips (exact zeros are skipped, not counted)."""
    s = np.sign(np.asarray(v, dtype=float))
    s = s[s != 0]
    return int(np.sum(s[1:] != s[:-1]))


@dataclass
class Trajectory:
    """A path of :func:`optimize`: ``points`` (T+1, 2) from the start, ``values`` (T+1,),
    ``grads`` (T+1, 2) at each point and ``steps`` (T, 2) = the update applied at each step."""

    points: Array
    values: Array
    grads: Array
    diverged: bool = False

    @property
    def steps(self) -> Array:
        return np.diff(self.points, axis=0)

    def sign_changes(self, coordinate: int) -> int:
        """Sign flips of one coordinate along the path (start included)."""
        return sign_changes(self.points[:, coordinate])

    def effective_steps(self) -> Array:
        """Per-coordinate step per unit gradient, ``|Δp_i| / |g_i|`` (T, 2): for SGD its lr, for
        AdaGrad ``lr / (√h_i + eps)``; NaN where the gradient is exactly 0."""
        g = np.abs(self.grads[:-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(g > 0, np.abs(self.steps) / g, np.nan)

    def records(self) -> list[dict[str, float]]:
        """One record per point: ``step`` (0 = start), ``x``, ``y``, ``f``, ``grad_norm`` and the
        effective step per coordinate of the update that led there."""
        eff = self.effective_steps()
        out = []
        for t in range(len(self.points)):
            rec = {
                "step": float(t),
                "x": float(self.points[t, 0]),
                "y": float(self.points[t, 1]),
                "f": float(self.values[t]),
                "grad_norm": float(np.linalg.norm(self.grads[t])),
                "eff_step_x": math.nan if t == 0 else float(eff[t - 1, 0]),
                "eff_step_y": math.nan if t == 0 else float(eff[t - 1, 1]),
            }
            out.append(rec)
        return out


#: Beyond this |coordinate| a toy run has diverged (the bowl's box is ±10).
DIVERGED_AT = 1e8


def optimize(
    objective: Objective, optimizer: Optimizer, *, start: Array | tuple[float, float], steps: int
) -> Trajectory:
    """Run ``steps`` updates of ``optimizer`` on ``objective`` from ``start``.

    The point is a ``{"p": array (2,)}`` parameter dict, exactly what a network hands the
    optimizer, so the zoo's update rules run unchanged. A path that leaves ±1e8 or becomes
    non-finite stops there and is marked ``diverged``.
    """
    p = np.array(start, dtype=np.float64).reshape(2)
    params = ParamDict(p=p)
    points, values, grads = [p.copy()], [objective.value(p)], [objective.gradient(p)]
    diverged = False
    for _ in range(int(steps)):
        optimizer.update(params, {"p": grads[-1].copy()})
        if not np.all(np.isfinite(p)) or np.max(np.abs(p)) > DIVERGED_AT:
            diverged = True
            break
        points.append(p.copy())
        values.append(objective.value(p))
        grads.append(objective.gradient(p))
    return Trajectory(np.array(points), np.array(values), np.array(grads), diverged)
