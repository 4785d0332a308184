"""Figures of probe protocols: optimizer paths over a contour, and per-step record profiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.claims.figures import (
    FIGURES,
    ClaimFigure,
    FigureContext,
    _figure,
    _no_data,
    _palette,
    _suptitle,
)
from harness.claims.filters import sort_keys, value_key, value_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["RecordProfile", "ToyPaths"]


@FIGURES.register("toy_paths")
class ToyPaths(ClaimFigure):
    """The book's ``optimizer_compare_naive`` figure: each optimizer's path over the contour of
    the toy objective, one panel per value of ``hue`` (the optimizer), the minimum marked.

    ``replicates`` paths per panel are drawn (random starts differ per seed; the book's fixed
    start gives one path). Reads the ``x``, ``y`` records of the ``toy_descent`` probe.
    """

    def __init__(
        self,
        *,
        objective: str = "book_bowl",
        hue: str = "probe.optimizer",
        replicates: int = 1,
        where: Any = None,
    ) -> None:
        self.objective = objective
        self.hue = hue
        self.replicates = replicates
        self.where = where

    def names(self) -> tuple[list[str], list[str]]:
        return [], [self.hue]

    def draw(self, ctx: FigureContext, protocols: Sequence[str], title: str | None) -> Figure:
        from models.objectives import OBJECTIVES

        obj = OBJECTIVES.build(self.objective)
        X, Y, Z = obj.grid(160)
        cur = [self._curves(ctx, p, self.hue) for p in protocols]
        cur = [c for c in cur if "x" in c.columns]
        if not cur:
            fig, axes = _figure()
            _no_data(axes[0, 0], "no x, y records")
            return fig
        import pandas as pd

        df = pd.concat(cur, ignore_index=True)
        hkeys = [value_key(v) for v in df[self.hue]]
        order = sort_keys(hkeys)
        ncols = min(len(order), 4)
        nrows = int(np.ceil(len(order) / ncols))
        fig, axes = _figure(ncols=ncols, nrows=nrows, width=4.6, height=3.6)
        colors = _palette(max(int(self.replicates), 1), False)
        (x0, x1), (y0, y1) = obj.box
        for i, key in enumerate(order):
            ax = axes[i // ncols, i % ncols]
            ax.contour(
                X,
                Y,
                Z,
                levels=np.quantile(Z, np.linspace(0.02, 0.9, 14)),
                colors="0.75",
                linewidths=0.8,
            )
            g = df[np.array([k == key for k in hkeys])]
            for j, (rkey, path) in enumerate(g.groupby(["protocol", "replicate"], sort=True)):
                if j >= int(self.replicates):
                    break
                path = path.sort_values("epoch")
                ax.plot(
                    path["x"],
                    path["y"],
                    "-o",
                    ms=2.5,
                    lw=1.2,
                    color=colors[j % len(colors)],
                    label=f"{rkey[0]} seed {rkey[1]}" if j < 3 else None,
                )
                ax.plot(path["x"].iloc[0], path["y"].iloc[0], "s", color="k", ms=4)
            m = np.asarray(obj.minima)
            ax.plot(m[:, 0], m[:, 1], "+", color="crimson", ms=10, mew=2, label="minima")
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            ax.set_title(value_label(key), fontsize="small")
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            ax.legend(fontsize="xx-small", loc="lower right")
        for j in range(len(order), nrows * ncols):
            axes[j // ncols, j % ncols].set_visible(False)
        _suptitle(fig, title or f"Optimizer paths on {self.objective} (square: start, +: minima)")
        return fig


@FIGURES.register("record_profile")
class RecordProfile(ClaimFigure):
    """A per-step record of a probe (``metric``) against its step (``xlabel`` names it: a layer,
    an update), median over seeds with the min–max band, one line per value of ``hue``."""

    def __init__(
        self, *, metric: str, hue: str, xlabel: str = "step", logy: bool = False, where: Any = None
    ) -> None:
        self.metric = metric
        self.hue = hue
        self.xlabel = xlabel
        self.logy = logy
        self.where = where

    def names(self) -> tuple[list[str], list[str]]:
        return [], [self.hue]

    def draw(self, ctx: FigureContext, protocols: Sequence[str], title: str | None) -> Figure:
        fig, axes = _figure(ncols=len(protocols))
        for ax, p in zip(axes[0], protocols):
            cur = self._curves(ctx, p, self.hue)
            if self.metric not in cur.columns or cur[self.metric].isna().all():
                _no_data(ax, f"{self.metric} not recorded")
                continue
            hkeys = [value_key(v) for v in cur[self.hue]]
            order = sort_keys(hkeys)
            for key, color in zip(order, _palette(len(order), False)):
                g = cur[np.array([k == key for k in hkeys])]
                s = g.groupby("epoch")[self.metric]
                med, lo, hi = s.median(), s.min(), s.max()
                ax.plot(med.index, med.values, "-o", color=color, label=value_label(key), lw=1.8)
                ax.fill_between(med.index, lo.values, hi.values, color=color, alpha=0.18, lw=0)
            steps = sorted(set(cur["epoch"]))
            if len(steps) <= 12:  # layers or a few updates: whole-number ticks
                ax.set_xticks(steps)
            if self.logy:
                ax.set_yscale("log")
            ax.set_xlabel(self.xlabel)
            ax.set_ylabel(self.metric)
            ax.set_title(p, fontsize="medium")
            ax.legend(title=self.hue, fontsize="x-small")
        _suptitle(
            fig, title or f"{self.metric} per {self.xlabel} (median over seeds, min–max band)"
        )
        return fig
