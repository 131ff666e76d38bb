"""The report's figures (PNG at 200 dpi and SVG, ``jazbat_jax.figures.save_figure``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jazbat_jax.experiments.report.common import PRETRAIN_LABEL, _group, _history
from jazbat_jax.figures import save_figure
from jazbat_jax.files import read_json_lines


def _save_dot_plot(fig, ax, path: Path, title: str, legend_columns: int) -> bool:
    """The common finish of the report's dot plots: small title, horizontal grid, legend below, saved."""
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", ncol=legend_columns, fontsize=8, frameon=False)
    save_figure(fig, path)
    return True


def _plot_meaning(meaning: dict, classes: int, path: Path) -> bool:
    """Pooled accuracy per condition with its 95% interval, the permuted-label control beside it."""
    from matplotlib.figure import Figure

    items = [(k, m) for k, m in meaning.items() if m["summary"] is not None]
    if not items:
        return False
    fig = Figure(figsize=(max(6.0, 0.9 * len(items) + 2), 4.4), layout="constrained")
    ax = fig.subplots()
    for i, ((protocol, step, inp, pre), m) in enumerate(items):
        for dx, summary, color, label in ((-0.15, m["summary"], "C0", "true labels"),
                                          (0.15, m["control_summary"], "0.55", "permuted-label control")):
            if summary is None:
                continue
            low, high = summary["ci"] or (summary["accuracy"], summary["accuracy"])
            ax.errorbar(i + dx, 100 * summary["accuracy"], yerr=[[100 * (summary["accuracy"] - low)],
                                                                  [100 * (high - summary["accuracy"])]],
                        fmt="o", color=color, capsize=3, label=label if i == 0 else None)
    ax.axhline(100 / classes, color="0.45", ls="--", lw=1, label=f"chance (1/{classes})")
    names = [f"{inp.upper()} {'random forest' if pre == 'rf' else PRETRAIN_LABEL[pre]}\n"
             f"{'subject split' if protocol == 'subject' else 'random split'}, window step {step}"
             for (protocol, step, inp, pre), _ in items]
    ax.set_xticks(range(len(items)), names, fontsize=7, rotation=30, ha="right")
    ax.set(ylabel="test accuracy (%), pooled", ylim=(0, 100))
    return _save_dot_plot(fig, ax, path, "Accuracy with 95% participant-bootstrap intervals, and the permuted-label control", 3)


def _plot_participants(meaning: dict, classes: int, path: Path) -> bool:
    """Each participant's test accuracy per model under the subject split (seeds averaged), from the
    summaries the results table already computed."""
    from matplotlib.figure import Figure

    points = {(inp, pre): m["summary"]["per_participant"] for (protocol, _, inp, pre), m in meaning.items()
              if protocol == "subject" and m["summary"] is not None}
    if not points:
        return False
    fig = Figure(figsize=(max(5.0, 1.1 * len(points) + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # horizontal jitter only, so that equal values stay visible
    for i, ((inp, pre), per) in enumerate(points.items()):
        vals = 100 * np.asarray(list(per.values()), float)
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(vals)), vals, s=14, alpha=0.7, color=f"C{i}")
        ax.plot([i - 0.25, i + 0.25], [np.median(vals)] * 2, color="k", lw=1.5)
    ax.axhline(100 / classes, color="0.45", ls="--", lw=1, label=f"chance (1/{classes})")
    ax.set_xticks(range(len(points)), [f"{inp.upper()} {'RF' if pre == 'rf' else PRETRAIN_LABEL[pre]}"
                                       for inp, pre in points], fontsize=8, rotation=20, ha="right")
    ax.set(ylabel="participant's test accuracy (%)", ylim=(-2, 102),
           title="Per-participant accuracy, subject split (bar: median)")
    ax.title.set_fontsize(9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    save_figure(fig, path)
    return True


def _style_legend(fig, configs: list[tuple[str, str]], chance: int | None, solid: str, dotted: str) -> None:
    """One legend below the panels (it covers no curve): a colour per configuration, then the line styles."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=2, label=label) for c, label in configs]
    handles += [Line2D([], [], color="0.3", ls="-", marker=".", label=solid),
                Line2D([], [], color="0.3", ls=":", marker=".", label=dotted)]
    if chance:
        handles.append(Line2D([], [], color="0.45", ls="--", lw=1, label=f"chance (1/{chance})"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)


def _plot_curves(results: Path, rows: list[dict], path: Path, title: str) -> bool:
    """Mean validation and training curves per configuration over folds × seeds, the validation spread
    (± 1 sample SD) as a band, and the chance accuracy."""
    from matplotlib.figure import Figure

    groups = _group([r for r in rows if r["kind"] == "deep"], "input", "pretraining")
    if not groups:
        return False
    histories = {key: [h for h in (_history(results, r["job"]) for r in rs) if h] for key, rs in sorted(groups.items())}
    if not any(histories.values()):
        return False  # run folders not present (e.g. a copied results folder without runs)
    classes = len(rows[0]["report"]["class_names"])
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    (ax_acc, ax_loss) = fig.subplots(1, 2)
    configs = []
    for k, ((inp, pre), hs) in enumerate(histories.items()):
        if not hs:
            continue
        n = min(len(h) for h in hs)
        ep = np.arange(1, n + 1)
        color = f"C{k}"  # one colour per configuration: solid validation, dotted training
        configs.append((color, f"{inp.upper()} {PRETRAIN_LABEL[pre]} ({len(hs)} runs)"))
        for key, ax, style in (("val_accuracy", ax_acc, "-"), ("train_accuracy", ax_acc, ":"),
                               ("val_loss", ax_loss, "-"), ("train_loss", ax_loss, ":")):
            vals = np.array([[h[i][key] for i in range(n)] for h in hs if key in h[0]])
            if not len(vals):
                continue
            if key.endswith("accuracy"):
                vals = 100 * vals
            mean = vals.mean(axis=0)
            ax.plot(ep, mean, style, marker=".", color=color)
            if key.startswith("val") and len(vals) > 1:
                sd = vals.std(axis=0, ddof=1)
                ax.fill_between(ep, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
    ax_acc.axhline(100 / classes, color="0.45", ls="--", lw=1)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    _style_legend(fig, configs, classes, "validation: mean, band ± 1 SD over runs", "training: mean")
    fig.suptitle(f"{title}; mean over folds × seeds", fontsize=10)
    save_figure(fig, path)
    return True


def _plot_pretrain_curves(results: Path, pretrain: list[dict], path: Path) -> bool:
    from matplotlib.figure import Figure

    hists = []
    for r in pretrain:
        hists.append(read_json_lines(results / "pretrain" / r["job"] / "run" / "metrics.jsonl"))
    if not any(hists):
        return False
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    configs, classes = [], None
    for k, (r, hist) in enumerate(zip(pretrain, hists)):
        if hist:
            s = r["settings"]
            classes = len(r["report"]["class_names"])
            configs.append((f"C{k}", f"{s['device']} {s['input'].upper()} (one run)"))
            ep = [h["epoch"] for h in hist]
            ax.plot(ep, [100 * h["train_accuracy"] for h in hist], ":", marker=".", color=f"C{k}")
            if "val_accuracy" in hist[0]:
                ax.plot(ep, [100 * h["val_accuracy"] for h in hist], "-", marker=".", color=f"C{k}")
    if classes:
        ax.axhline(100 / classes, color="0.45", ls="--", lw=1)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, None),
           title=f"Pretraining on WISDM ({classes} activities)" if classes else "Pretraining on WISDM")
    ax.grid(alpha=0.3)
    _style_legend(fig, configs, classes, "validation", "training")
    save_figure(fig, path)
    return True
