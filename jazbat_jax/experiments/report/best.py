"""The best Jazbat-Net cell and the learning curves."""
from __future__ import annotations

import statistics
from pathlib import Path

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments.collect import Collected
from jazbat_jax.experiments.report.common import PRETRAIN_LABEL, _combined_report, _table
from jazbat_jax.experiments.report.figures import _plot_curves


def best_jazbat_cells(c: Collected) -> dict[tuple[str, int], tuple[tuple[str, str], list[dict]]]:
    """Per split (protocol, step): the Jazbat-Net cell (input, pretraining) with the highest mean macro-F1
    over the split's balanced runs (``headline``: the folds × seeds every row pools), with those runs. A cell's
    own finished runs would rank a cell with an extra run of an easy fold above one without it."""
    from jazbat_jax.experiments.report.results import headline

    out = {}
    for split, table in headline(c).items():
        cells = {key: cell["rows"] for key, cell in table["cells"].items() if key[1] != "rf" and cell["rows"]}
        if cells:
            out[split] = max(cells.items(), key=lambda kv: statistics.fmean(r["f1"] for r in kv[1]))
    return out


def best_cell_section(c: Collected, fig_dir: Path) -> list[str]:
    """The Jazbat-Net cell with the highest mean macro-F1: its pooled per-class numbers and confusion."""
    best = best_jazbat_cells(c)
    if not best:
        return []
    (protocol, step) = next((split for split in best if split[0] == "subject"), next(iter(best)))
    (b_inp, b_pre), b_rows = best[(protocol, step)]
    comb = _combined_report(b_rows)
    from jazbat_jax.train import plots

    plots.plot_confusion(comb, fig_dir / "best_confusion.png",
                         title=f"{b_inp.upper()} {PRETRAIN_LABEL[b_pre]}, split {protocol} (row %)")
    plots.plot_per_class(comb, fig_dir / "best_per_class.png")
    return [f"## Best Jazbat-Net cell under the `{protocol}` split (step {step}): {b_inp.upper()}, "
            f"{PRETRAIN_LABEL[b_pre]}", "",
            f"Highest mean macro-F1 over the split's balanced runs (the folds × seeds every row of its table pools). "
            f"Test predictions of those {len(b_rows)} runs (folds {sorted({r['fold'] for r in b_rows})}, "
            f"seeds {sorted({r['seed'] for r in b_rows})}) pooled: {comb['n']} windows, accuracy "
            f"{100 * comb['accuracy']:.1f}%, macro-F1 {100 * comb['macro']['f1']:.1f}%.", "",
            _table(["class", "precision", "recall", "F1", "support"],
                   [[name, f"{100 * m['precision']:.1f}", f"{100 * m['recall']:.1f}", f"{100 * m['f1']:.1f}",
                     m["support"]] for name, m in comb["per_class"].items()]),
            "", "![confusion](figures/best_confusion.png) ![per-class](figures/best_per_class.png)", ""]


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
