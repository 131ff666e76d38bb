"""What the accuracies mean: intervals over participants, the permuted-label control, walk-level tests,
identity probes and the paired comparisons between conditions."""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments.report.common import PRETRAIN_LABEL, _group, _mean_sd, _table


def _predictions(results: Path, row: dict) -> dict | None:
    """A finished job's per-window test predictions (None when its folder has none: an older version's)."""
    from jazbat_jax.files import PREDICTIONS_FILE

    folder = results / ("cells" if row["kind"] == "deep" else "baseline") / row["job"]
    path = folder / "run" / PREDICTIONS_FILE if row["kind"] == "deep" else folder / PREDICTIONS_FILE
    if not path.exists():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in ("y_true", "y_pred", "participant", "recording")}


def _percent_ci(summary: dict) -> str:
    if summary["ci"] is None:
        return f"{100 * summary['accuracy']:.1f} (one participant: no interval)"
    low, high = summary["ci"]
    return f"{100 * summary['accuracy']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _meaning(results: Path, rows: list[dict], control: list[dict], classes: int) -> dict:
    """Pooled accuracy with its participant-level interval, the control's, their difference and the
    walk-level test of one condition; '—' where predictions are missing."""
    from jazbat_jax.experiments import stats

    none = {"pooled": "—", "control": "—", "difference": "—", "walks": "—", "p_walks": None, "summary": None,
            "control_summary": None}
    preds = [_predictions(results, r) for r in rows]
    if not rows or any(p is None for p in preds):
        return none
    summary = stats.summarize(preds, classes)
    rec = summary["recordings"]
    out = {**none, "summary": summary, "pooled": _percent_ci(summary), "p_walks": rec["p_vs_chance"],
           "walks": f"{rec['correct']}/{rec['n']} ({100 * rec['accuracy']:.0f}%)"}
    cpreds = [_predictions(results, r) for r in control]
    if control and all(p is not None for p in cpreds):
        c = stats.summarize(cpreds, classes)
        out.update(control=_percent_ci(c), control_summary=c,
                   difference=f"{100 * (summary['accuracy'] - c['accuracy']):+.1f}")
    return out


def _holm_column(cells: list[dict]) -> list[str]:
    """The walk-level p-values of a table's rows, Holm-corrected together."""
    from jazbat_jax.experiments import stats

    ps = [c["p_walks"] for c in cells]
    known = [p for p in ps if p is not None]
    adjusted = iter(stats.holm(known)) if known else iter(())
    return ["—" if p is None else _p(next(adjusted)) for p in ps]


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def matched_runs(a: list[dict], b: list[dict]) -> tuple[list[dict], list[dict]]:
    """The runs of two conditions that share a fold and seed, in (fold, seed) order: the pairs a paired
    test may use. A partial grid then compares the runs it has rather than none."""
    key = lambda r: (r["fold"], r["seed"])  # noqa: E731
    both = {key(r) for r in a} & {key(r) for r in b}
    return (sorted((r for r in a if key(r) in both), key=key), sorted((r for r in b if key(r) in both), key=key))


def _probe_section(rows: list[dict]) -> list[str]:
    """How well the forest identifies the participant and the walk a window came from (random split)."""
    probes = [r for r in rows if r["predict"] != "emotion"]
    if not probes:
        return []
    table = []
    for (inp, predict, step), rs in sorted(_group(probes, "input", "predict", "step").items()):
        chance = [r["chance"] for r in rs if r.get("chance")]
        uniform = _mean_sd([c["uniform"] for c in chance]) if chance else "—"
        majority = _mean_sd([c["majority"] for c in chance]) if chance else "—"
        table.append([inp.upper(), step, {"participant": "participant", "recording": "walk"}[predict],
                      _mean_sd([r["acc"] for r in rs]), uniform, majority, len(rs)])
    return ["### Identity probes: which person, which walk (random split)", "",
            "The same forest and features, asked to name the participant or the walk of each test window. Far above "
            "chance means a random window split lets a model match test windows to their own walk in training: "
            "what the permuted-label control then measures.", "",
            _table(["input", "window step", "predicts", "accuracy (%)", "chance: uniform (%)",
                    "chance: majority class (%)", "runs"], table), ""]


def _comparisons_section(results: Path, cfg: dict, true_rows: list[dict], control_rows: list[dict]) -> list[str]:
    """Paired tests between conditions of the subject split: each model against its own permuted-label
    control, and each pretrained Jazbat-Net against the one without pretraining (same folds and seeds)."""
    from jazbat_jax.experiments import stats

    subject = cfg["target"]["step"]
    pick = lambda rows, inp, pre: sorted((r for r in rows if r["protocol"] == "subject" and r["step"] == subject  # noqa: E731
                                          and r["input"] == inp and r["pretraining"] == pre),
                                         key=lambda r: (r["fold"], r["seed"]))
    pairs = []
    for inp in cfg["grid"]["inputs"]:
        models = (["rf"] if cfg["baseline"]["enabled"] else []) + list(cfg["grid"]["pretraining"])
        for pre in models:
            name = "random forest" if pre == "rf" else f"Jazbat-Net, {PRETRAIN_LABEL[pre]}"
            pairs.append((f"{inp.upper()} {name}: true − permuted labels", pick(true_rows, inp, pre),
                          pick(control_rows, inp, pre)))
            if pre in cfgmod.TRUNKS and "none" in cfg["grid"]["pretraining"]:
                pairs.append((f"{inp.upper()} Jazbat-Net: {PRETRAIN_LABEL[pre]} − no pretraining",
                              pick(true_rows, inp, pre), pick(true_rows, inp, "none")))
    results_ = []
    for label, a, b in pairs:
        a, b = matched_runs(a, b)
        if len(a) < 2:
            continue
        pa, pb = [_predictions(results, r) for r in a], [_predictions(results, r) for r in b]
        if any(p is None for p in pa + pb):
            continue
        n_train = round(statistics.fmean(r["n_train"] for r in a))
        n_test = round(statistics.fmean(r["n_test"] for r in a))
        results_.append((label, stats.compare(pa, pb, n_train, n_test)))
    if not results_:
        return []
    p_runs = stats.holm([c["runs"]["p"] for _, c in results_])
    p_people = stats.holm([c["participants"]["p"] for _, c in results_])
    table = [[label, c["runs"]["n"], f"{100 * c['runs']['mean_difference']:+.1f}", f"{c['runs']['t']:.2f}", _p(pr),
              f"{c['runs']['cohens_dz']:.2f}", c["participants"]["n"], f"{100 * c['participants']['mean_difference']:+.1f}",
              _p(pp), f"{c['participants']['rank_biserial']:+.2f}"]
             for (label, c), pr, pp in zip(results_, p_runs, p_people)]
    return ["### Paired comparisons (subject split)", "",
            "Over runs: the corrected resampled t-test of Nadeau & Bengio (2003) on the per-run accuracy differences "
            "(folds × seeds; the variance inflated for the overlap of training sets) with Cohen's d_z. Over "
            "participants: each participant's accuracy averaged over seeds, Wilcoxon signed-rank test with the "
            "rank-biserial correlation. p-values Holm-corrected over the rows of each test. Each comparison "
            "pairs the runs both conditions have finished (same fold and seed), so in a partial grid a row may "
            "use fewer runs than the headline table.", "",
            _table(["comparison", "runs paired", "difference (points)", "t", "p (runs, Holm)", "d_z", "participants",
                    "difference per participant (points)", "p (Wilcoxon, Holm)", "rank-biserial"], table), ""]
