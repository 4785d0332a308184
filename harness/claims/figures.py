"""Figures of claim reports: a registry of seaborn/matplotlib plots drawn headless (Agg).

A claim file lists its figures; each entry names a registered figure and its arguments::

    figures:
      - {name: measure_vs_param, measure: throughput, x: train.batch_size, logx: true}
      - {name: curves, metric: val/accuracy, hue: train.batch_size, protocols: [tuned_lr]}
      - {name: layer_profile, prefix: "grad_norm/", suffix: ".W", hue: model.activation}
      - {name: bar, measure: epochs_to_target, x: model.activation}

Every figure draws what the statistics saw: the runs kept after the nuisance selection.
Centers are medians over seeds; bands are order-statistic intervals of the median, the
reports' own intervals (``measure_vs_param``, ``bar``) or the interquartile range (``curves``, ``layer_profile``).
"Not reached" (∞) values are never dropped silently. Where the run's budget is known (a
*-to-target measure records it, :func:`harness.claims.measures.censor_column`) the value is
*censored*: it lies at or beyond the budget, so the point is drawn at the budget line as an
upward triangle ("censored: ≥ budget" in the legend) and an interval that runs past the budget
ends there with an upward arrow. ∞ with no budget (a diverged run) is drawn on the top edge.
Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas, never pyplot, so no
display and no global backend change is needed. matplotlib and seaborn are imported inside the
drawing functions: loading and validating a claim file must not pay their import time.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harness.claims.filters import (
    is_numeric_key,
    parse_where,
    sort_keys,
    value_key,
    value_label,
)
from harness.claims.intervals import seed_interval
from harness.claims.measures import censor_column, layer_columns
from harness.claims.results import RUN_KEYS
from harness.claims.text import fmt
from models.base import Component
from models.registry import Registry

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from harness.claims.measures import Measure
    from harness.claims.outcome import ProtocolData

__all__ = ["FIGURES", "ClaimFigure", "FigureContext", "render_figure"]

FIGURES: Registry[type[ClaimFigure]] = Registry("figure")

#: Unused since the bands are order-statistic intervals (kept for callers that import it).
_FIG_BOOT = 1000
_FIG_SEED = 0
_DPI = 110
_NOT_REACHED = "not reached (∞)"
_CENSORED = "censored: ≥ budget (target not reached within it)"
_OPEN_ABOVE = "interval open above the budget"


@dataclass
class FigureContext:
    """What a figure may draw from: each protocol's kept runs and the claim's measures."""

    protocols: Mapping[str, ProtocolData]
    measures: Mapping[str, Measure]

    def unit(self, name: str) -> str:
        m = self.measures.get(name)
        return getattr(m, "unit", "") if m is not None else ""

    def measure_label(self, name: str) -> str:
        m = self.measures.get(name)
        if m is None:
            return name
        label = m.label or name.replace("_", " ")
        return f"{label} ({m.unit})" if m.unit else label


def _theme() -> Any:
    """seaborn's readable defaults as a context (rcParams restored afterwards)."""
    import matplotlib as mpl
    import seaborn as sns

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=1.0)}
    rc.update({"axes.titleweight": "bold", "legend.frameon": True, "figure.dpi": _DPI})
    return mpl.rc_context(rc)


def _figure(
    ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 4.4
) -> tuple[Figure, np.ndarray]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).reshape(nrows, ncols)
    return fig, axes


def _suptitle(fig: Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (long titles are clipped otherwise)."""
    chars = max(30, int(fig.get_figwidth() * 10))
    fig.suptitle(textwrap.fill(text, chars))


def _caption(fig: Figure, text: str) -> None:
    """A line at the bottom of the figure saying what its bands are."""
    fig.text(0.5, 0.005, text, ha="center", va="bottom", fontsize="x-small", color="0.35")


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _palette(n: int, numeric: bool) -> list[Any]:
    import seaborn as sns

    if numeric and n > 4:
        return list(sns.color_palette("viridis", n))
    return list(sns.color_palette("deep", max(n, 1)))


def _boot_median_ci(x: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """Median of ``x`` (inf allowed) and its order-statistic interval; NaNs are ignored.

    The same interval as the reports' tables (:func:`harness.claims.intervals.seed_interval`);
    ``rng`` is unused (kept for the callers' signature).
    """
    x = x[~np.isnan(x)]
    if x.size == 0:
        return np.nan, np.nan, np.nan
    med, iv = seed_interval(x)
    if x.size == 1:
        return med, med, med
    return med, iv.low, iv.high


#: What the bands and error bars of ``measure_vs_param`` and ``bar`` are.
BAND_NOTE = "band: order-statistic interval of the median over seeds (level: see the report)"


class ClaimFigure(Component):
    """Base: subclasses store their keyword arguments and implement :meth:`draw`."""

    where: Any

    def names(self) -> tuple[list[str], list[str]]:
        """``(measures, params)`` this figure refers to, for validation."""
        return [], []

    def check_names(self, measures: set[str], params: set[str]) -> list[tuple[str, Any, str]]:
        """Problems as ``(argument, value, allowed)`` for unknown measures or parameters."""
        out = []
        ms, ps = self.names()
        cfg = self.get_config()
        for arg, val in cfg.items():
            if val in ms and val not in measures:
                out.append((arg, val, f"a measure of this claim: {', '.join(sorted(measures))}"))
            if val in ps and val not in params:
                out.append(
                    (arg, val, f"a searched parameter or 'protocol': {', '.join(sorted(params))}")
                )
        if self.where is not None:
            for p in parse_where(self.where).params - params:
                out.append(("where", p, f"a searched parameter: {', '.join(sorted(params))}"))
        return out

    def validate(self) -> list[tuple[str, Any, str]]:
        if self.where is not None:
            parse_where(self.where)
        return []

    def draw(self, ctx: FigureContext, protocols: Sequence[str], title: str | None) -> Figure:
        raise NotImplementedError

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.where is None:
            return frame
        return frame[parse_where(self.where).mask(frame)]

    def _curves(self, ctx: FigureContext, protocol: str, hue: str) -> pd.DataFrame:
        """The protocol's per-epoch records of the runs passing ``where``, with their ``hue``."""
        d = ctx.protocols[protocol]
        runs = self._frame(d.measures)
        return d.table.curves.merge(runs[[*RUN_KEYS, hue]], on=list(RUN_KEYS))


def _runs_frame(ctx: FigureContext, protocols: Sequence[str]) -> pd.DataFrame:
    frames = [ctx.protocols[p].measures for p in protocols if p in ctx.protocols]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _hue_groups(df: pd.DataFrame, hue: str | None) -> list[tuple[str, pd.DataFrame, Any]]:
    if hue is None or hue not in df.columns:
        return [("", df, None)]
    keys = [value_key(v) for v in df[hue]]
    out = []
    for k in sort_keys(keys):
        out.append((value_label(k), df[np.array([x == k for x in keys])], k))
    return out


def _set_x(ax: Axes, xs: list[float], logx: bool) -> None:
    if logx and all(x > 0 for x in xs):
        ax.set_xscale("log", base=2 if all(float(x).is_integer() for x in xs) else 10)
    if len(xs) <= 12:
        ax.set_xticks(xs)
        ax.set_xticklabels([value_label(x) for x in xs], rotation=45 if len(xs) > 8 else 0)
        ax.minorticks_off()


def _mark_not_reached(ax: Axes, xs: list[float], color: Any, label: bool) -> None:
    """Open triangles on the top edge for groups whose median is ∞."""
    if not xs:
        return
    ax.scatter(
        xs,
        [0.97] * len(xs),
        transform=ax.get_xaxis_transform(),
        marker="^",
        s=70,
        facecolors="none",
        edgecolors=[color],
        linewidths=1.6,
        label=_NOT_REACHED if label else None,
        clip_on=False,
        zorder=5,
    )


def _censor_values(g: pd.DataFrame, measure: str) -> np.ndarray | None:
    """Each run's budget where its ``measure`` is ∞ (NaN elsewhere), or None if not recorded."""
    col = censor_column(measure)
    return g[col].to_numpy(dtype=float) if col in g.columns else None


def _bounded(vals: np.ndarray, cens: np.ndarray | None) -> np.ndarray:
    """``vals`` with each censored ∞ replaced by its run's budget: a lower bound of the value."""
    if cens is None:
        return vals
    return np.where(np.isposinf(vals) & np.isfinite(cens), cens, vals)


def _budget_line(ax: Axes, budgets: list[float], unit: str) -> None:
    """A dotted line at the (largest) budget, named in the legend."""
    if not budgets:
        return
    b = max(budgets)
    ax.axhline(b, ls=":", lw=1.2, color="0.45", zorder=1, label=f"budget: {fmt(b)} {unit}".strip())


def _mark_censored(ax: Axes, xs: list[float], ys: list[float], color: Any, label: bool) -> None:
    """Upward triangles at the budget, each with an arrow: the true value is at least this."""
    if not xs:
        return
    ax.scatter(
        xs,
        ys,
        marker="^",
        s=90,
        color=[color],
        edgecolors="black",
        linewidths=0.8,
        label=_CENSORED if label else None,
        zorder=6,
        clip_on=False,
    )
    for x, y in zip(xs, ys):
        ax.annotate(
            "",
            xy=(x, y),
            xytext=(0, 22),
            textcoords="offset points",
            arrowprops={"arrowstyle": "<-", "color": color, "lw": 1.4},
            annotation_clip=False,
        )


def _mark_open_above(ax: Axes, xs: list[float], ys: list[float], color: Any, label: bool) -> None:
    """An arrow on an interval whose upper end is censored: it ends at the budget, open above."""
    if not xs:
        return
    ax.scatter(
        xs,
        ys,
        marker=r"$\uparrow$",
        s=110,
        color=[color],
        label=_OPEN_ABOVE if label else None,
        zorder=6,
        clip_on=False,
    )


@FIGURES.register("measure_vs_param")
class MeasureVsParam(ClaimFigure):
    """A measure against a numeric parameter: median over seeds with its interval band.

    ``hue`` is ``protocol`` (one line per protocol, the default) or a parameter (one line per
    value, one panel per protocol).
    """

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        hue: str = "protocol",
        logx: bool = False,
        logy: bool = False,
        where: Any = None,
    ) -> None:
        self.measure = measure
        self.x = x
        self.hue = hue
        self.logx = logx
        self.logy = logy
        self.where = where

    def names(self) -> tuple[list[str], list[str]]:
        return [self.measure], [self.x, self.hue]

    def draw(self, ctx: FigureContext, protocols: Sequence[str], title: str | None) -> Figure:
        panels = [list(protocols)] if self.hue == "protocol" else [[p] for p in protocols]
        fig, axes = _figure(ncols=len(panels))
        rng = np.random.default_rng(_FIG_SEED)
        for ax, plist in zip(axes[0], panels):
            df = _runs_frame(ctx, plist)
            df = self._frame(df) if len(df) else df
            groups = _hue_groups(df, self.hue)
            numeric_hue = all(is_numeric_key(k) for *_, k in groups if k is not None)
            colors = _palette(len(groups), numeric_hue)
            all_x: list[float] = []
            labelled_inf = labelled_cens = labelled_open = False
            budgets: list[float] = []
            for (label, g, _), color in zip(groups, colors):
                xkeys = [value_key(v) for v in g[self.x]]
                xs = [k for k in sort_keys(xkeys) if is_numeric_key(k)]
                cens = _censor_values(g, self.measure)
                stats, bstats = [], []
                for xv in xs:
                    at = np.array([k == xv for k in xkeys])
                    vals = g[self.measure].to_numpy(dtype=float)[at]
                    cv = cens[at] if cens is not None else None
                    stats.append(_boot_median_ci(vals, rng))
                    bstats.append(_boot_median_ci(_bounded(vals, cv), rng))
                    if cv is not None:
                        budgets.extend(float(c) for c in cv[np.isfinite(cv)])
                if not xs:
                    continue
                arr = np.array(stats, dtype=float)
                barr = np.array(bstats, dtype=float)  # ∞ replaced by the budget: bounds
                xf = np.array(xs, dtype=float)
                finite = np.isfinite(arr[:, 0])
                lo = np.where(np.isfinite(barr[:, 1]), barr[:, 1], np.nan)
                hi = np.where(np.isfinite(barr[:, 2]), barr[:, 2], np.nan)
                ax.plot(
                    xf[finite], arr[finite, 0], marker="o", color=color, label=label or None, lw=2
                )
                ax.fill_between(xf, lo, hi, color=color, alpha=0.18, lw=0)
                inf = np.isposinf(arr[:, 0])
                cens_pt = inf & np.isfinite(barr[:, 0])
                inf_x = [float(x) for x, m in zip(xf, inf & ~cens_pt) if m]
                _mark_not_reached(ax, inf_x, color, label=bool(inf_x) and not labelled_inf)
                labelled_inf = labelled_inf or bool(inf_x)
                cx, cy = list(xf[cens_pt]), list(barr[cens_pt, 0])
                _mark_censored(ax, cx, cy, color, label=bool(cx) and not labelled_cens)
                labelled_cens = labelled_cens or bool(cx)
                open_pt = finite & np.isposinf(arr[:, 2]) & np.isfinite(barr[:, 2])
                ox, oy = list(xf[open_pt]), list(barr[open_pt, 2])
                _mark_open_above(ax, ox, oy, color, label=bool(ox) and not labelled_open)
                labelled_open = labelled_open or bool(ox)
                all_x.extend(float(x) for x in xs)
            _budget_line(ax, budgets, ctx.unit(self.measure))
            if not all_x:
                _no_data(ax, f"no values of {self.measure}")
            _set_x(ax, sorted(set(all_x)), self.logx)
            if self.logy:
                ax.set_yscale("log")
            ax.set_xlabel(self.x)
            ax.set_ylabel(ctx.measure_label(self.measure))
            if self.hue != "protocol":
                ax.set_title(plist[0], fontsize="medium")
            if len(groups) > 1 or labelled_inf or labelled_cens or labelled_open:
                ax.legend(
                    title=self.hue if self.hue != "protocol" else "protocol", fontsize="small"
                )
        _suptitle(
            fig, title or f"{ctx.measure_label(self.measure)} vs {self.x} (median over seeds)"
        )
        _caption(fig, BAND_NOTE)
        return fig


@FIGURES.register("bar")
class Bar(ClaimFigure):
    """Group medians of a measure with interval error bars, per value of ``x`` (any type)."""

    def __init__(
        self,
        *,
        measure: str,
        x: str,
        hue: str | None = "protocol",
        logy: bool = False,
        where: Any = None,
    ) -> None:
        self.measure = measure
        self.x = x
        self.hue = hue
        self.logy = logy
        self.where = where

    def names(self) -> tuple[list[str], list[str]]:
        return [self.measure], [self.x, *([self.hue] if self.hue else [])]

    def draw(self, ctx: FigureContext, protocols: Sequence[str], title: str | None) -> Figure:
        df = _runs_frame(ctx, protocols)
        if len(df):
            df = self._frame(df)
        groups = _hue_groups(df, self.hue)
        xkeys_all = sort_keys(value_key(v) for v in df[self.x]) if len(df) else []
        fig, axes = _figure(width=max(6.4, 0.9 * len(xkeys_all) * max(len(groups), 1) + 2))
        ax = axes[0, 0]
        rng = np.random.default_rng(_FIG_SEED)
        colors = _palette(len(groups), False)
        width = 0.8 / max(len(groups), 1)
        top = 0.0
        inf_marks = []
        budgets: list[float] = []
        labelled_cens = labelled_open = False
        for j, ((_, g, _), color) in enumerate(zip(groups, colors)):
            xkeys = [value_key(v) for v in g[self.x]]
            cens = _censor_values(g, self.measure)
            for i, xv in enumerate(xkeys_all):
                at = np.array([k == xv for k in xkeys], dtype=bool)
                vals = g[self.measure].to_numpy(dtype=float)[at]
                cv = cens[at] if cens is not None else None
                if cv is not None:
                    budgets.extend(float(c) for c in cv[np.isfinite(cv)])
                med, _, hi = _boot_median_ci(vals, rng)
                bmed, blo, bhi = _boot_median_ci(_bounded(vals, cv), rng)
                pos = i - 0.4 + width * (j + 0.5)
                if np.isnan(med):
                    continue
                censored = bool(np.isposinf(med) and np.isfinite(bmed))
                if np.isposinf(med) and not censored:
                    inf_marks.append((pos, color))
                    continue
                # a censored median is drawn as a hatched bar up to the budget: a lower bound
                m = bmed if censored else med
                err_lo = m - blo if np.isfinite(blo) else 0.0
                err_hi = bhi - m if np.isfinite(bhi) else 0.0
                ax.bar(
                    pos,
                    m,
                    width=width * 0.95,
                    color=color,
                    alpha=0.45 if censored else 1.0,
                    hatch="//" if censored else None,
                    edgecolor=color if censored else None,
                )
                ax.errorbar(pos, m, yerr=[[err_lo], [err_hi]], color="black", capsize=4, lw=1.2)
                if censored:
                    _mark_censored(ax, [pos], [m], color, label=not labelled_cens)
                    labelled_cens = True
                elif np.isposinf(hi) and np.isfinite(bhi):
                    _mark_open_above(ax, [pos], [bhi], color, label=not labelled_open)
                    labelled_open = True
                top = max(top, bhi if np.isfinite(bhi) else m)
        _budget_line(ax, budgets, ctx.unit(self.measure))
        if top == 0.0 and not inf_marks:
            _no_data(ax, f"no values of {self.measure}")
        for pos, color in inf_marks:
            ax.annotate(
                "∞",
                (pos, 0.93),
                xycoords=("data", "axes fraction"),
                ha="center",
                fontsize="large",
                color=color,
                fontweight="bold",
            )
        ax.set_xticks(range(len(xkeys_all)))
        ax.set_xticklabels(
            [value_label(k) for k in xkeys_all], rotation=20 if len(xkeys_all) > 4 else 0
        )
        if self.logy:
            ax.set_yscale("log")
        ax.set_xlabel(self.x)
        ax.set_ylabel(ctx.measure_label(self.measure))
        handles: list[Any] = []
        if len(groups) > 1:
            from matplotlib.patches import Patch

            handles = [Patch(color=c, label=lab) for (lab, *_), c in zip(groups, colors)]
        # the budget line and the censored / open-above markers carry their own labels
        handles += list(ax.get_legend_handles_labels()[0])
        if handles:
            ax.legend(
                handles=handles, title=self.hue if len(groups) > 1 else None, fontsize="small"
            )
        note = "; ∞ = not reached" if inf_marks else ""
        _suptitle(
            fig, title or f"{ctx.measure_label(self.measure)} by {self.x} (median over seeds{note})"
        )
        _caption(fig, BAND_NOTE.replace("band", "error bars"))
        return fig


@FIGURES.register("curves")
class Curves(ClaimFigure):
    """Learning curves per group: median over seeds per epoch with the interquartile band.

    One panel per protocol; one line per value of ``hue``.
    """

    def __init__(
        self,
        *,
        metric: str,
        hue: str,
        logy: bool = False,
        where: Any = None,
    ) -> None:
        self.metric = metric
        self.hue = hue
        self.logy = logy
        self.where = where

    def names(self) -> tuple[list[str], list[str]]:
        return [], [self.hue]

    def draw(self, ctx: FigureContext, protocols: Sequence[str], title: str | None) -> Figure:
        import seaborn as sns

        fig, axes = _figure(ncols=len(protocols))
        for ax, p in zip(axes[0], protocols):
            if self.metric not in ctx.protocols[p].table.curves.columns:
                _no_data(ax, f"{self.metric} not recorded")
                continue
            cur = self._curves(ctx, p, self.hue)[["epoch", self.metric, self.hue]].copy()
            hkeys = [value_key(v) for v in cur[self.hue]]
            order = sort_keys(hkeys)
            cur["_hue"] = [value_label(k) for k in hkeys]
            numeric = all(is_numeric_key(k) for k in order)
            palette = dict(zip([value_label(k) for k in order], _palette(len(order), numeric)))
            sns.lineplot(
                data=cur,
                x="epoch",
                y=self.metric,
                hue="_hue",
                hue_order=[value_label(k) for k in order],
                palette=palette,
                estimator="median",
                errorbar=("pi", 50),
                ax=ax,
                lw=1.8,
            )
            if self.logy:
                ax.set_yscale("log")
            ax.set_title(p, fontsize="medium")
            ax.set_xlabel("epoch")
            ax.set_ylabel(self.metric)
            leg = ax.get_legend()
            if leg is not None:
                leg.set_title(self.hue)
                ncol = 2 if len(order) > 6 else 1
                ax.legend(title=self.hue, fontsize="x-small", ncol=ncol)
        _suptitle(fig, title or f"{self.metric} per epoch (median over seeds, IQR band)")
        return fig


@FIGURES.register("layer_profile")
class LayerProfile(ClaimFigure):
    """A per-layer telemetry value against depth (layer index), one panel per epoch.

    ``epochs``: list of epoch numbers and/or ``last``; default ``[0, last]`` (at init and at the
    end). Median over runs with the interquartile band; log y by default (gradient norms).
    """

    def __init__(
        self,
        *,
        prefix: str = "grad_norm/",
        suffix: str = "",
        hue: str = "model.activation",
        epochs: Any = (0, "last"),
        logy: bool = True,
        where: Any = None,
    ) -> None:
        self.prefix = prefix
        self.suffix = suffix
        self.hue = hue
        self.epochs = epochs
        self.logy = logy
        self.where = where

    def names(self) -> tuple[list[str], list[str]]:
        return [], [self.hue]

    def epoch_list(self) -> list[Any]:
        """``epochs`` as a list (one epoch may be given bare): integers and/or ``"last"``."""
        return list(self.epochs) if isinstance(self.epochs, (list, tuple)) else [self.epochs]

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        eps = self.epoch_list()
        for e in eps:
            if not (e == "last" or (isinstance(e, int) and not isinstance(e, bool) and e >= 0)):
                out.append(
                    ("epochs", self.epochs, "a list of epochs (integers >= 0) and/or 'last'")
                )
        return out

    def draw(self, ctx: FigureContext, protocols: Sequence[str], title: str | None) -> Figure:
        import seaborn as sns

        eps = self.epoch_list()
        fig, axes = _figure(ncols=len(eps), nrows=len(protocols), width=5.6)
        keys = ["protocol", "trial", "replicate"]
        for r, p in enumerate(protocols):
            d = ctx.protocols[p]
            runs = self._frame(d.measures)
            cols = layer_columns(d.table.curves.columns, self.prefix, self.suffix)
            cur = d.table.curves.merge(runs[[*keys, self.hue]], on=keys)
            for c, ep in enumerate(eps):
                ax = axes[r, c]
                if not cols or cur.empty:
                    _no_data(ax, f"no {self.prefix}* telemetry")
                    continue
                if ep == "last":
                    last = cur.groupby(keys)["epoch"].transform("max")
                    rows = cur[cur["epoch"] == last]
                else:
                    rows = cur[cur["epoch"] == ep]
                long = []
                for _, row in rows.iterrows():
                    vals = row[cols].to_numpy(dtype=float)
                    present = [i for i, v in enumerate(vals) if np.isfinite(v)]
                    for pos, i in enumerate(present):
                        long.append(
                            {"layer": pos + 1, "value": vals[i], "hue": value_label(row[self.hue])}
                        )
                if not long:
                    _no_data(ax, f"no data at epoch {ep}")
                    continue
                ldf = pd.DataFrame(long)
                if self.logy:
                    ldf = ldf[ldf["value"] > 0]
                order = [value_label(k) for k in sort_keys(value_key(v) for v in runs[self.hue])]
                order = [o for o in order if o in set(ldf["hue"])]
                sns.lineplot(
                    data=ldf,
                    x="layer",
                    y="value",
                    hue="hue",
                    hue_order=order,
                    palette=dict(zip(order, _palette(len(order), False))),
                    estimator="median",
                    errorbar=("pi", 50),
                    marker="o",
                    ax=ax,
                )
                if self.logy:
                    ax.set_yscale("log")
                when = (
                    "at init (epoch 0)"
                    if ep == 0
                    else ("last epoch" if ep == "last" else f"epoch {ep}")
                )
                ax.set_title(f"{p}: {when}" if len(protocols) > 1 else when, fontsize="medium")
                from matplotlib.ticker import MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_xlabel("layer (1 = nearest the input)")
                ax.set_ylabel(f"{self.prefix.rstrip('/')}{self.suffix}")
                leg = ax.get_legend()
                if leg is not None:
                    ax.legend(title=self.hue, fontsize="small")
        _suptitle(
            fig, title or f"{self.prefix.rstrip('/')} through depth (median over runs, IQR band)"
        )
        return fig


def render_figure(
    figure: ClaimFigure,
    ctx: FigureContext,
    protocols: Sequence[str],
    path: Path,
    title: str | None = None,
) -> Path:
    """Draw one figure and save it as PNG at ``path``."""
    with _theme():
        fig = figure.draw(ctx, [p for p in protocols if p in ctx.protocols], title)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=_DPI)
    return path
