"""The grid's results: one table per split protocol with what each number means."""
from __future__ import annotations

import statistics
from pathlib import Path

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments.collect import Collected
from jazbat_jax.experiments.report.common import (PAPER_SOURCE, PAPER_TABLE_VI, PRETRAIN_LABEL, _epochs, _group,
                                                  _mean_sd, _stopped, _table)
from jazbat_jax.experiments.report.figures import _plot_meaning, _plot_participants
from jazbat_jax.experiments.report.meaning import _comparisons_section, _holm_column, _meaning, _probe_section


def results_section(c: Collected, fig_dir: Path) -> list[str]:
    """The grid's tables (accuracy, macro-F1, pooled accuracy with its interval, the control, walk-level
    test; per split), their figures, the identity probes, the paired comparisons and the cost of leakage."""
    cfg, results, g = c.cfg, c.results, c.cfg["grid"]
    rows = c.rows()
    out: list[str] = []
    emotion = [r for r in rows if r["predict"] == "emotion"]
    true_rows = [r for r in emotion if r["labels"] == "true"]
    control_rows = [r for r in emotion if r["labels"] == "permuted"]
    classes = len(true_rows[0]["report"]["class_names"]) if true_rows else 3
    out += ["## Results: test accuracy and macro-F1 (%) with their meaning measured", "",
            "Mean ± SD over folds × seeds, then the same test predictions pooled: accuracy with a 95% interval "
            "from a bootstrap over *participants* (windows of one person are not independent), the same model "
            "trained and tested with the **permuted-label control** (each walk given another walk's label of the "
            "same participant: a model that scores as well there recognises the walk, not the emotion), and "
            "walk-level accuracy (majority vote over a walk's windows) with a one-sided binomial test against "
            f"chance (1/{classes}); p-values Holm-corrected over the table's rows.", ""]
    dataset = "Quiroz 2018 (3 classes, chance 33.3%)" if cfg["target"]["dataset"] == "quiroz" else "SEECS-layout (6 classes)"
    meaning = {}
    for protocol, step in cfgmod.protocol_steps(cfg):
        prow = [r for r in true_rows if r["protocol"] == protocol and r["step"] == step]
        crow = [r for r in control_rows if r["protocol"] == protocol and r["step"] == step]
        desc = ("subject-independent: test participants never seen in training" if protocol == "subject"
                else "random window split: overlapping windows of the same walks in train and test (leaky)")
        out += [f"### Split `{protocol}`, window step {step} ({desc})", "",
                f"Data: {dataset}; {g['n_folds']}-fold, folds {cfgmod.folds(cfg)}, seeds {g['seeds']}; "
                f"fine-tuning {_epochs(cfg['finetune'])}.", ""]
        table, cells = [], []
        stopping = cfg["finetune"].get("patience") is not None  # early stopping: say where each run stopped
        for inp in g["inputs"]:
            models = (["rf"] if cfg["baseline"]["enabled"] else []) + list(g["pretraining"])
            for pre in models:
                rs = [r for r in prow if r["input"] == inp and r["pretraining"] == pre]
                cs = [r for r in crow if r["input"] == inp and r["pretraining"] == pre]
                name = "random forest (gait features)" if pre == "rf" else f"Jazbat-Net, {PRETRAIN_LABEL[pre]}"
                m = _meaning(results, rs, cs, classes)
                meaning[(protocol, step, inp, pre)] = m
                cells.append(m)
                table.append([inp.upper(), name, _mean_sd([r["acc"] for r in rs]), _mean_sd([r["f1"] for r in rs]),
                              m["pooled"], m["control"], m["difference"], m["walks"], None, len(rs),
                              f"{PAPER_TABLE_VI[(inp, pre)]:.2f}" if (inp, pre) in PAPER_TABLE_VI else "—"]
                             + ([_stopped(rs) if pre != "rf" else "—"] if stopping else []))
        for row, p_adj in zip(table, _holm_column(cells)):
            row[8] = p_adj
        out += [_table(["input", "model", "accuracy", "macro-F1", "pooled accuracy [95% CI]",
                        "permuted-label control [95% CI]", "true − control (points)", "walks right (majority)",
                        "p (walks > chance, Holm)", "runs", "paper Table VI accuracy (SEECS, 6 classes; not comparable)"]
                       + ([f"stopped at epoch (of at most {cfg['finetune']['epochs']}; by fold, seed)"]
                          if stopping else []), table), ""]
    figure = _plot_meaning(meaning, classes, fig_dir / "accuracy_with_control.png")
    if figure:
        out += ["![accuracy with intervals and the permuted-label control](figures/accuracy_with_control.png)", ""]
    if _plot_participants(meaning, classes, fig_dir / "per_participant.png"):
        out += ["Per-participant accuracy under the subject split (each dot one participant's test windows, "
                "averaged over seeds):", "", "![per participant](figures/per_participant.png)", ""]
    out += _probe_section(rows)
    out += _comparisons_section(results, cfg, true_rows, control_rows)
    out += [f"The paper's column ({PAPER_SOURCE}) is for the closed SEECS data (chest-worn phone, 40 subjects, six "
            "emotions, 90 fine-tuning epochs, split not stated and probably random over overlapping windows). It is "
            "printed for orientation only: different data, sensor position, classes and protocol.", ""]

    # ---- leakage
    if set(g["protocols"]) == {"subject", "random"}:
        random_steps = [st for pr, st in cfgmod.protocol_steps(cfg) if pr == "random"]
        table = []
        for (inp, pre), rs in sorted(_group(true_rows, "input", "pretraining").items()):
            b = [r["acc"] for r in rs if r["protocol"] == "subject"]
            a = {st: [r["acc"] for r in rs if r["protocol"] == "random" and r["step"] == st] for st in random_steps}
            if b and all(a.values()):
                name = "random forest" if pre == "rf" else f"Jazbat-Net, {PRETRAIN_LABEL[pre]}"
                table.append([inp.upper(), name] + [f"{100 * (statistics.fmean(a[st]) - statistics.fmean(b)):+.1f}"
                                                    for st in random_steps])
        out += ["### The cost of leakage (random − subject, accuracy points)", "",
                _table(["input", "model"] + [f"random (step {st}) − subject" for st in random_steps], table), ""]

    return out
