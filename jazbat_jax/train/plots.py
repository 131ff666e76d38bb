"""Run figures: accuracy / loss curves (paper Fig. 11), confusion matrix (Fig. 4),
per-class precision / recall / F1 bars (Fig. 6). Each is written as a PNG (200 dpi) and an SVG beside it
(``figures.save_figure``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # figures drawn straight to files: no pyplot, no display backend

from jazbat_jax.figures import save_figure


def plot_curves(history: list[dict], path: Path, num_classes: int | None = None) -> None:
    save_figure(curves_figure(history, num_classes), path)


def curves_figure(history: list[dict], num_classes: int | None = None) -> Figure:
    """Training and validation accuracy (%) and loss per epoch; with ``num_classes``, the chance accuracy."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    (ax_acc, ax_loss) = fig.subplots(1, 2)
    for k, split in enumerate(("train", "val")):
        if all(f"{split}_accuracy" in h for h in history):
            label = "training" if split == "train" else "validation"
            ax_acc.plot(epochs, [100 * h[f"{split}_accuracy"] for h in history], marker=".", color=f"C{k}",
                        label=label)
            ax_loss.plot(epochs, [h[f"{split}_loss"] for h in history], marker=".", color=f"C{k}")
    if num_classes:
        ax_acc.axhline(100 / num_classes, color="0.45", ls="--", lw=1, label=f"chance (1/{num_classes})")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    # Below the panels, so that it covers no curve.
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
    return fig


def plot_confusion(report: dict, path: Path, title: str = "Confusion matrix (row %)") -> None:
    names = report["class_names"]
    pct = np.asarray(report["confusion_row_pct"])
    counts = np.asarray(report["confusion"])
    size = max(4.0, 0.55 * len(names) + 2)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if len(names) <= 20:
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{pct[i, j]:.0f}%\n{counts[i, j]}", ha="center", va="center", fontsize=7,
                        color="white" if pct[i, j] > 50 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="% of the true class")
    save_figure(fig, path)


def plot_per_class(report: dict, path: Path) -> None:
    names = report["class_names"]
    x = np.arange(len(names))
    fig = Figure(figsize=(max(6.0, 0.6 * len(names) + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    for k, metric in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (k - 1) * 0.27, [report["per_class"][n][metric] for n in names], 0.27, label=metric)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set(ylim=(0, 1.0), ylabel="score", title="Per-class precision / recall / F1")
    ax.grid(axis="y", alpha=0.3)
    # Above the bars, outside the axes: a score of 1.0 would otherwise hide under it.
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncol=3, fontsize=8, frameon=False)
    save_figure(fig, path)
