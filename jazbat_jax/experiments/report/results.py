"""The grid's results: one table per split protocol with what each number means."""
from __future__ import annotations

import statistics
from pathlib import Path

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments.collect import Collected
from jazbat_jax.experiments.report.common import (PAPER_SOURCE, PAPER_TABLE_VI, PRETRAIN_LABEL, _epochs, _group,
                                                  _mean_sd, _stopped, _table)
from jazbat_jax.experiments.report.figures import _plot_meaning, _plot_participants
from jazbat_jax.experiments.report.meaning import (_comparisons_section, _holm_column, _meaning, _probe_section,
                                                   balanced_runs)


def _models(cfg: dict) -> list[str]:
    return (["rf"] if cfg["baseline"]["enabled"] else []) + list(cfg["grid"]["pretraining"])


def headline(c: Collected) -> dict[tuple[str, int], dict]:
    """The numbers of the grid's tables, per (protocol, step): the folds and seeds pooled (the same for
    every row and its control, ``balanced_runs``), the finished runs left out, and per (input, model) the
    runs pooled and what they mean (``_meaning``: pooled accuracy, control, paired difference, walks)."""
    if "headline" not in c.cache:  # several sections use it; its bootstraps take seconds
        c.cache["headline"] = _headline(c)
    return c.cache["headline"]


def _headline(c: Collected) -> dict[tuple[str, int], dict]:
    rows = c.rows(predict="emotion")
    classes = len(rows[0]["report"]["class_names"]) if rows else 3
    out = {}
    for protocol, step in cfgmod.protocol_steps(c.cfg):
        here = [r for r in rows if r["protocol"] == protocol and r["step"] == step]
        runs = {(inp, pre, labels): [r for r in here if (r["input"], r["pretraining"], r["labels"]) == (inp, pre, labels)]
                for inp in c.cfg["grid"]["inputs"] for pre in _models(c.cfg) for labels in c.cfg["grid"]["labels"]}
        folds, seeds = balanced_runs(list(runs.values()))
        pooled = lambda rs: sorted((r for r in rs if r["fold"] in folds and r["seed"] in seeds),  # noqa: E731
                                   key=lambda r: (r["fold"], r["seed"]))
        cells = {}
        for inp in c.cfg["grid"]["inputs"]:
            for pre in _models(c.cfg):
                rs, cs = pooled(runs[(inp, pre, "true")]), pooled(runs.get((inp, pre, "permuted"), []))
                cells[(inp, pre)] = {"rows": rs, "control_rows": cs, **_meaning(c.results, rs, cs, classes)}
        left_out = sorted((r for r in here if not (r["fold"] in folds and r["seed"] in seeds)),
                          key=lambda r: (r["pretraining"], r["labels"], r["fold"], r["seed"]))
        out[(protocol, step)] = {"folds": folds, "seeds": seeds, "left_out": left_out, "cells": cells,
                                 "classes": classes}
    return out


def results_section(c: Collected, fig_dir: Path) -> list[str]:
    """The grid's tables (accuracy, macro-F1, pooled accuracy with its interval, the control, walk-level
    test; per split), their figures, the identity probes, the paired comparisons and the cost of leakage."""
    cfg, results, g = c.cfg, c.results, c.cfg["grid"]
    if not g["enabled"]:
        return []
    rows = c.rows()
    out: list[str] = []
    emotion = [r for r in rows if r["predict"] == "emotion"]
    true_rows = [r for r in emotion if r["labels"] == "true"]
    control_rows = [r for r in emotion if r["labels"] == "permuted"]
    numbers = headline(c)
    classes = next(iter(numbers.values()))["classes"] if numbers else 3
    out += ["## Results: test accuracy and macro-F1 (%) with their meaning measured", "",
            "Every row of a table pools the same runs (folds × seeds, named above the table): the runs every model "
            "and its control have finished, so that no fold counts more in one row than in another. Mean ± SD over "
            "those runs, then their test predictions pooled: accuracy with a 95% interval from a bootstrap over "
            "*participants* (windows of one person are not independent), the same model trained and tested with the "
            "**permuted-label control** (each walk given another walk's label of the same participant: a model that "
            "scores as well there recognises the walk, not the emotion), true − control on those same runs with a "
            "95% participant-bootstrap interval of the difference and the Wilcoxon signed-rank test over "
            "participants, and walk-level accuracy (majority vote over a walk's windows) tested against each "
            "person's own walk labels permuted among that person's walks (a within-person permutation test: the "
            f"walks of one person are not independent; chance 1/{classes}); p-values Holm-corrected over the table's "
            "rows.", ""]
    dataset = "Quiroz 2018 (3 classes, chance 33.3%)" if cfg["target"]["dataset"] == "quiroz" else "SEECS-layout (6 classes)"
    meaning = {}
    for (protocol, step), h in numbers.items():
        desc = ("subject-independent: test participants never seen in training" if protocol == "subject"
                else "random window split: overlapping windows of the same walks in train and test (leaky)")
        left = h["left_out"]
        out += [f"### Split `{protocol}`, window step {step} ({desc})", "",
                f"Data: {dataset}; {g['n_folds']}-fold, folds {cfgmod.folds(cfg)}, seeds {g['seeds']}; "
                f"fine-tuning {_epochs(cfg['finetune'])}.", "",
                f"Pooled in every row: folds {h['folds']} × seeds {h['seeds']}"
                + (f"; {len(left)} finished run{'s' if len(left) != 1 else ''} outside that set not pooled: "
                   f"{_left_out(left)}." if left else "."), ""]
        table, cells = [], []
        stopping = cfg["finetune"].get("patience") is not None  # early stopping: say where each run stopped
        for (inp, pre), m in h["cells"].items():
            rs = m["rows"]
            name = "random forest (gait features)" if pre == "rf" else f"Jazbat-Net, {PRETRAIN_LABEL[pre]}"
            meaning[(protocol, step, inp, pre)] = m
            cells.append(m)
            table.append([inp.upper(), name, _mean_sd([r["acc"] for r in rs]), _mean_sd([r["f1"] for r in rs]),
                          m["pooled"], m["control"], m["difference"], None, m["walks"], None, len(rs),
                          f"{PAPER_TABLE_VI[(inp, pre)]:.2f}" if (inp, pre) in PAPER_TABLE_VI else "—"]
                         + ([_stopped(rs) if pre != "rf" else "—"] if stopping else []))
        for row, p_diff, p_walks in zip(table, _holm_column(cells, "p_difference"), _holm_column(cells)):
            row[7], row[9] = p_diff, p_walks
        out += [_table(["input", "model", "accuracy", "macro-F1", "pooled accuracy [95% CI]",
                        "permuted-label control [95% CI]", "true − control (points) [95% CI]",
                        "p (true ≠ control, Wilcoxon over participants, Holm)", "walks right (majority)",
                        "p (walks > chance, permutation within people, Holm)", "runs",
                        "paper Table VI accuracy (SEECS, 6 classes; not comparable)"]
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
        subject = numbers[("subject", cfg["target"]["step"])]["cells"]
        for (inp, pre) in sorted(subject):  # each split's balanced runs, as in its table
            b = [r["acc"] for r in subject[(inp, pre)]["rows"]]
            a = {st: [r["acc"] for r in numbers[("random", st)]["cells"][(inp, pre)]["rows"]] for st in random_steps}
            if b and all(a.values()):
                name = "random forest" if pre == "rf" else f"Jazbat-Net, {PRETRAIN_LABEL[pre]}"
                table.append([inp.upper(), name] + [f"{100 * (statistics.fmean(a[st]) - statistics.fmean(b)):+.1f}"
                                                    for st in random_steps])
        out += ["### The cost of leakage (random − subject, accuracy points)", "",
                _table(["input", "model"] + [f"random (step {st}) − subject" for st in random_steps], table), ""]

    return out


def _left_out(rows: list[dict]) -> str:
    """The runs a table does not pool, by fold and seed: 'fold 4 seed 0: 1D forest and its control, 1D WISDM watch'."""
    out = []
    for (fold, seed), rs in sorted(_group(rows, "fold", "seed").items()):
        names = []
        for (inp, pre), cell in _group(rs, "input", "pretraining").items():
            model = f"{inp.upper()} {'forest' if pre == 'rf' else PRETRAIN_LABEL[pre]}"
            labels = {r["labels"] for r in cell}
            names.append(model + (" and its control" if labels == {"true", "permuted"}
                                  else " (control only)" if labels == {"permuted"} else ""))
        out.append(f"fold {fold} seed {seed}: {', '.join(names)}")
    return "; ".join(out)
