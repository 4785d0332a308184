"""Figures of a single run: learning curves (what the MLflow run page shows as a PNG)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_learning_curves"]


def plot_learning_curves(
    records: list[dict[str, float]], path: str | Path, *, title: str = ""
) -> Path:
    """Loss and accuracy (or R²) per epoch for train and val, side by side. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    second = "accuracy" if any("val/accuracy" in r for r in records) else "r2"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, metric in zip(axes, ("loss", second)):
        for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
            key = f"{split}/{metric}"
            ys = [r.get(key, float("nan")) for r in records]
            if any(y == y for y in ys):  # skip all-NaN series
                ax.plot(epochs, ys, style, marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
        if metric == "loss":
            ax.set_yscale("log")
    fig.suptitle(title or "learning curves")
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
