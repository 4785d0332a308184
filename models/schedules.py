"""Learning-rate schedules, selectable by name: ``SCHEDULES.build({"name": "cosine", "total_steps": 1000})``.

A schedule maps the update step (0 for the first update) to a factor that multiplies the
optimizer's base ``lr``. Every schedule accepts ``total_steps`` (the harness passes it by
default), even those that do not use it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from ._checks import check_int, check_number
from .base import Component
from .registry import Registry, Spec

__all__ = [
    "SCHEDULES",
    "Constant",
    "Cosine",
    "Exponential",
    "Schedule",
    "StepDecay",
    "get_schedule",
]


class Schedule(Component, ABC):
    """``factor(step) -> float``: the multiplier of the base learning rate at update ``step``."""

    @abstractmethod
    def factor(self, step: int) -> float:
        """Learning-rate multiplier for the update with index ``step`` (0-based)."""


SCHEDULES: Registry[type[Schedule]] = Registry("schedule")


@SCHEDULES.register("constant")
class Constant(Schedule):
    """Factor 1 at every step."""

    def __init__(self, total_steps: int | None = None) -> None:
        self.total_steps = total_steps

    def factor(self, step: int) -> float:
        return 1.0


@SCHEDULES.register("step")
class StepDecay(Schedule):
    """Multiply by ``gamma`` every ``step_size`` updates: ``gamma ** (step // step_size)``."""

    def __init__(self, step_size: int, gamma: float = 0.1, total_steps: int | None = None) -> None:
        self.step_size = step_size
        self.gamma = gamma
        self.total_steps = total_steps

    def factor(self, step: int) -> float:
        check_int("schedule 'step'", "step_size", self.step_size)
        check_number("schedule 'step'", "gamma", self.gamma, low=0)
        return float(self.gamma) ** (step // self.step_size)


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    """Multiply by ``gamma`` at every update: ``gamma ** step``."""

    def __init__(self, gamma: float = 0.99, total_steps: int | None = None) -> None:
        self.gamma = gamma
        self.total_steps = total_steps

    def factor(self, step: int) -> float:
        check_number("schedule 'exponential'", "gamma", self.gamma, low=0)
        return float(self.gamma) ** step


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    """Cosine decay (Loshchilov & Hutter 2017, without restarts) from 1 to ``min_factor``.

    ``factor = min_factor + (1 − min_factor)·½(1 + cos(π·min(step, T)/T))`` with
    T = ``total_steps``; after T updates the factor stays at ``min_factor``.
    """

    def __init__(self, total_steps: int | None = None, min_factor: float = 0.0) -> None:
        self.total_steps = total_steps
        self.min_factor = min_factor

    def factor(self, step: int) -> float:
        if self.total_steps is None:
            raise ValueError(
                "schedule 'cosine': total_steps is required (the number of updates to decay over)"
            )
        check_int("schedule 'cosine'", "total_steps", self.total_steps)
        check_number(
            "schedule 'cosine'", "min_factor", self.min_factor, low=0, high=1, high_open=False
        )
        progress = min(step, self.total_steps) / self.total_steps
        lo = float(self.min_factor)
        return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * progress))


def get_schedule(spec: Spec | Schedule | None) -> Schedule:
    """A schedule from a spec or object; ``None`` means constant."""
    if spec is None:
        return Constant()
    if isinstance(spec, Schedule):
        return spec
    return SCHEDULES.build(spec)
