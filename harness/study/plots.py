"""Study plots rendered to PNG: Optuna's standard views plus the Tuning Playbook's checks.

:func:`render_study_plots` writes, for a finished ``optuna.Study``:

* ``optimization_history`` (single objective) or ``pareto_front`` (several);
* ``parallel_coordinate``, ``param_importances``, ``slice``, ``contour``, ``intermediate_values``
  from ``optuna.visualization.matplotlib``, each falling back to a plain matplotlib version when
  Optuna's raises;
* ``learning_curves`` of every trial when a per-epoch ``curves`` table is given;
* the playbook's *axis plots* (objective against each searched parameter, one point per trial,
  pruned and failed trials marked) and *isolation plots* (the best trial for each value of a
  scientific parameter, taken over the nuisance parameters; continuous values are bucketed into
  quantile bins);
* :func:`edge_warnings`: the best value sitting in the outer 5 % of a searched range means the
  range should probably be widened.

A plot that cannot be drawn (one trial, every trial failed, a single parameter...) is skipped
with its reason in :attr:`StudyPlots.notes`, never an exception.
"""

from __future__ import annotations

import math
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

if "matplotlib.pyplot" not in sys.modules:
    # headless by design: the plots go to files and MLflow artifacts, never to a window
    matplotlib.use("Agg")

import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState

from harness.study.space import SearchSpace

if TYPE_CHECKING:
    from harness.study.spec import StudySpec

__all__ = [
    "EDGE_FRACTION",
    "INTERVAL_NAME",
    "NOTES_FILE",
    "CurveGroups",
    "StudyPlots",
    "axis_plots",
    "curve_groups",
    "edge_warnings",
    "isolation_plots",
    "metric_label",
    "paper_figure",
    "plot_learning_curves",
    "render_study_plots",
    "seed_curves_frame",
    "trials_frame",
    "with_seed_intervals",
]

#: written next to the PNGs when a plot was skipped or replaced, or a range looks too narrow
NOTES_FILE = "plots_notes.txt"
#: a best value within this fraction of either end of a range triggers an edge warning
EDGE_FRACTION = 0.05
#: below this many completed trials parameter importances are noise
MIN_TRIALS_FOR_IMPORTANCE = 5
#: at most this many parameters in the contour matrix (it grows quadratically)
MAX_CONTOUR_PARAMS = 3
#: continuous scientific values are bucketed into at most this many quantile bins
ISOLATION_BINS = 6
_DPI = 100


@dataclass
class StudyPlots:
    """What :func:`render_study_plots` produced.

    Attributes
    ----------
    paths : dict
        Plot name → PNG path (``"axis_train.batch_size"``, ``"optimization_history"``...).
    notes : dict
        Plot name → why it was skipped, or that a fallback was drawn instead of Optuna's plot.
    warnings : list of str
        Edge warnings (see :func:`edge_warnings`).

    Notes and warnings are also written to :data:`NOTES_FILE` in the output directory.
    """

    paths: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Axis:
    """What the plots need to know about one searched parameter.

    ``categorical`` means plotted as labels; a categorical over numbers (batch sizes, depths) is
    plotted on a numeric axis with ``low``/``high`` its smallest and largest choice.
    """

    key: str
    categorical: bool
    log: bool = False
    low: float | None = None
    high: float | None = None
    role: str = "nuisance"
    choices: bool = False

    @classmethod
    def of_choices(cls, key: str, choices: Sequence[Any], role: str) -> _Axis:
        numbers = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if len(numbers) != len(choices) or len(numbers) < 2:
            return cls(key, True, role=role)
        low, high = float(min(numbers)), float(max(numbers))
        # batch sizes 16..256 read better on a log axis; depths 1..4 on a linear one
        log = low > 0 and high / low >= 10
        return cls(key, False, log, low, high, role, choices=True)


# -- data -------------------------------------------------------------------------------------


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial in Optuna's ``trials_dataframe`` naming.

    Columns: ``number``, ``state`` (``COMPLETE``, ``PRUNED``, ``FAIL``...), ``value`` (or
    ``values_0``, ``values_1``... for several objectives), ``params_<key>`` and
    ``last_intermediate`` (the last reported value, for pruned trials). ``df.attrs`` holds
    ``directions`` and ``distributions``.
    """
    n_obj = len(study.directions)
    rows = []
    distributions: dict[str, BaseDistribution] = {}
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        values = t.values if t.values is not None else [math.nan] * n_obj
        if n_obj == 1:
            row["value"] = values[0]
        else:
            row.update({f"values_{i}": v for i, v in enumerate(values)})
        for key, value in t.params.items():
            row[f"params_{key}"] = value
        distributions.update(t.distributions)
        iv = t.intermediate_values
        row["last_intermediate"] = iv[max(iv)] if iv else math.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs["directions"] = [d.name.lower() for d in study.directions]
    df.attrs["distributions"] = distributions
    return df


def _value_columns(df: pd.DataFrame) -> list[str]:
    if "value" in df.columns:
        return ["value"]
    cols = [c for c in df.columns if re.fullmatch(r"values_\d+", str(c))]
    return sorted(cols, key=lambda c: int(c.split("_")[1]))


def _axes_info(
    space: SearchSpace | None,
    distributions: Mapping[str, BaseDistribution],
    roles: Mapping[str, str] | None,
) -> list[_Axis]:
    roles = roles or {}
    if space is not None:
        out = []
        for p in space:
            role = roles.get(p.key, p.role)
            if p.type == "categorical":
                out.append(_Axis.of_choices(p.key, p.labels, role))
            else:
                low, high = p.bounds
                out.append(_Axis(p.key, False, p.log, low, high, role))
        return out
    axes = []
    for key, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            axes.append(_Axis.of_choices(key, dist.choices, roles.get(key, "nuisance")))
        else:
            low, high = dist.low, dist.high  # type: ignore[attr-defined]
            log = bool(getattr(dist, "log", False))
            axes.append(_Axis(key, False, log, low, high, roles.get(key, "nuisance")))
    return axes


def _objective_names(n: int, names: Sequence[str] | None) -> list[str]:
    if names is not None and len(names) == n:
        return list(names)
    return ["objective"] if n == 1 else [f"objective {i}" for i in range(n)]


def _best_index(values: pd.Series, direction: str) -> Any:
    finite = values[np.isfinite(values.to_numpy(dtype=float))]
    if finite.empty:
        return None
    return finite.idxmax() if direction == "maximize" else finite.idxmin()


# -- edge warnings ----------------------------------------------------------------------------


def edge_warnings(
    study_or_df: optuna.Study | pd.DataFrame,
    space: SearchSpace | None = None,
    *,
    directions: Sequence[str] | None = None,
    objective_names: Sequence[str] | None = None,
) -> list[str]:
    """Warnings for searched numeric parameters whose best value lies at the edge of the range.

    The best completed trial of each objective is checked: a value within the outer
    :data:`EDGE_FRACTION` of ``[low, high]`` (measured in log space for log parameters) names the
    parameter, the value, the range and the edge. ``space`` is required with a DataFrame (which
    must also give ``directions``, or carry them in ``df.attrs`` as :func:`trials_frame` does).
    """
    if isinstance(study_or_df, optuna.Study):
        df = trials_frame(study_or_df)
    else:
        df = study_or_df
        if space is None and "distributions" not in df.attrs:
            raise ValueError("edge_warnings needs the search space when given a DataFrame")
    dirs = list(directions or df.attrs.get("directions") or [])
    vcols = _value_columns(df) if not df.empty else []
    if not vcols or len(dirs) != len(vcols):
        if df.empty or not vcols:
            return []
        raise ValueError(f"directions= must give one direction per objective ({len(vcols)})")
    axes = [
        a for a in _axes_info(space, df.attrs.get("distributions", {}), None) if not a.categorical
    ]
    names = _objective_names(len(vcols), objective_names)
    done = df[df["state"] == "COMPLETE"]
    out: list[str] = []
    for col, direction, oname in zip(vcols, dirs, names):
        idx = _best_index(done[col], direction) if not done.empty else None
        if idx is None:
            continue
        best = done.loc[idx]
        for a in axes:
            value = best.get(f"params_{a.key}")
            if value is None or not np.isfinite(float(value)) or a.low is None or a.high is None:
                continue
            if a.log:
                pos = (math.log(value) - math.log(a.low)) / (math.log(a.high) - math.log(a.low))
            else:
                pos = (value - a.low) / (a.high - a.low)
            if EDGE_FRACTION < pos < 1 - EDGE_FRACTION:
                continue
            edge = "lower" if pos <= EDGE_FRACTION else "upper"
            where = (
                f"the {'smallest' if edge == 'lower' else 'largest'} of its choices "
                f"[{a.low:g} … {a.high:g}]"
                if a.choices
                else f"the {edge} edge of its range [{a.low:g}, {a.high:g}] (outer "
                f"{EDGE_FRACTION:.0%}, {'log' if a.log else 'linear'} scale)"
            )
            out.append(
                f"best {oname} ({best[col]:.4g}, trial {int(best['number'])}) has {a.key} = "
                f"{float(value):.4g} at {where}: widen the search so the optimum is inside it"
            )
    return out


# -- playbook plots ---------------------------------------------------------------------------


def _x_positions(series: pd.Series, axis: _Axis) -> tuple[np.ndarray, list[str] | None]:
    """Numeric x values, and category labels for a categorical axis."""
    if axis.categorical:
        labels = [str(v) for v in pd.unique(series.dropna())]
        lookup = {lab: i for i, lab in enumerate(labels)}
        return np.array([lookup.get(str(v), np.nan) for v in series], dtype=float), labels
    return series.to_numpy(dtype=float), None


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    return path


def _safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key)


#: what the interval bars and bands of the study plots are: the claims' interval over seeds
#: (harness.claims.intervals.seed_interval, through harness.study.summary); each label adds the
#: level the seeds reach (3 seeds: their range, 75 %)
INTERVAL_NAME = "median over seeds, order-statistic interval"


def interval_label(levels: Any) -> str:
    """:data:`INTERVAL_NAME` with the lowest level reached, e.g. ``... (75 % with 3 seeds)``."""
    vals = [float(v) for v in np.atleast_1d(np.asarray(levels, dtype=float)) if np.isfinite(v)]
    if not vals:
        return INTERVAL_NAME
    return f"{INTERVAL_NAME} ({min(vals):.0%} level)"


def metric_label(name: str) -> str:
    """An axis label with the metric's unit: ``val/accuracy (fraction correct)``."""
    leaf = name.rsplit("/", 1)[-1]
    units = {
        "accuracy": "fraction correct",
        "loss": "mean loss per sample",
        "r2": "R², 1 = perfect",
        "lr": "learning rate",
        "epoch": "passes over the training set",
        "epochs_to_target": "epochs",
        "samples_per_s": "samples/s",
    }
    unit = units.get(leaf)
    if unit is None and leaf.endswith("_s"):
        unit = "s"
    if unit is None and leaf.startswith(("grad_norm", "update_norm")):
        unit = "L2 norm"
    return f"{name} ({unit})" if unit else name


def param_label(axis: _Axis) -> str:
    """A parameter's axis label: key, role and, for log axes, the scale."""
    scale = ", log scale" if axis.log and not axis.categorical else ""
    return f"{axis.key} ({axis.role}{scale})"


def with_seed_intervals(
    df: pd.DataFrame, trials: pd.DataFrame | None, objective_names: Sequence[str]
) -> pd.DataFrame:
    """``df`` (from :func:`trials_frame`) with ``median_<i>``, ``ci_low_<i>``, ``ci_high_<i>``
    and ``ci_level_<i>`` per objective, from a trials table with ``seeds/<metric>/...`` columns
    (``harness.study.summary.trials_table``)."""
    if trials is None or trials.empty or "number" not in trials.columns or df.empty:
        return df
    out = df.copy()
    out.attrs = dict(df.attrs)
    by_number = trials.set_index("number")
    for i, name in enumerate(objective_names):
        cols = {
            f"median_{i}": f"seeds/{name}/median",
            f"ci_low_{i}": f"seeds/{name}/ci_low",
            f"ci_high_{i}": f"seeds/{name}/ci_high",
            f"ci_level_{i}": f"seeds/{name}/ci_level",
        }
        if all(c in by_number.columns for c in cols.values()):
            for mine, theirs in cols.items():
                out[mine] = out["number"].map(by_number[theirs]).astype(float)
    return out


def _interval_columns(df: pd.DataFrame, i: int) -> tuple[str, str, str, str] | None:
    cols = (f"median_{i}", f"ci_low_{i}", f"ci_high_{i}", f"ci_level_{i}")
    return cols if all(c in df.columns for c in cols) else None


def _error_bars(ax: Any, x: Any, rows: pd.DataFrame, ci: Sequence[str], color: Any) -> bool:
    """The seeds' median (a tick) and its interval (a bar) at ``x``; whether any was drawn."""
    x = np.asarray(x, dtype=float)
    med, lo, hi, level = (rows[c].to_numpy(dtype=float) for c in ci)
    ok = np.isfinite(x) & np.isfinite(med) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return False
    yerr = np.vstack([np.clip(med[ok] - lo[ok], 0, None), np.clip(hi[ok] - med[ok], 0, None)])
    ax.errorbar(
        x[ok],
        med[ok],
        yerr=yerr,
        fmt="_",
        color=color,
        ecolor=color,
        elinewidth=1,
        capsize=2,
        alpha=0.75,
        label=interval_label(level[ok]),
    )
    return True


def axis_plots(
    df: pd.DataFrame,
    axes: Sequence[_Axis],
    out_dir: Path,
    *,
    objective_names: Sequence[str],
) -> tuple[dict[str, Path], dict[str, str]]:
    """Objective against each searched parameter (one point per trial), one PNG per parameter.

    Completed trials are dots; pruned trials are crosses at their last reported value; failed
    trials are red ticks along the bottom edge. Log parameters get a log x axis.
    """
    paths: dict[str, Path] = {}
    notes: dict[str, str] = {}
    vcols = _value_columns(df)
    for a in axes:
        name = f"axis_{_safe_name(a.key)}"
        col = f"params_{a.key}"
        if col not in df.columns or df[col].notna().sum() == 0:
            notes[name] = f"no trial suggested {a.key}"
            continue
        fig = Figure(figsize=(5.0, 3.2 * len(vcols)))
        axs = np.atleast_1d(fig.subplots(len(vcols), 1, squeeze=False)[:, 0])
        x, labels = _x_positions(df[col], a)
        states = df["state"].to_numpy()
        for i, (ax, vcol, oname) in enumerate(zip(axs, vcols, objective_names)):
            y = df[vcol].to_numpy(dtype=float)
            done = (states == "COMPLETE") & np.isfinite(y)
            ax.scatter(x[done], y[done], s=18, alpha=0.8, label="complete (mean over seeds)")
            ci = _interval_columns(df, i)
            if ci is not None:
                _error_bars(ax, x[done], df[done], ci, "tab:blue")
            last = (
                df["last_intermediate"].to_numpy(dtype=float)
                if "last_intermediate" in df
                else np.full(len(df), np.nan)
            )
            pruned = (states == "PRUNED") & np.isfinite(last)
            # the reported metric is the single objective's (pruning needs one objective)
            if pruned.any() and len(vcols) == 1:
                ax.scatter(
                    x[pruned],
                    last[pruned],
                    marker="x",
                    color="0.5",
                    s=18,
                    label="pruned (last reported)",
                )
            failed = np.isin(states, ["FAIL"]) & np.isfinite(x)
            if failed.any():
                ax.plot(
                    x[failed],
                    np.zeros(failed.sum()),
                    "|",
                    color="tab:red",
                    markersize=12,
                    transform=ax.get_xaxis_transform(),
                    label="failed",
                )
            if labels is not None:
                ax.set_xticks(range(len(labels)))
                ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
            elif a.log:
                ax.set_xscale("log")
            ax.set_xlabel(param_label(a))
            ax.set_ylabel(metric_label(oname))
            ax.legend(fontsize=7, loc="best")
        axs[0].set_title(f"Axis plot: {a.key}")
        paths[name] = _save(fig, out_dir / f"{name}.png")
    return paths, notes


def _buckets(series: pd.Series, axis: _Axis) -> tuple[pd.Series, bool]:
    """Group keys for an isolation plot, and whether they are quantile bins."""
    # numeric choices are values the user picked: each keeps its own point
    if axis.categorical or axis.choices or series.nunique() <= ISOLATION_BINS:
        return series.astype(str) if axis.categorical else series, False
    values = np.log(series.astype(float)) if axis.log else series.astype(float)
    bins = pd.Series(pd.qcut(values, q=ISOLATION_BINS, duplicates="drop"), index=series.index)
    # the bin's median parameter value stands for the bin on the x axis
    centers = series.groupby(bins, observed=True).transform("median")
    return centers, True


def isolation_plots(
    df: pd.DataFrame,
    axes: Sequence[_Axis],
    out_dir: Path,
    *,
    directions: Sequence[str],
    objective_names: Sequence[str],
) -> tuple[dict[str, Path], dict[str, str]]:
    """Best trial per value of each scientific parameter (over the nuisance parameters)."""
    paths: dict[str, Path] = {}
    notes: dict[str, str] = {}
    scientific = [a for a in axes if a.role == "scientific"]
    if not scientific:
        notes["isolation"] = "no scientific parameter (roles: scientific / nuisance / fixed)"
        return paths, notes
    vcols = _value_columns(df)
    done = df[df["state"] == "COMPLETE"]
    for a in scientific:
        name = f"isolation_{_safe_name(a.key)}"
        col = f"params_{a.key}"
        sub = done[done[col].notna()] if col in done else done.iloc[0:0]
        if sub.empty:
            notes[name] = f"no completed trial with {a.key}"
            continue
        keys, binned = _buckets(sub[col], a)
        fig = Figure(figsize=(5.0, 3.2 * len(vcols)))
        axs = np.atleast_1d(fig.subplots(len(vcols), 1, squeeze=False)[:, 0])
        for i, (ax, vcol, direction, oname) in enumerate(
            zip(axs, vcols, directions, objective_names)
        ):
            y = sub[vcol].astype(float)
            ok = np.isfinite(y.to_numpy())
            grouped = y[ok].groupby(keys[ok], sort=True)
            best = grouped.max() if direction == "maximize" else grouped.min()
            best_rows = grouped.idxmax() if direction == "maximize" else grouped.idxmin()
            if a.categorical:
                labels = list(best.index)
                xs_best = np.arange(len(labels), dtype=float)
                pos = {lab: i for i, lab in enumerate(labels)}
                xs_all = np.array([pos.get(k, np.nan) for k in keys[ok]], dtype=float)
                ax.set_xticks(xs_best)
                ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
            else:
                xs_best = best.index.to_numpy(dtype=float)
                xs_all = keys[ok].to_numpy(dtype=float)
                if a.log:
                    ax.set_xscale("log")
            ax.scatter(xs_all, y[ok], s=12, color="0.7", label="all trials")
            ax.plot(xs_best, best.to_numpy(), "o-", color="tab:blue", label="best per value")
            ci = _interval_columns(sub, i)
            if ci is not None:
                rows = best_rows.loc[best.index]
                _error_bars(ax, xs_best, sub.loc[rows.to_numpy()], ci, "tab:blue")
            what = "quantile bin (median value)" if binned else "value"
            ax.set_xlabel(f"{param_label(a)}: {what}")
            ax.set_ylabel(f"best {metric_label(oname)}")
            ax.legend(fontsize=7, loc="best")
        axs[0].set_title(f"Isolation plot: {a.key} (best over nuisance params)")
        paths[name] = _save(fig, out_dir / f"{name}.png")
    return paths, notes


@dataclass
class CurveGroups:
    """How learning curves are grouped: trial → group label, the best trial of each group, and
    the per-seed curves (``trial``, ``replicate``, ``epoch``, metrics) for the interval bands."""

    name: str | None = None
    of_trial: dict[int, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    best: dict[str, int] = field(default_factory=dict)
    seed_curves: pd.DataFrame | None = None
    numeric: bool = False
    pruned: set[int] = field(default_factory=set)


def _seed_band(seed_curves: pd.DataFrame | None, trial: int, metric: str) -> pd.DataFrame | None:
    """Per epoch: the seeds' median and its interval (the claims' ``seed_interval``, with the
    level it reaches); None under 2 seeds."""
    from harness.study.summary import metric_bounds, seed_interval

    if seed_curves is None or seed_curves.empty or metric not in seed_curves.columns:
        return None
    sub = seed_curves[seed_curves["trial"] == trial]
    if sub.empty or sub["replicate"].nunique() < 2:
        return None
    rows = []
    for epoch, g in sub.groupby("epoch"):
        med, iv = seed_interval(list(g[metric].astype(float)), metric_bounds(metric))
        rows.append(
            {
                "epoch": epoch,
                "median": med,
                "low": iv.low,
                "high": iv.high,
                "n": len(g),
                "level": iv.level,
            }
        )
    return pd.DataFrame(rows)


def _draw_curves(
    ax: Any, curves: pd.DataFrame, metric: str, groups: CurveGroups, *, trial_col: str = "trial"
) -> None:
    """Thin lines: every trial (mean over seeds), coloured by its group; thick lines with bands:
    the best trial of each group; crosses: where pruned trials stopped."""
    import seaborn as sns
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    order = groups.order or ["all trials"]
    palette = sns.color_palette("viridis" if groups.numeric else "tab10", max(len(order), 1))
    colour = dict(zip(order, palette))
    handles: list[Any] = []
    n_seeds = 0
    levels: list[float] = []
    for key, g in curves.groupby(trial_col):
        g = g.sort_values("epoch")
        number = int(str(key))
        group = groups.of_trial.get(number, order[0])
        c = colour.get(group, "0.5")
        ax.plot(g["epoch"], g[metric], lw=0.7, alpha=0.3, color=c)
        if number in groups.pruned and len(g):
            ax.plot(g["epoch"].iloc[-1], g[metric].iloc[-1], "x", color=c, ms=5, alpha=0.8)
    for group in order:
        best = groups.best.get(group)
        if best is None:
            continue
        g = curves[curves[trial_col] == best].sort_values("epoch")
        c = colour[group]
        label = f"{groups.name} = {group}" if groups.name else f"best trial (#{best})"
        band = _seed_band(groups.seed_curves, best, metric)
        if band is not None:
            ax.fill_between(band["epoch"], band["low"], band["high"], color=c, alpha=0.2, lw=0)
            n_seeds = max(n_seeds, int(band["n"].max()))
            levels.append(float(band["level"].min()))
        ax.plot(g["epoch"], g[metric], lw=2.0, color=c)
        handles.append(Line2D([], [], color=c, lw=2.0, label=f"{label} (best, #{best})"))
    handles.append(Line2D([], [], color="0.5", lw=0.7, alpha=0.6, label="other trials"))
    if n_seeds:
        handles.append(
            Patch(
                color="0.5",
                alpha=0.3,
                label=f"{interval_label(levels)}, {n_seeds} seeds, best trials",
            )
        )
    if groups.pruned:
        handles.append(Line2D([], [], color="0.3", marker="x", ls="", label="pruned: stopped here"))
    ax.legend(handles=handles, fontsize=7, loc="best")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(metric_label("epoch"))
    ax.set_ylabel(metric_label(metric) + " (mean over seeds)")


def plot_learning_curves(
    curves: pd.DataFrame,
    metric: str,
    path: str | Path,
    *,
    trial_col: str = "trial",
    groups: CurveGroups | None = None,
) -> Path:
    """Every trial's ``metric`` against ``epoch``, grouped and coloured by ``groups`` (the
    scientific parameter), the best trial per group drawn thick with its seed interval band."""
    if metric not in curves.columns:
        raise ValueError(f"curves have no column {metric!r}; columns: {list(curves.columns)}")
    groups = groups or CurveGroups()
    if not groups.best:
        groups.best = {"all trials": int(curves[trial_col].iloc[0])} if len(curves) else {}
        groups.order = ["all trials"]
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    _draw_curves(ax, curves, metric, groups, trial_col=trial_col)
    n = curves[trial_col].nunique() if trial_col in curves else 1
    by = f", coloured by {groups.name}" if groups.name else ""
    ax.set_title(f"Learning curves ({n} trials{by})")
    return _save(fig, Path(path))


def seed_curves_frame(entries: Any) -> pd.DataFrame:
    """Per-epoch records of every seed of every finished trial (ledger entries)."""
    rows = []
    for entry in entries:
        for rep in entry.get("replicates", []):
            for rec in rep.get("records", []):
                rows.append({"trial": entry["number"], "replicate": rep.get("replicate", 0), **rec})
    return pd.DataFrame(rows)


def curve_groups(
    df: pd.DataFrame,
    axes: Sequence[_Axis],
    *,
    direction: str,
    seed_curves: pd.DataFrame | None = None,
) -> CurveGroups:
    """Group trials by the first scientific parameter (quantile bins for a continuous one) and
    find each group's best completed trial; without a scientific parameter: one group."""
    groups = CurveGroups(seed_curves=seed_curves)
    if df.empty:
        return groups
    groups.pruned = {int(n) for n in df.loc[df["state"] == "PRUNED", "number"]}
    vcol = _value_columns(df)[0]
    scientific = [a for a in axes if a.role == "scientific" and f"params_{a.key}" in df]
    done = df[(df["state"] == "COMPLETE") & np.isfinite(df[vcol].astype(float))]
    if not scientific:
        idx = _best_index(done[vcol], direction) if not done.empty else None
        groups.order = ["all trials"]
        if idx is not None:
            groups.best = {"all trials": int(done.loc[idx, "number"])}
        return groups
    a = scientific[0]
    col = f"params_{a.key}"
    have = df[df[col].notna()]
    keys, binned = _buckets(have[col], a)
    groups.name = a.key + (" (bin median)" if binned else "")
    groups.numeric = not a.categorical
    labels = keys.map(lambda v: f"{v:.3g}" if isinstance(v, (int, float, np.floating)) else str(v))
    ordered = sorted(pd.unique(keys), key=lambda v: (str(type(v)), v))
    label_of = dict(zip(keys, labels))
    groups.order = [label_of[k] for k in ordered]
    groups.of_trial = {int(n): lab for n, lab in zip(have["number"], labels)}
    for label in groups.order:
        members = done[done["number"].map(groups.of_trial).eq(label)]
        idx = _best_index(members[vcol], direction) if not members.empty else None
        if idx is not None:
            groups.best[label] = int(members.loc[idx, "number"])
    return groups


def paper_figure(
    df: pd.DataFrame,
    axes: Sequence[_Axis],
    curves: pd.DataFrame | None,
    path: Path,
    *,
    direction: str,
    objective_name: str,
    groups: CurveGroups,
    title: str,
) -> Path:
    """The one figure of a sweep to put in a paper (seaborn, 200 dpi): (a) the best objective
    per value of the scientific parameter, with its seed interval, over every trial; without a
    scientific parameter, the optimization history; (b) the learning curves of those trials."""
    import seaborn as sns

    vcol = _value_columns(df)[0]
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.1):
        fig = Figure(figsize=(10.0, 4.0), dpi=200)
        ax_a, ax_b = fig.subplots(1, 2)
        scientific = [a for a in axes if a.role == "scientific" and f"params_{a.key}" in df]
        done = df[(df["state"] == "COMPLETE") & np.isfinite(df[vcol].astype(float))]
        ci = _interval_columns(df, 0)
        if scientific and groups.best:
            a = scientific[0]
            x, labels = _x_positions(done[f"params_{a.key}"], a)
            ax_a.scatter(x, done[vcol], s=14, color="0.65", label="every completed trial")
            best = done[done["number"].isin(list(groups.best.values()))]
            bx, _ = _x_positions(best[f"params_{a.key}"], a)
            if labels is not None:
                lookup = {lab: i for i, lab in enumerate(labels)}
                bx = np.array([lookup.get(str(v), np.nan) for v in best[f"params_{a.key}"]])
            order = np.argsort(bx)
            by = best[vcol].to_numpy(dtype=float)
            ax_a.plot(bx[order], by[order], "o-", color="tab:blue", lw=1.8, label="best per value")
            if ci is not None:
                _error_bars(ax_a, bx, best, ci, "tab:blue")
            if labels is not None:
                ax_a.set_xticks(range(len(labels)))
                ax_a.set_xticklabels(labels, rotation=20, ha="right")
            elif a.log:
                ax_a.set_xscale("log")
            ax_a.set_xlabel(param_label(a))
            ax_a.set_title("(a) best over the nuisance parameters")
        else:
            ok = df[np.isfinite(df[vcol].astype(float)) & (df["state"] == "COMPLETE")]
            ax_a.scatter(ok["number"], ok[vcol], s=14, color="0.5", label="completed trial")
            run = ok[vcol].cummax() if direction == "maximize" else ok[vcol].cummin()
            ax_a.step(ok["number"], run, where="post", color="tab:red", label="best so far")
            if ci is not None:
                _error_bars(ax_a, ok["number"].to_numpy(float), ok, ci, "0.5")
            ax_a.set_xlabel("trial number")
            ax_a.set_title("(a) optimization history")
        ax_a.set_ylabel(metric_label(objective_name))
        ax_a.legend(fontsize=7, loc="best")
        if curves is not None and not curves.empty and objective_name in curves.columns:
            shown = curves[curves["trial"].isin(list(groups.best.values()))]
            _draw_curves(ax_b, shown if not shown.empty else curves, objective_name, groups)
            ax_b.set_title("(b) learning curves of those trials")
        else:
            ax_b.axis("off")
            ax_b.text(0.5, 0.5, "no per-epoch curves recorded", ha="center", va="center")
        fig.suptitle(title, fontweight="bold")
        fig.text(
            0.01,
            -0.02,
            "Dots and lines: means over seeds (the objective); ticks with bars and bands: the "
            "seeds' median and its order-statistic interval, at the level the seeds reach "
            "(harness.claims.intervals.seed_interval).",
            fontsize=7,
            color="0.3",
        )
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200, bbox_inches="tight")
    return path


# -- Optuna's plots and their fallbacks ---------------------------------------------------------


def _figure_of(result: Any) -> Any:
    ax = result.flat[0] if isinstance(result, np.ndarray) else result
    return ax.figure


def _optuna_plot(make: Callable[[], Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    # Optuna's matplotlib plots call plt.style.use("ggplot"), a global change: rc_context undoes it
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = _figure_of(make())
        try:
            fig.savefig(path, dpi=_DPI, bbox_inches="tight")
        finally:
            plt.close(fig)
    return path


def _fallback_history(study: optuna.Study, path: Path) -> Path:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    x = [t.number for t in trials]
    y = np.array([t.value for t in trials], dtype=float)
    best = (
        np.maximum.accumulate(y) if study.direction.name == "MAXIMIZE" else np.minimum.accumulate(y)
    )
    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.subplots()
    ax.scatter(x, y, s=14, label="objective")
    ax.step(x, best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.legend()
    ax.set_title("Optimization history")
    return _save(fig, path)


def _fallback_intermediate(study: optuna.Study, path: Path) -> Path:
    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.subplots()
    for t in study.get_trials(deepcopy=False):
        if t.intermediate_values:
            steps = sorted(t.intermediate_values)
            ax.plot(steps, [t.intermediate_values[s] for s in steps], lw=0.8, alpha=0.7)
    ax.set_xlabel("step (epoch)")
    ax.set_ylabel("intermediate value")
    ax.set_title("Intermediate values")
    return _save(fig, path)


def _fallback_pareto(study: optuna.Study, path: Path, names: Sequence[str]) -> Path:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    front = {t.number for t in study.best_trials}
    v = np.array([t.values[:2] for t in trials], dtype=float)
    on = np.array([t.number in front for t in trials])
    fig = Figure(figsize=(5.0, 4.0))
    ax = fig.subplots()
    ax.scatter(v[~on, 0], v[~on, 1], s=14, color="0.6", label="trials")
    ax.scatter(v[on, 0], v[on, 1], s=22, color="tab:red", label="Pareto front")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend()
    ax.set_title("Pareto front")
    return _save(fig, path)


def _fallback_importance(study: optuna.Study, path: Path, target: Any) -> Path:
    imp = optuna.importance.get_param_importances(study, target=target)
    fig = Figure(figsize=(5.0, 0.5 + 0.4 * len(imp)))
    ax = fig.subplots()
    ax.barh(list(imp)[::-1], list(imp.values())[::-1])
    ax.set_xlabel("importance")
    ax.set_title("Parameter importances")
    return _save(fig, path)


def _fallback_parallel(df: pd.DataFrame, axes: Sequence[_Axis], path: Path) -> Path:
    done = df[df["state"] == "COMPLETE"]
    vcol = _value_columns(df)[0]
    cols = []
    for a in axes:
        c = f"params_{a.key}"
        if c not in done:
            continue
        x, _ = _x_positions(done[c], a)
        x = np.log(x) if a.log else x
        span = np.nanmax(x) - np.nanmin(x) if np.isfinite(x).any() else 0.0
        cols.append((x - np.nanmin(x)) / span if span > 0 else np.full_like(x, 0.5))
    fig = Figure(figsize=(1.4 * max(len(cols), 2) + 1.5, 3.8))
    ax = fig.subplots()
    y = done[vcol].to_numpy(dtype=float)
    span = np.nanmax(y) - np.nanmin(y) if len(y) else 0.0
    shade = (y - np.nanmin(y)) / span if span > 0 else np.full_like(y, 0.5)
    cmap = matplotlib.colormaps["viridis"]
    data = np.array(cols).T
    for row, s in zip(data, shade):
        ax.plot(range(len(cols)), row, color=cmap(s), alpha=0.7, lw=0.9)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(
        [a.key for a in axes if f"params_{a.key}" in done], rotation=30, ha="right", fontsize=8
    )
    ax.set_ylabel("scaled value")
    ax.set_title("Parallel coordinates (colour: objective)")
    return _save(fig, path)


def _fallback_slice(df: pd.DataFrame, axes: Sequence[_Axis], path: Path) -> Path:
    done = df[df["state"] == "COMPLETE"]
    vcol = _value_columns(df)[0]
    fig = Figure(figsize=(3.2 * len(axes), 3.2))
    axs = np.atleast_1d(fig.subplots(1, len(axes), squeeze=False)[0])
    for ax, a in zip(axs, axes):
        x, labels = _x_positions(done[f"params_{a.key}"], a)
        ax.scatter(x, done[vcol].to_numpy(dtype=float), c=done["number"], cmap="Blues", s=14)
        if labels is not None:
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        elif a.log:
            ax.set_xscale("log")
        ax.set_xlabel(a.key)
    axs[0].set_ylabel("objective")
    fig.suptitle("Slice plot (colour: trial number)")
    return _save(fig, path)


def _fallback_scatter_pairs(df: pd.DataFrame, axes: Sequence[_Axis], path: Path) -> Path:
    done = df[df["state"] == "COMPLETE"]
    vcol = _value_columns(df)[0]
    a, b = axes[0], axes[1]
    xa, _ = _x_positions(done[f"params_{a.key}"], a)
    xb, _ = _x_positions(done[f"params_{b.key}"], b)
    fig = Figure(figsize=(5.0, 4.0))
    ax = fig.subplots()
    sc = ax.scatter(xa, xb, c=done[vcol].to_numpy(dtype=float), cmap="viridis", s=24)
    fig.colorbar(sc, ax=ax, label="objective")
    if a.log:
        ax.set_xscale("log")
    if b.log:
        ax.set_yscale("log")
    ax.set_xlabel(a.key)
    ax.set_ylabel(b.key)
    ax.set_title("Objective over two parameters")
    return _save(fig, path)


# -- everything -------------------------------------------------------------------------------


def render_study_plots(
    study: optuna.Study,
    out_dir: str | Path,
    *,
    space: SearchSpace | None = None,
    roles: Mapping[str, str] | None = None,
    objective_names: Sequence[str] | None = None,
    curves: pd.DataFrame | None = None,
    curve_metric: str | None = None,
    spec: StudySpec | None = None,
    trials: pd.DataFrame | None = None,
    seed_curves: pd.DataFrame | None = None,
    title: str | None = None,
) -> StudyPlots:
    """Render every study plot into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    study : optuna.Study
        The finished study (any states).
    space : SearchSpace, optional
        Gives each parameter's range, scale and role; without it they come from the trials'
        distributions and every parameter counts as nuisance unless ``roles`` says otherwise.
    roles : mapping, optional
        Dotted key → role (``StudySpec.roles()``), overriding the space's.
    objective_names : sequence of str, optional
        Axis labels per objective (the objective metrics).
    curves : DataFrame, optional
        Per-epoch table with ``trial``, ``epoch`` and metric columns, for ``learning_curves``.
    curve_metric : str, optional
        The column of ``curves`` to draw (default: the first objective name found in it).
    spec : StudySpec, optional
        Shorthand: supplies ``space``, ``roles`` and ``objective_names`` where not given.
    trials : DataFrame, optional
        The sweep's trials table (``harness.study.summary.trials_table``): its per-seed
        intervals (median and order-statistic interval) become error bars in the axis,
        isolation and paper figures.
    seed_curves : DataFrame, optional
        Per-seed per-epoch records (:func:`seed_curves_frame`): interval bands on the curves.
    title : str, optional
        Title of ``figure.png`` (default: the study's name).
    """
    if spec is not None:
        space = space if space is not None else spec.search
        roles = roles if roles is not None else spec.roles()
        if objective_names is None:
            objective_names = [o.metric for o in spec.objectives]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = StudyPlots()
    df = trials_frame(study)
    n_obj = len(study.directions)
    names = _objective_names(n_obj, objective_names)
    df = with_seed_intervals(df, trials, names)
    directions = [d.name.lower() for d in study.directions]
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    axes = _axes_info(space, df.attrs["distributions"], roles)
    searched = [a for a in axes if f"params_{a.key}" in df.columns]
    vm = optuna.visualization.matplotlib
    target = (lambda t: t.values[0]) if n_obj > 1 else None
    tname = names[0]

    def attempt(
        name: str,
        reason: str | None,
        optuna_call: Callable[[], Any],
        fallback: Callable[[Path], Path] | None,
    ) -> None:
        if reason is not None:
            res.notes[name] = reason
            return
        path = out / f"{name}.png"
        try:
            res.paths[name] = _optuna_plot(optuna_call, path)
            return
        except Exception as exc:  # Optuna's plots raise on many edge cases; fall back
            failure = f"optuna's plot failed ({type(exc).__name__}: {exc})"
        if fallback is None:
            res.notes[name] = failure
            return
        try:
            res.paths[name] = fallback(path)
            res.notes[name] = f"{failure}; drew a plain version instead"
        except Exception as exc:
            res.notes[name] = f"{failure}; the fallback failed too ({type(exc).__name__}: {exc})"

    none_done = "no completed trial" if not complete else None
    if n_obj == 1:
        attempt(
            "optimization_history",
            none_done,
            lambda: vm.plot_optimization_history(study),
            lambda p: _fallback_history(study, p),
        )
    else:
        why = none_done or (None if n_obj in (2, 3) else f"{n_obj} objectives (2 or 3 plot)")
        attempt(
            "pareto_front",
            why,
            lambda: vm.plot_pareto_front(study, target_names=names),
            (lambda p: _fallback_pareto(study, p, names)) if n_obj == 2 else None,
        )
    few = (
        none_done
        or (f"only {len(complete)} completed trial" if len(complete) < 2 else None)
        or (None if searched else "no searched parameter")
    )
    attempt(
        "parallel_coordinate",
        few,
        lambda: vm.plot_parallel_coordinate(study, target=target, target_name=tname),
        lambda p: _fallback_parallel(df, searched, p),
    )
    imp_reason = (
        f"{len(searched)} searched parameter (importances need 2 or more)"
        if len(searched) < 2
        else (
            f"{len(complete)} completed trials (importances need {MIN_TRIALS_FOR_IMPORTANCE})"
            if len(complete) < MIN_TRIALS_FOR_IMPORTANCE
            else None
        )
    )
    attempt(
        "param_importances",
        imp_reason,
        lambda: vm.plot_param_importances(study, target=target, target_name=tname),
        lambda p: _fallback_importance(study, p, target),
    )
    attempt(
        "slice",
        none_done or (None if searched else "no searched parameter"),
        lambda: vm.plot_slice(study, target=target, target_name=tname),
        lambda p: _fallback_slice(df, searched, p),
    )
    contour_params = [a for a in searched if df[f"params_{a.key}"].nunique() > 1][
        :MAX_CONTOUR_PARAMS
    ]
    attempt(
        "contour",
        few
        or (
            None
            if len(contour_params) >= 2
            else "fewer than 2 parameters with more than one value (a contour needs 2)"
        ),
        lambda: vm.plot_contour(
            study, params=[a.key for a in contour_params], target=target, target_name=tname
        ),
        lambda p: _fallback_scatter_pairs(df, contour_params, p),
    )
    has_iv = any(t.intermediate_values for t in study.get_trials(deepcopy=False))
    attempt(
        "intermediate_values",
        None if has_iv else "no trial reported intermediate values",
        lambda: vm.plot_intermediate_values(study),
        lambda p: _fallback_intermediate(study, p),
    )
    if curves is not None and not curves.empty:
        metric = curve_metric or next((n for n in names if n in curves.columns), None)
        if metric is None:
            res.notes["learning_curves"] = f"curves have none of the objective metrics {names}"
        else:
            try:
                groups = curve_groups(
                    df, searched, direction=directions[0], seed_curves=seed_curves
                )
                res.paths["learning_curves"] = plot_learning_curves(
                    curves, metric, out / "learning_curves.png", groups=groups
                )
            except Exception as exc:
                res.notes["learning_curves"] = f"{type(exc).__name__}: {exc}"
    if df.empty:
        res.notes["axis"] = "no trials"
        res.notes["isolation"] = "no trials"
    else:
        paths, notes = axis_plots(df, searched, out, objective_names=names)
        res.paths.update(paths)
        res.notes.update(notes)
        paths, notes = isolation_plots(
            df, searched, out, directions=directions, objective_names=names
        )
        res.paths.update(paths)
        res.notes.update(notes)
        res.warnings = edge_warnings(df, space, directions=directions, objective_names=names)
        if complete:
            try:
                groups = curve_groups(
                    df, searched, direction=directions[0], seed_curves=seed_curves
                )
                res.paths["figure"] = paper_figure(
                    df,
                    searched,
                    curves,
                    out / "figure.png",
                    direction=directions[0],
                    objective_name=names[0],
                    groups=groups,
                    title=title or _figure_title(spec, study, df, searched, names[0], seed_curves),
                )
            except Exception as exc:  # the figure must not sink the other plots
                res.notes["figure"] = f"{type(exc).__name__}: {exc}"
        else:
            res.notes["figure"] = "no completed trial"
    _write_notes(res, out / NOTES_FILE)
    return res


def _figure_title(
    spec: Any, study: Any, df: pd.DataFrame, axes: Sequence[_Axis], objective: str, seeds: Any
) -> str:
    """``<study>: <objective> by <scientific parameter> (<n> trials × <k> seeds)``."""
    name = spec.name if spec is not None else study.study_name
    scientific = [a.key for a in axes if a.role == "scientific"]
    by = f" by {scientific[0]}" if scientific else ""
    k = int(seeds["replicate"].nunique()) if seeds is not None and len(seeds) else 1
    return f"{name}: {objective}{by} ({len(df)} trials × {k} seed{'s' if k > 1 else ''})"


def _write_notes(res: StudyPlots, path: Path) -> None:
    """The reasons and warnings next to the PNGs, so they travel with the artifacts."""
    lines = [f"{name}: {why}" for name, why in sorted(res.notes.items())]
    lines += [f"warning: {w}" for w in res.warnings]
    if lines:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
