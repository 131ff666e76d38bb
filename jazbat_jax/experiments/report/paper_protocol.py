"""The report's first table: the paper's own protocol (the random window split at the paper's window step),
every model next to its permuted-label control on the same folds and seeds, their difference paired over
participants, and the paper's Table VI figure for the same cell (another data set)."""
from __future__ import annotations

from pathlib import Path

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments.collect import Collected
from jazbat_jax.experiments.report.common import PAPER_TABLE_VI, PRETRAIN_LABEL, _history, _table
from jazbat_jax.experiments.report.meaning import _meaning, _p, _percent_ci, matched_runs
from jazbat_jax.figures import save_figure

PAPER_STEP = 16  # the paper's window step (256-sample windows, 94% overlap)


def _model_name(pre: str) -> str:
    return "random forest (gait features)" if pre == "rf" else f"Jazbat-Net, {PRETRAIN_LABEL[pre]}"


def paper_protocol_cells(c: Collected) -> list[dict]:
    """One cell per (input, model) of the random split at the paper's step: the matched true-label and
    control runs, their summaries and the paired difference (None where a side has not run)."""
    cfg, g = c.cfg, c.cfg["grid"]
    if ("random", PAPER_STEP) not in cfgmod.protocol_steps(cfg):
        return []
    rows = [r for r in c.rows(predict="emotion", protocol="random") if r["step"] == PAPER_STEP]
    cells = []
    for inp in g["inputs"]:
        for pre in (["rf"] if cfg["baseline"]["enabled"] else []) + list(g["pretraining"]):
            true = [r for r in rows if r["input"] == inp and r["pretraining"] == pre and r["labels"] == "true"]
            control = [r for r in rows if r["input"] == inp and r["pretraining"] == pre and r["labels"] == "permuted"]
            true, control = matched_runs(true, control)
            cell = {"input": inp, "pretraining": pre, "true": true, "control": control, "summary": None,
                    "control_summary": None, "paired": None, "paper": PAPER_TABLE_VI.get((inp, pre))}
            classes = len(true[0]["report"]["class_names"]) if true else 3
            m = _meaning(c.results, true, control, classes)  # the same statistics as the split tables
            if m["summary"] is not None and m["control_summary"] is not None:
                cell.update(summary=m["summary"], control_summary=m["control_summary"],
                            paired={"difference": m["summary"]["accuracy"] - m["control_summary"]["accuracy"],
                                    "ci": m["difference_ci"], "p": m["p_difference"]})
            cells.append(cell)
    return cells


def _epochs_cell(runs: list[dict]) -> str:
    """'26 / 36' (best / stopped epoch) per run, in (fold, seed) order; '—' for forests."""
    if not runs or runs[0]["kind"] != "deep":
        return "—"
    return ", ".join(f"{r['checkpoint_epoch']} / {r['stopped_epoch']}" for r in runs)


def paper_protocol_section(c: Collected, fig_dir: Path) -> list[str]:
    """The first table and its figure (nothing when the grid does not run the random split at the paper's step)."""
    from jazbat_jax.experiments import stats

    cells = paper_protocol_cells(c)
    if not cells:
        return []
    f = c.cfg["finetune"]
    done = [x for x in cells if x["paired"] is not None]
    ps = iter(stats.holm([x["paired"]["p"] for x in done]) if done else [])
    table = []
    for x in cells:
        name = f"{x['input'].upper()}, {_model_name(x['pretraining'])}"
        paper = f"{x['paper']:.2f}" if x["paper"] is not None else "—"
        if x["paired"] is None:
            table.append([name, "not run yet", "—", "—", "—", "—", "—", paper])
            continue
        d = x["paired"]
        diff = f"{100 * d['difference']:+.1f}"
        if d["ci"]:
            diff += f" [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]"
        runs = ", ".join(f"f{r['fold']} s{r['seed']}" for r in x["true"])
        table.append([name, runs, _percent_ci(x["summary"]), _percent_ci(x["control_summary"]), diff,
                      _p(next(ps)), f"{_epochs_cell(x['true'])}; {_epochs_cell(x['control'])}", paper])
    out = ["## The paper's protocol: random window split at step 16, with its control", "",
           f"Test accuracy (%) under the paper's split: overlapping windows (step {PAPER_STEP}) of every walk spread "
           "at random over training and test, so a test window's walk was seen in training. Beside each model its "
           "**permuted-label control** on the same folds and seeds (each walk given another walk's label of the same "
           "participant: a model that scores as well there recognises the walk, not the emotion), and their "
           "difference with a 95% interval from a paired bootstrap over participants and the Wilcoxon signed-rank "
           "test over per-participant accuracies (Holm-corrected over the table's rows). Accuracy intervals: "
           f"bootstrap over participants. Fine-tuning at most {f['epochs']} epochs"
           + (f", early stopping after {f['patience']} epochs without a better validation macro-F1" if f.get("patience")
              else "") + ". The paper's column is Table VI of Imran et al. 2026 for the same input and pretraining: "
           "**another data set** (SEECS, chest-worn phone, 6 emotions, chance 16.7%), printed for orientation only.",
           "",
           _table(["model", "runs (fold, seed)", "accuracy [95% CI]", "permuted-label control [95% CI]",
                   "true − control, points [95% CI]", "p (Wilcoxon, Holm)",
                   "best / stopped epoch (true; control)", "paper Table VI (SEECS, 6 classes)"], table), ""]
    if _plot_paper_protocol(c, cells, fig_dir / "paper_protocol.png"):
        out += ["![the paper's protocol: accuracy against its control, and the training curves]"
                "(figures/paper_protocol.png)", ""]
    return out


def _plot_paper_protocol(c: Collected, cells: list[dict], path: Path) -> bool:
    """Left: accuracy with its interval against the control's, per model, the paper's figure as a reference
    mark. Right: validation accuracy per epoch of the true-label (solid) and control (dashed) runs."""
    from matplotlib.figure import Figure

    done = [x for x in cells if x["summary"] is not None]
    if not done:
        return False
    classes = len(done[0]["true"][0]["report"]["class_names"])
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax, ax_curve = fig.subplots(1, 2)
    for i, x in enumerate(done):
        for dx, summary, color, label in ((-0.12, x["summary"], "C0", "true labels"),
                                          (0.12, x["control_summary"], "0.55", "permuted-label control")):
            low, high = summary["ci"] or (summary["accuracy"], summary["accuracy"])
            acc = summary["accuracy"]
            ax.errorbar(i + dx, 100 * acc, yerr=[[100 * (acc - low)], [100 * (high - acc)]], fmt="o", color=color,
                        capsize=3, label=label if i == 0 else None)
        if x["paper"] is not None:
            ax.hlines(x["paper"], i - 0.3, i + 0.3, color="C3", lw=2,
                      label="paper, Table VI (SEECS, 6 classes)" if i == next(
                          j for j, y in enumerate(done) if y["paper"] is not None) else None)
    ax.axhline(100 / classes, color="0.45", ls="--", lw=1, label=f"chance (1/{classes})")
    ax.set_xticks(range(len(done)), [f"{x['input'].upper()} {_model_name(x['pretraining'])}".replace(", ", "\n")
                                     for x in done], fontsize=7)
    ax.set(ylabel="test accuracy (%), pooled", ylim=(0, 100), xlim=(-0.6, len(done) - 0.4))
    ax.set_title(f"Random split, step {PAPER_STEP}: true labels against the control", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    drawn = False
    for k, x in enumerate(d for d in done if d["pretraining"] != "rf"):
        for runs, style, what in ((x["true"], "-", "true"), (x["control"], "--", "control")):
            for r in runs:
                h = _history(c.results, r["job"])
                if h:
                    ax_curve.plot([e["epoch"] for e in h], [100 * e["val_accuracy"] for e in h], style, color=f"C{k}",
                                  label=f"{_model_name(x['pretraining'])}, {what}" if r is runs[0] else None)
                    drawn = True
    ax_curve.axhline(100 / classes, color="0.45", ls="--", lw=1)
    ax_curve.set(xlabel="epoch", ylabel="validation accuracy (%)", ylim=(0, 100))
    ax_curve.set_title("Training curves: true labels (solid) and control (dashed)", fontsize=9)
    ax_curve.grid(alpha=0.3)
    if drawn:
        ax_curve.legend(fontsize=7, loc="lower right")
    else:
        ax_curve.text(0.5, 0.5, "no network has finished yet", ha="center", va="center", transform=ax_curve.transAxes)
    save_figure(fig, path)
    return True


def headline(c: Collected) -> list[dict]:
    """The paper-protocol cells as plain numbers (percent), for the README's headline rows and tests."""
    out = []
    for x in paper_protocol_cells(c):
        if x["paired"] is None:
            continue
        out.append({"input": x["input"], "model": x["pretraining"], "runs": len(x["true"]),
                    "accuracy": 100 * x["summary"]["accuracy"], "ci": [100 * v for v in x["summary"]["ci"] or []],
                    "control": 100 * x["control_summary"]["accuracy"],
                    "control_ci": [100 * v for v in x["control_summary"]["ci"] or []],
                    "difference": 100 * x["paired"]["difference"],
                    "difference_ci": [100 * v for v in x["paired"]["ci"] or []], "p": x["paired"]["p"],
                    "paper": x["paper"]})
    return out


