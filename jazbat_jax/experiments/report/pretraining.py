"""Pretraining on WISDM 2019: the trunks' data, training and held-out accuracy."""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from jazbat_jax.experiments.collect import Collected
from jazbat_jax.experiments.collect import wall_cell as _wall
from jazbat_jax.experiments.report.common import _table
from jazbat_jax.experiments.report.figures import _plot_pretrain_curves


# A published subject-independent result on the same WISDM 2019 watch recordings, for the pretraining
# table. Per-subject macro-F1, mean ± SD over the test subjects of five subject-disjoint 80/20 splits.
WISDM_PUBLISHED = (
    "Published, subject-independent, WISDM 2019 watch: Yuan et al., *Self-supervised learning for human activity "
    "recognition using 700,000 person-days of wearable data* (arXiv:2206.02909, 2022; the table and evaluation code "
    "are in github.com/OxWearables/ssl-wearables): a ResNet on the **3-axis** watch accelerometer, 10 s windows at "
    "30 Hz, all 18 activities, 46 subjects (1616, 1618, 1637, 1639, 1642 removed), five subject-disjoint 80/20 splits, "
    "**macro-F1 per test subject, mean ± SD: 0.684 ± 0.123 trained from scratch, 0.810 ± 0.127 fine-tuned** from "
    "self-supervised pretraining on 700,000 person-days of UK Biobank wrist data. Compare the column "
    "\"macro-F1 per test subject\" of the watch rows, computed the same way (sklearn's macro F1 within each test "
    "subject). Our 1D input is the acceleration's magnitude, which discards the orientation the 3-axis models see, "
    "and every trunk here is tested on one held-out set of subjects (listed above), not on five."
)


def _trunk_test_stats(result: dict, predictions: Path) -> tuple[str, str]:
    """A trunk's test accuracy with its 95% subject-clustered bootstrap interval, and its macro-F1 within
    each test subject, mean ± SD over subjects (the published WISDM figure's form). Without saved
    predictions: the accuracy alone and '—'."""
    acc = f"{100 * result['report']['accuracy']:.1f}%"
    if not predictions.exists():
        return acc, "—"
    from jazbat_jax.experiments import stats

    with np.load(predictions) as z:
        y, p, who = z["y_true"], z["y_pred"], z["participant"]
    if len(np.unique(who)) > 1:
        lo, hi = stats.cluster_bootstrap_ci(y, p, who)
        acc += f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    f1 = list(stats.per_group_macro_f1(y, p, who).values())
    return acc, f"{statistics.mean(f1):.3f} ± {statistics.stdev(f1):.3f}" if len(f1) > 1 else f"{f1[0]:.3f}"


def pretraining_section(c: Collected, fig_dir: Path) -> list[str]:
    """Each WISDM trunk: data, epochs, held-out test accuracy with its interval, next to a published result."""
    results, pretrain = c.results, c.pretrain
    out: list[str] = []
    out += ["## Pretraining on WISDM 2019", ""]
    if pretrain:
        table = []
        for r in pretrain:
            s, d = r["settings"], r["data_used"]
            acts = d["activities"]
            epochs = (f"{r['stopped_epoch']} (early stop; at most {s['epochs']})"
                      if r.get("early_stopped") else s["epochs"])
            acc, f1 = _trunk_test_stats(r, results / "pretrain" / r["job"] / "run" / "test_predictions.npz")
            table.append([s["device"], s["input"].upper(), s["run"]["train"]["seed"],
                          f"{len(d['subjects'])}: {', '.join(map(str, d['subjects']))}",
                          f"{len(acts)}: {''.join(acts) if all(len(a) == 1 for a in acts) else ', '.join(acts)}",
                          d["windows"], epochs, ", ".join(map(str, d["split"]["test"])), acc,
                          f"{100 * r['report']['macro']['f1']:.1f}%", f1, _wall(r)])
        out += [_table(["device", "input", "seed", "subjects (all used)", "activities", "windows", "epochs trained",
                        "test subjects", "test accuracy [95% CI]", "test macro-F1",
                        "macro-F1 per test subject (mean ± SD)", "wall time"], table), ""]
        for r in pretrain:
            wpc = r["data_used"]["windows_per_class"]
            out.append(f"- {r['settings']['device']} {r['settings']['input'].upper()} windows per activity: "
                       + ", ".join(f"{k} {v}" for k, v in wpc.items()))
        out += ["", "Chance on 18 activities is 5.6%. The paper pretrains on all WISDM subjects for 40 epochs and reports no "
                "held-out pretraining accuracy; we hold out subjects to measure it.", ""]
        if any(r["settings"]["device"] == "watch" and len(r["data_used"]["activities"]) == 18 for r in pretrain):
            out += [WISDM_PUBLISHED, ""]
        if _plot_pretrain_curves(results, pretrain, fig_dir / "pretrain_curves.png"):
            out += ["![pretraining](figures/pretrain_curves.png)", ""]
    else:
        out += ["No pretraining in this grid.", ""]

    return out
