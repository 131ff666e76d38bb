"""What the accuracies mean: intervals over participants, the permuted-label control, walk-level tests,
identity probes and the paired comparisons between conditions."""
from __future__ import annotations

import itertools
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
    walk-level test of one condition; '—' where predictions are missing. ``rows`` and ``control`` are
    the same (fold, seed) runs (``balanced_runs``), so the difference is paired: its interval is a
    participant bootstrap of the difference and its test the Wilcoxon signed-rank test over participants."""
    from jazbat_jax.experiments import stats

    none = {"pooled": "—", "control": "—", "difference": "—", "walks": "—", "p_walks": None, "summary": None,
            "control_summary": None, "p_difference": None, "difference_ci": None}
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
        diff = summary["accuracy"] - c["accuracy"]
        ci = stats.paired_difference_ci(preds, cpreds) if summary["n_participants"] > 1 else None
        out.update(control=_percent_ci(c), control_summary=c, difference_ci=ci,
                   p_difference=stats.compare_participants(preds, cpreds)["p"],
                   difference=f"{100 * diff:+.1f}" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else ""))
    return out


def balanced_runs(conditions: list[list[dict]]) -> tuple[list[int], list[int]]:
    """The folds and seeds every condition pools: the largest set folds × seeds of runs that every
    condition with a finished run has (on a tie, more folds: more participants tested).

    Pooling each condition's own finished runs would weigh folds unequally in a partial grid (a fold
    run with three seeds counts three times) and compare rows over different runs; a product of folds
    and seeds common to every row weighs each fold and seed alike and pairs every row with the others."""
    have = [{(r["fold"], r["seed"]) for r in rows} for rows in conditions if rows]
    common = set.intersection(*have) if have else set()
    seeds = sorted({s for _, s in common})
    best: tuple[list[int], list[int]] = ([], [])
    for k in range(1, len(seeds) + 1):
        for chosen in itertools.combinations(seeds, k):
            folds = sorted({f for f, _ in common if all((f, s) in common for s in chosen)})
            if (len(folds) * k, len(folds)) > (len(best[0]) * len(best[1]), len(best[0])):
                best = (folds, list(chosen))
    return best


def _holm_column(cells: list[dict], key: str = "p_walks") -> list[str]:
    """A p-value of a table's rows (default the walk-level one), Holm-corrected together."""
    from jazbat_jax.experiments import stats

    ps = [c[key] for c in cells]
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


def comparisons(results: Path, cfg: dict, true_rows: list[dict], control_rows: list[dict]) -> list[tuple[str, str, dict]]:
    """Paired tests between conditions of each split: each model against its own permuted-label control,
    and each pretrained Jazbat-Net against the one without pretraining, on the runs both have (same fold
    and seed); (split, comparison, ``stats.compare``'s result) for every pair with at least two such runs."""
    from jazbat_jax.experiments import stats

    pairs = []
    for protocol, step in cfgmod.protocol_steps(cfg):
        pick = lambda rows, inp, pre: sorted((r for r in rows if r["protocol"] == protocol and r["step"] == step  # noqa: E731
                                              and r["input"] == inp and r["pretraining"] == pre),
                                             key=lambda r: (r["fold"], r["seed"]))
        split = f"{protocol} split, step {step}"
        for inp in cfg["grid"]["inputs"]:
            models = (["rf"] if cfg["baseline"]["enabled"] else []) + list(cfg["grid"]["pretraining"])
            for pre in models:
                name = "random forest" if pre == "rf" else f"Jazbat-Net, {PRETRAIN_LABEL[pre]}"
                pairs.append((split, f"{inp.upper()} {name}: true − permuted labels", pick(true_rows, inp, pre),
                              pick(control_rows, inp, pre)))
                if pre in cfgmod.TRUNKS and "none" in cfg["grid"]["pretraining"]:
                    pairs.append((split, f"{inp.upper()} Jazbat-Net: {PRETRAIN_LABEL[pre]} − no pretraining",
                                  pick(true_rows, inp, pre), pick(true_rows, inp, "none")))
    results_ = []
    for split, label, a, b in pairs:
        a, b = matched_runs(a, b)
        if len(a) < 2:
            continue
        pa, pb = [_predictions(results, r) for r in a], [_predictions(results, r) for r in b]
        if any(p is None for p in pa + pb):
            continue
        n_train = round(statistics.fmean(r["n_train"] for r in a))
        n_test = round(statistics.fmean(r["n_test"] for r in a))
        results_.append((split, label, stats.compare(pa, pb, n_train, n_test)))
    return results_


def _comparisons_section(results: Path, cfg: dict, true_rows: list[dict], control_rows: list[dict]) -> list[str]:
    """The paired comparisons (``comparisons``) as a table, p-values Holm-corrected over its rows."""
    from jazbat_jax.experiments import stats

    results_ = comparisons(results, cfg, true_rows, control_rows)
    if not results_:
        return []
    p_runs = stats.holm([c["runs"]["p"] for *_, c in results_])
    p_people = stats.holm([c["participants"]["p"] for *_, c in results_])
    table = [[split, label, c["runs"]["n"], f"{100 * c['runs']['mean_difference']:+.1f}", f"{c['runs']['t']:.2f}",
              _p(pr), f"{c['runs']['cohens_dz']:.2f}", c["participants"]["n"],
              f"{100 * c['participants']['mean_difference']:+.1f}", _p(pp), f"{c['participants']['rank_biserial']:+.2f}"]
             for (split, label, c), pr, pp in zip(results_, p_runs, p_people)]
    return ["### Paired comparisons", "",
            "Over runs: the corrected resampled t-test of Nadeau & Bengio (2003) on the per-run accuracy differences "
            "(folds × seeds; the variance inflated for the overlap of training sets) with Cohen's d_z. Over "
            "participants: each participant's accuracy averaged over seeds, Wilcoxon signed-rank test with the "
            "rank-biserial correlation. p-values Holm-corrected over the rows of each test (both splits together). "
            "Each comparison pairs the runs both conditions have finished (same fold and seed), so in a partial grid "
            "a row may use more runs than the headline table, which pools the runs every row has.", "",
            _table(["split", "comparison", "runs paired", "difference (points)", "t", "p (runs, Holm)", "d_z",
                    "participants", "difference per participant (points)", "p (Wilcoxon, Holm)", "rank-biserial"],
                   table), ""]
