"""Reusable per-layer work arrays, so a training step allocates (almost) nothing.

A layer asks for a named array of a given shape and dtype; the same array comes back while the
batch size stays the same. Arrays returned by ``forward``/``backward`` that live here are valid
until the layer's next call of the same kind, which is all a network needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array


class Scratch:
    """Named work arrays, reallocated only when the requested shape or dtype changes."""

    __slots__ = ("_arrays",)

    def __init__(self) -> None:
        self._arrays: dict[str, Array] = {}

    def empty(self, key: str, shape: tuple[int, ...], dtype: Any) -> Array:
        """An uninitialized array for ``key`` (contents are whatever the last user left)."""
        arr = self._arrays.get(key)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = np.empty(shape, dtype=dtype)
            self._arrays[key] = arr
        return arr

    def constant(self, key: str, shape: tuple[int, ...], dtype: Any, value: float) -> Array:
        """A read-only array filled with ``value`` (a constant operand of a ufunc or GEMV)."""
        arr = self._arrays.get(key)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = np.full(shape, value, dtype=dtype)
            arr.flags.writeable = False
            self._arrays[key] = arr
        return arr

    def zeros(self, key: str, shape: tuple[int, ...], dtype: Any) -> Array:
        """A read-only array of zeros (e.g. the second operand of ``np.maximum``)."""
        return self.constant(key, shape, dtype, 0.0)

    def ones(self, key: str, shape: tuple[int, ...], dtype: Any) -> Array:
        """A read-only array of ones (row or column sums as a GEMV)."""
        return self.constant(key, shape, dtype, 1.0)

    def clear(self) -> None:
        self._arrays.clear()
