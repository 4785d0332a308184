"""Argument checks shared by the zoo's components: one wording for every "bad value" error.

Each check names the owner (``"layer 'dropout'"``), the field, what is allowed and the value
received, e.g. ``layer 'dropout': rate must be a number in [0, 1), got 1.5``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def check_int(owner: str, field: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer >= ``minimum``; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {field} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(
    owner: str,
    field: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = True,
) -> float:
    """``value`` as a float if it is a finite real in the interval; else ValueError.

    The interval is ``[low, high)`` by default (``low_open``/``high_open`` toggle the ends);
    either end may be None.
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
    )
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            where = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            where = f"{'>' if low_open else '>='} {low:g}"
        elif high is not None:
            where = f"{'<' if high_open else '<='} {high:g}"
        else:
            where = "(finite)"
        raise ValueError(f"{owner}: {field} must be a number {where}, got {value!r}")
    return float(value)


def check_choice(owner: str, field: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``; else ValueError listing them."""
    if value not in allowed:
        raise ValueError(f"{owner}: {field} must be one of {list(allowed)}, got {value!r}")
    return str(value)
