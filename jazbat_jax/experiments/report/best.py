"""The best Jazbat-Net cell and the learning curves."""
from __future__ import annotations

import statistics
from pathlib import Path

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments.collect import Collected
from jazbat_jax.experiments.report.common import PRETRAIN_LABEL, _combined_report, _group, _table
from jazbat_jax.experiments.report.figures import _plot_curves


def best_cell_section(c: Collected, fig_dir: Path) -> list[str]:
    """The Jazbat-Net cell with the highest mean macro-F1: its pooled per-class numbers and confusion."""
    out: list[str] = []
    true_rows = c.rows(predict="emotion", labels="true")
    deep_subject = [r for r in true_rows if r["kind"] == "deep"]
    if deep_subject:
        best_protocol = "subject" if any(r["protocol"] == "subject" for r in deep_subject) else deep_subject[0]["protocol"]
        groups = _group([r for r in deep_subject if r["protocol"] == best_protocol], "input", "pretraining")
        (b_inp, b_pre), b_rows = max(groups.items(), key=lambda kv: statistics.fmean(r["f1"] for r in kv[1]))
        comb = _combined_report(b_rows)
        from jazbat_jax.train import plots

        plots.plot_confusion(comb, fig_dir / "best_confusion.png",
                             title=f"{b_inp.upper()} {PRETRAIN_LABEL[b_pre]}, split {best_protocol} (row %)")
        plots.plot_per_class(comb, fig_dir / "best_per_class.png")
        out += [f"## Best Jazbat-Net cell under the `{best_protocol}` split: {b_inp.upper()}, {PRETRAIN_LABEL[b_pre]}", "",
                f"Highest mean macro-F1. Test predictions of all {len(b_rows)} runs (folds {sorted({r['fold'] for r in b_rows})}, "
                f"seeds {sorted({r['seed'] for r in b_rows})}) pooled: {comb['n']} windows, accuracy "
                f"{100 * comb['accuracy']:.1f}%, macro-F1 {100 * comb['macro']['f1']:.1f}%.", "",
                _table(["class", "precision", "recall", "F1", "support"],
                       [[name, f"{100 * m['precision']:.1f}", f"{100 * m['recall']:.1f}", f"{100 * m['f1']:.1f}",
                         m["support"]] for name, m in comb["per_class"].items()])]
        out += ["", "![confusion](figures/best_confusion.png) ![per-class](figures/best_per_class.png)", ""]

    return out


def curves_section(c: Collected, fig_dir: Path) -> list[str]:
    """Mean training and validation curves per configuration, one figure per split."""
    cfg, results = c.cfg, c.results
    out: list[str] = []
    true_rows = c.rows(predict="emotion", labels="true")
    curve_lines = []
    for protocol, step in cfgmod.protocol_steps(cfg):
        name = f"curves_{protocol}.png" if step == cfg["target"]["step"] else f"curves_{protocol}_st{step}.png"
        if _plot_curves(results, [r for r in true_rows if r["protocol"] == protocol and r["step"] == step],
                        fig_dir / name, f"Fine-tuning on the target, split {protocol} (step {step}), "
                                        f"{cfg['finetune']['epochs']} epochs"):
            curve_lines.append(f"![curves {protocol} step {step}](figures/{name})")
    if curve_lines:
        out += ["## Learning curves", "",
                "Mean over folds × seeds of the per-epoch training (dotted) and validation (solid) accuracy and loss; "
                "the band is ± 1 SD of the validation curve over those runs, the dashed line the chance accuracy. "
                "Validation parts follow the split protocol (held-out participants for `subject`).", "", *curve_lines, ""]

    return out
