"""Figures of a single run: learning curves (what the MLflow run page shows as a PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["learning_curves_figure", "plot_learning_curves"]


def learning_curves_figure(records: list[dict[str, float]], *, title: str = "") -> Any:
    """Loss and accuracy (or R²) per epoch for train and val, side by side (a matplotlib
    ``Figure``, no pyplot state: what ``Tracker.log_figure`` logs)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from harness.study.plots import metric_label

    epochs = [r["epoch"] for r in records]
    second = "accuracy" if any("val/accuracy" in r for r in records) else "r2"
    fig = Figure(figsize=(10, 4), constrained_layout=True)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", second)):
        for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
            key = f"{split}/{metric}"
            ys = [r.get(key, float("nan")) for r in records]
            if any(y == y for y in ys):  # skip all-NaN series
                ax.plot(epochs, ys, style, marker="o", markersize=3, label=split)
        ax.set_xlabel(metric_label("epoch"))
        ax.set_ylabel(metric_label(metric) + (", log scale" if metric == "loss" else ""))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(title="split")
        if metric == "loss":
            ax.set_yscale("log")
    fig.suptitle(title or "learning curves")
    return fig


def plot_learning_curves(
    records: list[dict[str, float]], path: str | Path, *, title: str = ""
) -> Path:
    """:func:`learning_curves_figure` saved to ``path`` (PNG). Returns ``path``."""
    path = Path(path)
    learning_curves_figure(records, title=title).savefig(path, dpi=110)
    return path
