"""Per-run scalar measures computed from a run's curve (and its summary row): a registry.

A claim file names its measures and configures each from :data:`MEASURES`::

    measures:
      final_acc: {name: final, metric: val/accuracy, on_diverged: 0.1}
      epochs_to_target: {name: epochs_to, metric: val/accuracy, target: 0.95}
      grad_ratio: {name: layer_ratio, prefix: "grad_norm/", epoch: 0}

Conventions every measure follows:

- *Not reached* is ``inf`` (``epochs_to``, ``time_to``, ``steps_to``); medians and ranks handle it.
- A run with status ``failed`` has no measure (NaN; it counts as a failed run).
- A ``diverged`` run gets ``on_diverged``: ``"inf"`` (the default of the *-to-target measures: a
  diverged run did not reach the target, even if it passed it before diverging), ``"nan"``
  (the default elsewhere: counted as failed), ``"-inf"``, ``"value"`` (the value computed from its
  curve) or a number (e.g. ``0.1``, chance accuracy on ten classes).
- A metric missing from both the curves and the summary row is an error, not NaN.

Adding a measure: subclass :class:`Measure` with keyword-only ``__init__`` arguments stored under
the same names, implement :meth:`Measure.raw`, register it with ``@MEASURES.register("name")``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.claims.errors import ClaimError
from harness.claims.results import RUN_KEYS, RunTable
from models.base import Component
from models.registry import Registry

__all__ = [
    "MEASURES",
    "Measure",
    "MissingMetricError",
    "censor_column",
    "compute_measures",
    "layer_columns",
]

MEASURES: Registry[type[Measure]] = Registry("measure")

_ON_DIVERGED = ("nan", "inf", "-inf", "value")
_MODES = (">=", "<=")
_REDUCERS = ("mean", "median", "min", "max", "first", "last")


class MissingMetricError(KeyError):
    """A measure's metric is in neither the curves nor the summary row."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Measure(Component):
    """A scalar per run. Subclasses implement :meth:`raw`; the base applies the status rules."""

    #: ``on_diverged`` when the claim file does not say.
    default_on_diverged: str = "nan"

    on_diverged: Any
    label: str | None

    def validate(self) -> list[tuple[str, Any, str]]:
        """Problems as ``(argument, value, allowed)``; empty when the configuration is valid."""
        problems: list[tuple[str, Any, str]] = []
        od = self.on_diverged
        if od is not None and not (_is_number(od) or od in _ON_DIVERGED):
            problems.append(("on_diverged", od, f"a number or one of {', '.join(_ON_DIVERGED)}"))
        return problems

    def prepare(self, curves: pd.DataFrame, runs: pd.DataFrame) -> None:
        """Resolve anything that depends on all runs of the claim (e.g. a relative target)."""

    def run_dependent(self) -> tuple[str, Any] | None:
        """``(argument, value)`` that :meth:`prepare` resolves per set of runs, or None.

        Such a measure means something else in each set of runs (0.9 × the best accuracy of
        *these* runs), so a pool of protocols with different runs refuses it.
        """
        return None

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        """The value from the run's summary row and its curve (rows sorted by epoch)."""
        raise NotImplementedError

    def value(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        """:meth:`raw` with the status rules of the module docstring applied."""
        status = str(run.get("status", "completed"))
        if status == "failed":
            return math.nan
        if status == "diverged":
            rule = self.default_on_diverged if self.on_diverged is None else self.on_diverged
            if _is_number(rule):
                return float(rule)
            if rule != "value":
                return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[rule]
        return float(self.raw(run, curve))

    def censor(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        """The value this run would have had at the end of its budget (NaN: no such value).

        For the *-to-target measures, a run that never reaches the target has ``inf``; its true
        value lies beyond the budget it trained for, which this returns (the last epoch, the
        total train-step time, the steps taken). Reports turn an ``inf`` into a bound with it.
        """
        return math.nan

    def describe(self) -> str:
        """What the measure is, for reports."""
        cfg = self.get_config()
        name = cfg.pop("name")
        args = ", ".join(f"{k}={v}" for k, v in cfg.items() if v is not None and k != "label")
        return f"{name}({args})"

    @property
    def unit(self) -> str:
        """Unit hint for axis labels ("" when dimensionless)."""
        return ""


def _series(run: Mapping[str, Any], curve: pd.DataFrame, metric: str) -> pd.Series:
    if metric in curve.columns:
        return curve[metric].astype(float)
    raise MissingMetricError(metric)


def _summary(run: Mapping[str, Any], metric: str, prefix: str) -> float:
    for key in (f"{prefix}{metric}", metric):
        if key in run:
            v = run[key]
            return math.nan if v is None else float(v)
    raise MissingMetricError(metric)


@MEASURES.register("final")
class Final(Measure):
    """The metric after the last epoch (from the curve; else the ``final/<metric>`` column)."""

    def __init__(self, *, metric: str, on_diverged: Any = None, label: str | None = None) -> None:
        self.metric = metric
        self.on_diverged = on_diverged
        self.label = label

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        if self.metric in curve.columns and len(curve):
            return float(curve[self.metric].iloc[-1])
        return _summary(run, self.metric, "final/")


@MEASURES.register("best")
class Best(Measure):
    """The best value of the metric over epochs (``mode: max`` or ``min``)."""

    def __init__(
        self, *, metric: str, mode: str = "max", on_diverged: Any = None, label: str | None = None
    ) -> None:
        self.metric = metric
        self.mode = mode
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.mode not in ("max", "min"):
            out.append(("mode", self.mode, "max or min"))
        return out

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        if self.metric in curve.columns and len(curve):
            s = curve[self.metric].astype(float)
            if s.isna().all():
                return math.nan
            return float(s.max() if self.mode == "max" else s.min())
        return _summary(run, self.metric, "best/")


@MEASURES.register("at_epoch")
class AtEpoch(Measure):
    """The metric at one epoch (0 = at init)."""

    def __init__(
        self, *, metric: str, epoch: int = 0, on_diverged: Any = None, label: str | None = None
    ) -> None:
        self.metric = metric
        self.epoch = epoch
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if not isinstance(self.epoch, int) or isinstance(self.epoch, bool) or self.epoch < 0:
            out.append(("epoch", self.epoch, "an integer >= 0"))
        return out

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        s = _series(run, curve, self.metric)
        rows = s[curve["epoch"] == self.epoch]
        return float(rows.iloc[0]) if len(rows) else math.nan


@MEASURES.register("aggregate")
class Aggregate(Measure):
    """A reduction of the metric over a range of epochs, e.g. the median throughput.

    ``from_epoch`` defaults to 1 (skips the at-init row); ``to_epoch`` is inclusive.
    """

    def __init__(
        self,
        *,
        metric: str,
        how: str = "median",
        from_epoch: int = 1,
        to_epoch: int | None = None,
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.metric = metric
        self.how = how
        self.from_epoch = from_epoch
        self.to_epoch = to_epoch
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.how not in _REDUCERS:
            out.append(("how", self.how, f"one of {', '.join(_REDUCERS)}"))
        return out

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        if self.metric not in curve.columns:
            return _summary(run, self.metric, "")
        ep = curve["epoch"]
        keep = ep >= self.from_epoch
        if self.to_epoch is not None:
            keep &= ep <= self.to_epoch
        s = curve.loc[keep, self.metric].astype(float).dropna()
        if s.empty:
            return math.nan
        if self.how in ("first", "last"):
            return float(s.iloc[0] if self.how == "first" else s.iloc[-1])
        return float(getattr(s, self.how)())


class _ToTarget(Measure):
    """Shared target logic: an absolute ``target`` or ``{fraction_of_best: f}``."""

    default_on_diverged = "inf"
    metric: str
    target: Any
    mode: str

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if self.mode not in _MODES:
            out.append(("mode", self.mode, "'>=' (higher is better) or '<=' (lower is better)"))
        t = self.target
        if isinstance(t, Mapping):
            f: Any = t.get("fraction_of_best")
            if set(t) != {"fraction_of_best"} or not _is_number(f) or not 0 < f <= 1:
                out.append(("target", t, "a number or {fraction_of_best: f} with 0 < f <= 1"))
            elif self.mode != ">=":
                out.append(("target", t, "an absolute number when mode is '<='"))
        elif not _is_number(t):
            out.append(("target", t, "a number or {fraction_of_best: f}"))
        return out

    def run_dependent(self) -> tuple[str, Any] | None:
        return ("target", dict(self.target)) if isinstance(self.target, Mapping) else None

    def prepare(self, curves: pd.DataFrame, runs: pd.DataFrame) -> None:
        self._target = self.target
        if isinstance(self.target, Mapping):
            if self.metric not in curves.columns:
                raise MissingMetricError(self.metric)
            ok = runs.loc[runs["status"] != "failed", list(RUN_KEYS)]
            sub = curves.merge(ok, on=list(RUN_KEYS))
            best = float(np.nanmax(sub[self.metric].to_numpy(dtype=float))) if len(sub) else np.nan
            self._target = float(self.target["fraction_of_best"]) * best

    @property
    def resolved_target(self) -> float:
        t = getattr(self, "_target", self.target)
        return float(t) if _is_number(t) else math.nan

    def _reached(self, run: Mapping[str, Any], curve: pd.DataFrame) -> int | None:
        """Row position of the first epoch at target, or None."""
        s = _series(run, curve, self.metric).to_numpy()
        t = self.resolved_target
        with np.errstate(invalid="ignore"):
            hit = s >= t if self.mode == ">=" else s <= t
        idx = np.flatnonzero(hit)
        return int(idx[0]) if idx.size else None

    def describe(self) -> str:
        t = self.target
        tt = f"{t['fraction_of_best']}×best" if isinstance(t, Mapping) else f"{t}"
        if isinstance(t, Mapping) and math.isfinite(self.resolved_target):
            tt += f" = {self.resolved_target:.4g}"
        return f"{type(self).registry_name}({self.metric} {self.mode} {tt})"


@MEASURES.register("epochs_to")
class EpochsTo(_ToTarget):
    """First epoch at which the metric reaches the target (``inf`` when never)."""

    def __init__(
        self,
        *,
        metric: str,
        target: Any,
        mode: str = ">=",
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.metric = metric
        self.target = target
        self.mode = mode
        self.on_diverged = on_diverged
        self.label = label

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        pos = self._reached(run, curve)
        return math.inf if pos is None else float(curve["epoch"].iloc[pos])

    @property
    def unit(self) -> str:
        return "epochs"

    def censor(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        return float(curve["epoch"].max()) if len(curve) else math.nan


@MEASURES.register("time_to")
class TimeTo(_ToTarget):
    """Training-step seconds until the metric reaches the target (``inf`` when never).

    Sums ``time_metric`` (per-epoch train-step seconds, evaluation excluded) over the epochs up to
    and including the one at target; the at-init row contributes nothing.
    """

    def __init__(
        self,
        *,
        metric: str,
        target: Any,
        mode: str = ">=",
        time_metric: str = "time/epoch_train_s",
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.metric = metric
        self.target = target
        self.mode = mode
        self.time_metric = time_metric
        self.on_diverged = on_diverged
        self.label = label

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        pos = self._reached(run, curve)
        if pos is None:
            return math.inf
        t = _series(run, curve, self.time_metric).to_numpy()[: pos + 1]
        ep = curve["epoch"].to_numpy()[: pos + 1]
        t = np.where(ep == 0, 0.0, t)
        return math.nan if np.isnan(t).any() else float(t.sum())

    @property
    def unit(self) -> str:
        return "s"

    def censor(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        if not len(curve) or self.time_metric not in curve:
            return math.nan
        t = curve[self.time_metric].to_numpy(dtype=float)
        t = np.where(curve["epoch"].to_numpy() == 0, 0.0, t)
        return math.nan if np.isnan(t).any() else float(t.sum())


@MEASURES.register("steps_to")
class StepsTo(_ToTarget):
    """Optimizer steps until the target: epochs × ⌈n_train / batch size⌉ (``inf`` when never)."""

    def __init__(
        self,
        *,
        metric: str,
        target: Any,
        n_train: int,
        batch_param: str = "train.batch_size",
        mode: str = ">=",
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.metric = metric
        self.target = target
        self.n_train = n_train
        self.batch_param = batch_param
        self.mode = mode
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if not isinstance(self.n_train, int) or self.n_train < 1:
            out.append(("n_train", self.n_train, "an integer >= 1"))
        return out

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        pos = self._reached(run, curve)
        if pos is None:
            return math.inf
        if self.batch_param not in run:
            raise MissingMetricError(self.batch_param)
        batch = min(int(run[self.batch_param]), self.n_train)
        return float(curve["epoch"].iloc[pos]) * math.ceil(self.n_train / batch)

    @property
    def unit(self) -> str:
        return "steps"

    def censor(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        if not len(curve) or self.batch_param not in run:
            return math.nan
        batch = min(int(run[self.batch_param]), self.n_train)
        return float(curve["epoch"].max()) * math.ceil(self.n_train / batch)


@MEASURES.register("summary")
class Summary(Measure):
    """A column of the run's summary row, e.g. ``time/train_s``."""

    def __init__(self, *, column: str, on_diverged: Any = None, label: str | None = None) -> None:
        self.column = column
        self.on_diverged = on_diverged
        self.label = label

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        return _summary(run, self.column, "")


_SUFFIX_NUM = re.compile(r"(\d+)$")


_LABEL_RE = re.compile(r"^(\w+)\((.*)\)$")


def _loss_spec(value: Any) -> Any:
    """A loss spec from a runs-table value: a name, a mapping, or a label ``mse(output=softmax)``."""
    if isinstance(value, Mapping):
        return dict(value)
    text = str(value)
    m = _LABEL_RE.match(text)
    if not m:
        return text
    spec: dict[str, Any] = {"name": m.group(1)}
    for part in filter(None, (x.strip() for x in m.group(2).split(","))):
        k, _, v = part.partition("=")
        spec[k.strip()] = v.strip()
    return spec


@MEASURES.register("saturated_output_grad")
class SaturatedOutputGrad(Measure):
    """|∂L/∂z| of the run's loss at a saturated output: a deterministic property of the loss.

    The output layer's raw value for the true class is ``z`` (−10: the unit is saturated on the
    wrong side), the other ``n_classes − 1`` outputs are 0, the target is the true class. The
    loss (read from the run's ``param``, e.g. ``train.loss``) is the zoo's own implementation, so
    this is the gradient the trainer would back-propagate from such a start. It does not depend
    on the seed or the training curve; catalogue L3's "deterministic" part.
    """

    def __init__(
        self,
        *,
        param: str = "train.loss",
        z: float = -10.0,
        n_classes: int = 10,
        on_diverged: Any = "value",
        label: str | None = None,
    ) -> None:
        self.param = param
        self.z = z
        self.n_classes = n_classes
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if not _is_number(self.z):
            out.append(("z", self.z, "a number (the saturated raw output, e.g. -10)"))
        if not isinstance(self.n_classes, int) or self.n_classes < 1:
            out.append(("n_classes", self.n_classes, "an integer >= 1"))
        return out

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        from models.losses import LOSSES

        if self.param not in run:
            raise MissingMetricError(self.param)
        loss = LOSSES.build(_loss_spec(run[self.param]))
        y = np.zeros((1, self.n_classes))
        y[0, 0] = float(self.z)
        target = np.zeros(1, dtype=np.int64) if self.n_classes > 1 else np.ones((1, 1))
        loss.forward(y, target)
        return float(abs(loss.backward()[0, 0]))

    def describe(self) -> str:
        return f"saturated_output_grad(|∂L/∂z| at z = {self.z}, {self.n_classes} outputs)"


def layer_columns(columns: Any, prefix: str, suffix: str = "") -> list[str]:
    """Telemetry columns ``<prefix><layer><suffix>`` in network order (by the layer's number).

    ``layer_columns(cols, "grad_norm/", ".W")`` → ``["grad_norm/dense_0.W", "grad_norm/dense_2.W"]``.
    """
    found = []
    for c in map(str, columns):
        if not c.startswith(prefix) or not c.endswith(suffix):
            continue
        layer = c[len(prefix) : len(c) - len(suffix) if suffix else None]
        layer = layer.split(".")[0]
        m = _SUFFIX_NUM.search(layer)
        found.append((int(m.group(1)) if m else 10**9, c))
    return [c for _, c in sorted(found)]


def _layer_name(column: str, prefix: str) -> str:
    return column[len(prefix) :]


class _LayerMeasure(Measure):
    prefix: str
    suffix: str
    epoch: Any

    def _row(self, curve: pd.DataFrame) -> pd.Series | None:
        if self.epoch == "last":
            return curve.iloc[-1] if len(curve) else None
        rows = curve[curve["epoch"] == self.epoch]
        return rows.iloc[0] if len(rows) else None

    def _columns(self, curve: pd.DataFrame) -> list[str]:
        """This run's layer columns. A table mixing depths has columns for the deepest net;
        a shallower run's extra columns are all NaN and are not its layers."""
        cols = layer_columns(curve.columns, self.prefix, self.suffix)
        if not cols:
            raise MissingMetricError(f"{self.prefix}<layer>{self.suffix}")
        recorded = curve[cols].notna().any(axis=0)
        return [c for c in cols if recorded[c]]

    def _validate_layer(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        e = self.epoch
        if not (e == "last" or (isinstance(e, int) and not isinstance(e, bool) and e >= 0)):
            out.append(("epoch", e, "an integer >= 0 (0 = at init) or 'last'"))
        return out

    @staticmethod
    def _pick(cols: list[str], which: Any) -> str | None:
        if which == "first":
            return cols[0]
        if which == "last":
            return cols[-1]
        if isinstance(which, int) and not isinstance(which, bool):
            return cols[which] if -len(cols) <= which < len(cols) else None
        return next((c for c in cols if str(which) in c), None)


@MEASURES.register("layer_ratio")
class LayerRatio(_LayerMeasure):
    """Ratio of a per-layer telemetry value between two layers at one epoch.

    The vanishing-gradient statistic R = ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖ is
    ``{name: layer_ratio, prefix: "grad_norm/", suffix: ".W", numerator: first,
    denominator: last, epoch: 0}``. Layers are ordered by the number that ends their name;
    ``numerator``/``denominator`` are ``first``, ``last``, a position (0, 1, -1) or a layer name.
    """

    def __init__(
        self,
        *,
        prefix: str = "grad_norm/",
        suffix: str = ".W",
        numerator: Any = "first",
        denominator: Any = "last",
        epoch: Any = 0,
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.suffix = suffix
        self.numerator = numerator
        self.denominator = denominator
        self.epoch = epoch
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        return self._validate_layer()

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        cols = self._columns(curve)
        row = self._row(curve)
        num, den = self._pick(cols, self.numerator), self._pick(cols, self.denominator)
        if row is None or num is None or den is None:
            return math.nan
        a, b = float(row[num]), float(row[den])
        if b == 0:
            return math.inf if a > 0 else math.nan
        return a / b


@MEASURES.register("layer_stat")
class LayerStat(_LayerMeasure):
    """A reduction over layers of a per-layer telemetry value at one epoch.

    E.g. the least saturated layer: ``{name: layer_stat, prefix: "saturation/", how: min}``.
    """

    def __init__(
        self,
        *,
        prefix: str,
        suffix: str = "",
        how: str = "mean",
        layers: Any = "all",
        epoch: Any = 0,
        on_diverged: Any = None,
        label: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.suffix = suffix
        self.how = how
        self.layers = layers
        self.epoch = epoch
        self.on_diverged = on_diverged
        self.label = label

    def validate(self) -> list[tuple[str, Any, str]]:
        out = self._validate_layer()
        if self.how not in ("mean", "median", "min", "max"):
            out.append(("how", self.how, "mean, median, min or max"))
        return out

    def raw(self, run: Mapping[str, Any], curve: pd.DataFrame) -> float:
        cols = self._columns(curve)
        if self.layers != "all":
            wanted = self.layers if isinstance(self.layers, list) else [self.layers]
            picked = [self._pick(cols, w) for w in wanted]
            cols = [c for c in picked if c is not None]
        row = self._row(curve)
        if row is None or not cols:
            return math.nan
        x = row[cols].to_numpy(dtype=float)
        if np.isnan(x).all():
            return math.nan
        return float(getattr(np, f"nan{self.how}")(x))


def compute_measures(
    table: RunTable, measures: Mapping[str, Measure], params: list[str]
) -> pd.DataFrame:
    """One row per run: run keys, ``status``, the ``params`` columns and one column per measure.

    Raises
    ------
    ClaimError
        When a parameter column is missing from the runs table, or a measure's metric is in
        neither the curves nor the summary columns.
    """
    runs = table.runs
    for p in params:
        if p not in runs.columns:
            raise ClaimError(
                f"runs.{p}",
                None,
                f"a column for every searched parameter; the runs table has: "
                f"{', '.join(map(str, runs.columns))}",
            )
    curves = table.curves.sort_values([*RUN_KEYS, "epoch"])
    by_run = dict(iter(curves.groupby(list(RUN_KEYS), sort=False)))
    empty = curves.iloc[0:0]
    base_cols = [*RUN_KEYS, "seed", "status", "reason", "run_id"]
    out = runs[base_cols + [p for p in params if p not in base_cols]].copy()
    for name, m in measures.items():
        vals = []
        for rec in runs.to_dict("records"):
            row = {str(k): v for k, v in rec.items()}
            key = (row["protocol"], int(row["trial"]), int(row["replicate"]))
            try:
                vals.append(m.value(row, by_run.get(key, empty)))
            except MissingMetricError as exc:
                have = sorted(set(map(str, curves.columns)) | set(map(str, runs.columns)))
                raise ClaimError(
                    f"measures.{name}",
                    m.describe(),
                    f"a metric recorded by the runs; {exc.args[0]!r} is in neither the curves "
                    f"nor the summary columns ({', '.join(have)})",
                ) from exc
        out[name] = np.asarray(vals, dtype=float)
        if isinstance(m, _ToTarget):
            # where the target was never reached (inf), the budget the run had: a bound
            cens = [
                m.censor(
                    {str(k): v for k, v in rec.items()},
                    by_run.get((rec["protocol"], int(rec["trial"]), int(rec["replicate"])), empty),
                )
                if math.isinf(v) and v > 0 and rec["status"] != "diverged"
                else math.nan
                for rec, v in zip(runs.to_dict("records"), vals)
            ]
            out[censor_column(name)] = np.asarray(cens, dtype=float)
    return out


def censor_column(measure: str) -> str:
    """The column holding a *-to-target measure's budget value where it is ``inf``."""
    return f"{measure}@censor"
