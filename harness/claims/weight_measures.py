"""Measures of what ``train.record`` records: trained weights, unit activity, step-loss noise, gaps.

The runs must record the keys (see :mod:`harness.run_records`): a claim that uses these measures
sets ``train.record`` in its study. Each measure is a registered :class:`Measure`::

    measures:
      unit_diff: {name: weight_stat, stat: unit_diff, layers: first, epoch: last}   # I1
      collapse:  {name: weight_stat, stat: collapse_error}                          # A13
      dead:      {name: unit_stat, stat: dead, how: mean}                           # A7
      revived_1: {name: unit_stat, stat: revived, layers: first}                    # A7
      noise:     {name: step_noise, stat: std, source: full}                        # B6
      gap:       {name: metric_gap, a: train/accuracy, b: val/accuracy}             # A8, R2

``layers`` picks layers by position in the network (``first``, ``last``, an index such as
``1`` or ``-1``), by name (``relu_3``), a list of those, or ``all``; ``how`` reduces over the
picked layers. ``epoch`` is an epoch number (0 = at init) or ``last``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import pandas as pd

from harness.claims.measures import MEASURES, LayerStat, Measure, MissingMetricError, _series

__all__ = ["MetricGap", "StepNoise", "UnitStat", "WeightStat"]

#: ``stat`` of :class:`WeightStat` → the recorded key prefix
WEIGHT_STATS = {"near_zero": "w_near_zero/", "unit_diff": "w_unit_diff/"}
#: ``stat`` of :class:`UnitStat` → the recorded key prefix
UNIT_STATS = {
    "dead": "dead/",
    "active_rate": "active_rate/",
    "revived": "revived/",
    "dead_ref": "dead_ref/",
}
STEP_STATS = ("std", "mean", "rel_std", "increase_fraction")
_HOW = ("mean", "median", "min", "max")


class _RecordedLayerStat(LayerStat):
    """A :class:`LayerStat` whose prefix follows from ``stat``; ``epoch`` defaults to ``last``.

    A subclass names its ``stat`` values (``_stats``), the ``train.record`` key that records
    them (``_what``), the prefix of a ``stat`` without one (``_other_prefix``) and the default
    reduction over layers (``_how``, taken when ``how`` is not given).
    """

    _stats: ClassVar[dict[str, str]] = {}
    _what: ClassVar[str] = ""
    _other_prefix: ClassVar[str] = ""
    _how: ClassVar[str] = "mean"

    def __init__(
        self,
        *,
        stat: str,
        layers: Any = "all",
        how: str | None = None,
        epoch: Any = "last",
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.stat = stat
        self.layers = layers
        self.how = self._how if how is None else how
        self.epoch = epoch
        self.on_diverged = on_diverged
        self.label = label
        self.prefix = self._stats.get(stat) or self._other_prefix
        self.suffix = ""

    def validate(self) -> list[tuple[str, Any, str]]:
        return self._validate_layer() + self._validate_stat() + self._validate_how()

    def _validate_stat(self) -> list[tuple[str, Any, str]]:
        if self.stat not in self._stats:
            return [("stat", self.stat, f"one of {', '.join(self._stats)}")]
        return []

    def _validate_how(self) -> list[tuple[str, Any, str]]:
        return [] if self.how in _HOW else [("how", self.how, ", ".join(_HOW))]

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        try:
            return super().raw(run, curve)
        except MissingMetricError as exc:
            raise MissingMetricError(
                f"{exc.args[0]} (set train.record.{self._what}: true in the study)"
            ) from None


@MEASURES.register("weight_stat")
class WeightStat(_RecordedLayerStat):
    """A statistic of the trained weights (``train.record.weights``).

    ``stat``: ``near_zero`` (fraction of weights with |w| < ``train.record.near_zero``),
    ``unit_diff`` (largest difference between two units of a layer: 0 when every unit is the
    same) or ``collapse_error`` (max |deep linear net − its collapsed single map| on the training
    inputs; ``layers``/``how`` do not apply).
    """

    _stats: ClassVar[dict[str, str]] = {**WEIGHT_STATS, "collapse_error": ""}
    _what: ClassVar[str] = "weights"
    _other_prefix: ClassVar[str] = "w_"
    _how: ClassVar[str] = "max"

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        if self.stat == "collapse_error":
            if "w_collapse_error" not in curve.columns:
                raise MissingMetricError(
                    "w_collapse_error (set train.record.weights: true in the study)"
                )
            row = self._row(curve)
            return math.nan if row is None else float(row["w_collapse_error"])
        return super().raw(run, curve)


@MEASURES.register("unit_stat")
class UnitStat(_RecordedLayerStat):
    """Per-layer unit activity over the whole training set (``train.record.units``).

    ``stat``: ``dead`` (fraction of units with zero gradient on every training sample),
    ``active_rate`` (fraction of (sample, unit) pairs with a non-zero gradient),
    ``dead_ref`` (fraction dead at ``train.record.units_from``), ``revived`` (fraction of those
    alive again at ``epoch``). Only ReLU-family layers have these keys.
    """

    _stats: ClassVar[dict[str, str]] = UNIT_STATS
    _what: ClassVar[str] = "units"
    _other_prefix: ClassVar[str] = "dead/"
    _how: ClassVar[str] = "mean"


@MEASURES.register("step_noise")
class StepNoise(Measure):
    """Loss statistics over the last ``train.record.step_window`` optimizer steps.

    ``source: batch`` reads the mini-batch losses, ``full`` the full training loss after each of
    the run's last steps (``train.record.step_full_loss: true``); ``stat`` is one of ``std``,
    ``mean``, ``rel_std`` (std / mean) and ``increase_fraction`` (share of steps whose loss rose).
    Read at the last recorded epoch.
    """

    def __init__(
        self,
        *,
        stat: str = "std",
        source: str = "batch",
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.stat = stat
        self.source = source
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.stat not in STEP_STATS:
            out.append(("stat", self.stat, f"one of {', '.join(STEP_STATS)}"))
        if self.source not in ("batch", "full"):
            out.append(("source", self.source, "batch or full"))
        return out

    @property
    def column(self) -> str:
        return f"{'step_loss' if self.source == 'batch' else 'step_full_loss'}/{self.stat}"

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        if self.column not in curve.columns:
            need = "step_window: N" + (", step_full_loss: true" if self.source == "full" else "")
            raise MissingMetricError(f"{self.column} (set train.record {{{need}}} in the study)")
        s = curve[self.column].astype(float).dropna()
        return float(s.iloc[-1]) if len(s) else math.nan


@MEASURES.register("metric_gap")
class MetricGap(Measure):
    """``a − b`` of two metrics at the last epoch, e.g. the train − validation accuracy gap.

    ``at: final`` (default) reads both at the last epoch; ``at: best_b`` reads both at the epoch
    where ``b`` is best (``mode`` says whether higher or lower ``b`` is better).
    """

    def __init__(
        self,
        *,
        a: str = "train/accuracy",
        b: str = "val/accuracy",
        at: str = "final",
        mode: str = "max",
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.a = a
        self.b = b
        self.at = at
        self.mode = mode
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.at not in ("final", "best_b"):
            out.append(("at", self.at, "final or best_b"))
        if self.mode not in ("max", "min"):
            out.append(("mode", self.mode, "max or min"))
        return out

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        a, b = _series(run, curve, self.a), _series(run, curve, self.b)
        ok = a.notna() & b.notna()
        if not ok.any():
            return math.nan
        a, b = a[ok], b[ok]
        if self.at == "final":
            return float(a.iloc[-1] - b.iloc[-1])
        pos = int(b.to_numpy().argmax() if self.mode == "max" else b.to_numpy().argmin())
        return float(a.iloc[pos] - b.iloc[pos])
