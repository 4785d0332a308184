"""Number formatting shared by verdict explanations, tables and reports."""

from __future__ import annotations

import math

__all__ = ["fmt", "fmt_ci"]


def fmt(x: float | None, digits: int = 3) -> str:
    """``0.4213`` → ``0.421``; ``inf`` → ``∞``; NaN/None → ``n/a``; integers stay integers."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x.is_integer() and abs(x) < 1e6:
        return str(int(x))
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}"


def fmt_ci(low: float, high: float, digits: int = 3) -> str:
    """``[0.35, 0.5]`` style interval."""
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"
