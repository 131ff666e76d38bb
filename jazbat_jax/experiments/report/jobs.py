"""Every finished job, one row each, and the jobs still missing."""
from __future__ import annotations

from jazbat_jax.experiments.collect import Collected
from jazbat_jax.experiments.report.common import PRETRAIN_LABEL, _table


def jobs_section(c: Collected) -> list[str]:
    """Every finished job with its numbers, then the missing ones."""
    missing = c.missing
    out: list[str] = []
    table = []
    for r in c.rows():
        model = "random forest" if r["kind"] == "baseline" else PRETRAIN_LABEL[r["pretraining"]]
        if r["predict"] != "emotion":
            model += f" → {r['predict']} id"
        elif r["labels"] != "true":
            model += " (permuted labels)"
        subj = ", ".join(map(str, r["test_subjects"])) if r["protocol"] == "subject" and r["test_subjects"] else "all (random)"
        best = (f"{r['checkpoint_epoch'] if r['checkpoint_epoch'] is not None else '—'}"
                f"{'/' + str(r['epochs']) if r['epochs'] else ''}")
        if r.get("stopped_epoch") is not None:
            best += f" (stopped at {r['stopped_epoch']})"
        table.append([f"`{r['job']}`", r["input"].upper(), model, f"{r['protocol']} st{r['step']}", r["fold"], r["seed"],
                      f"{r['n_train']} / {r['n_test']}", subj, best, f"{100 * r['acc']:.1f}", f"{100 * r['f1']:.1f}",
                      r["wall"]])
    if table:  # the grid's cells (the personal jobs are listed in their own section)
        out += ["## Every finished job", "",
                _table(["job", "input", "model", "split", "fold", "seed", "train / test windows", "test participants",
                        "best epoch", "accuracy", "macro-F1", "wall time"], table), ""]
    if missing:
        out += ["## Missing jobs (not run: the grid was stopped or the compute ran out)", ""]
        out += [f"- `{j.id}`" for j in missing]
        out.append("")
    return out
