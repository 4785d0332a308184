"""The ``scatter`` claim figure: one point per (x, y) cell, colored by a measure (median over seeds).

The book's random-search figure (``hyperparameter_optimization.py``) plots every trial at its
(learning rate, weight decay) with its validation accuracy; a random search has one run per
trial and continuous parameters, which the per-group figures (medians over seeds per ``x``
value) cannot show::

    - {name: scatter, x: train.optimizer.lr, y: train.weight_decay, measure: val_acc,
       logx: true, logy: true, top: 10}

``top: k`` rings the k best cells (``mode`` says which end is best).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.claims.figures import (
    FIGURES,
    ClaimFigure,
    FigureContext,
    _caption,
    _figure,
    _no_data,
    _runs_frame,
    _suptitle,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Scatter"]


@FIGURES.register("scatter")
class Scatter(ClaimFigure):
    """Each (``x``, ``y``) cell colored by the median of ``measure``; the ``top`` best ringed."""

    def __init__(
        self,
        *,
        x: str,
        y: str,
        measure: str,
        logx: bool = False,
        logy: bool = False,
        top: int = 0,
        mode: str = "max",
        where: Any = None,
    ) -> None:
        self.x = x
        self.y = y
        self.measure = measure
        self.logx = logx
        self.logy = logy
        self.top = top
        self.mode = mode
        self.where = where

    def names(self) -> tuple[list[str], list[str]]:
        return [self.measure], [self.x, self.y]

    def validate(self) -> list[tuple[str, Any, str]]:
        out = super().validate()
        if not isinstance(self.top, int) or isinstance(self.top, bool) or self.top < 0:
            out.append(("top", self.top, "an integer >= 0 (0: no ring)"))
        if self.mode not in ("max", "min"):
            out.append(("mode", self.mode, "max (higher is better) or min"))
        return out

    def draw(self, ctx: FigureContext, protocols: Sequence[str], title: str | None) -> Figure:
        df = _runs_frame(ctx, protocols)
        if len(df):
            df = self._frame(df)
        fig, axes = _figure()
        ax = axes[0, 0]
        cols = [self.x, self.y, self.measure]
        if not len(df) or any(c not in df.columns for c in cols):
            _no_data(ax, f"no runs with {', '.join(cols)}")
            return fig
        # one point per (x, y) cell: the median over its seeds (a trial of a random search)
        cell = df[cols].astype(float).groupby([self.x, self.y], as_index=False).median()
        xs = cell[self.x].to_numpy(dtype=float)
        ys = cell[self.y].to_numpy(dtype=float)
        vs = cell[self.measure].to_numpy(dtype=float)
        ok = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(vs)
        if not ok.any():
            _no_data(ax, f"no finite values of {self.measure}")
            return fig
        sc = ax.scatter(xs[ok], ys[ok], c=vs[ok], cmap="viridis", s=36, edgecolors="none")
        cb = fig.colorbar(sc, ax=ax)
        cb.set_label(ctx.measure_label(self.measure))
        if self.top:
            key = -vs if self.mode == "max" else vs
            key = np.where(ok, key, np.inf)
            best = np.argsort(key, kind="stable")[: min(self.top, int(ok.sum()))]
            ax.scatter(
                xs[best],
                ys[best],
                s=140,
                facecolors="none",
                edgecolors="red",
                linewidths=1.5,
                label=f"{len(best)} best",
            )
            ax.legend(fontsize="small", loc="best")
        if self.logx:
            ax.set_xscale("log")
        if self.logy:
            ax.set_yscale("log")
        ax.set_xlabel(self.x)
        ax.set_ylabel(self.y)
        _suptitle(
            fig, title or f"{ctx.measure_label(self.measure)} per run over {self.x} × {self.y}"
        )
        _caption(
            fig, f"one point per {self.x} × {self.y} cell ({int(ok.sum())}): median over its seeds"
        )
        return fig
