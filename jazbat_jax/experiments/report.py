"""Turn a results folder into ``report.md`` and figures.

Every number in the report is read from a ``result.json`` (or a run's ``metrics.jsonl``) in the
results folder, and every table says the data, split, epochs and seeds it comes from. The
paper's numbers appear only in their own, labelled column.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from tabulate import tabulate

from jazbat_jax import paper
from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments import grid
from jazbat_jax.figures import save_figure
from jazbat_jax.machine import busy

PAPER_TABLE_VI = paper.TABLE_VI
PAPER_SOURCE = "Imran et al., IEEE IoT Journal 2026, Table VI"
# The target data's own published anchor (abstract of the JMIR paper; not the same task).
QUIROZ_ANCHOR = (
    "Quiroz et al. (JMIR Ment Health 2018;5(3):e10153, abstract) report **median accuracies above 78%** "
    "for **binary happy vs sad** classification with **personal (per-participant) models** on the 44 "
    "participants with movement data, in every condition of the design. That is a within-person, two-class "
    "result: it is the data's own reference point, not comparable to our three-class, cross-person "
    "(subject split) numbers, and closer in spirit to our random split (same person in train and test)."
)
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
PRETRAIN_LABEL = {"none": "no pretraining", "none_k18": "no pretraining, K = 18", "watch": "WISDM watch",
                  "phone": "WISDM phone"}


def _table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table; cells are written as given (no number re-formatting)."""
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _mean_sd(values: list[float], scale: float = 100.0) -> str:
    if not values:
        return "—"
    m = statistics.fmean(values) * scale
    if len(values) < 2:
        return f"{m:.1f}"
    return f"{m:.1f} ± {statistics.stdev(values) * scale:.1f}"


def _group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def _flat(result: dict) -> dict:
    """One row per finished cell with the fields the tables need."""
    s = result["settings"]
    data = s["run"]["data"] if "run" in s else s["data"]
    return {
        "kind": result["kind"], "job": result["job"], "input": s["input"],
        "labels": s.get("labels", "true"), "predict": s.get("predict", "emotion"), "step": data["step"],
        "chance": result.get("chance"),
        "pretraining": s.get("pretraining", "rf"), "protocol": s["split"]["protocol"], "fold": s["split"]["fold"],
        "seed": s["seed"], "acc": result["report"]["accuracy"], "f1": result["report"]["macro"]["f1"],
        "report": result["report"], "wall_s": result.get("wall_s"), "n_train": result.get("n_train"),
        "n_test": result.get("n_test"), "test_subjects": result.get("test_subjects"),
        "checkpoint_epoch": result.get("checkpoint_epoch"), "epochs": s.get("epochs"),
        "stopped_epoch": result.get("stopped_epoch"), "wall": _wall(result),
    }


def _job_seconds(result: dict) -> float:
    """A job's training / fitting time: the wall time of the invocation that finished it, plus, for a
    run resumed from a checkpoint, the training time its earlier sessions spent on the epochs it kept."""
    return (result.get("wall_s") or 0.0) + (result.get("earlier_train_s") or 0.0)


def _wall(result: dict) -> str:
    """A job's wall-time cell: '812 s', or for a resumed run '812 s + 300 s before resuming at epoch 6'."""
    text = f"{result.get('wall_s') or 0:.0f} s"
    if result.get("resumed_at_epoch"):
        text += f" + {result['earlier_train_s']:.0f} s before resuming at epoch {result['resumed_at_epoch']}"
    return text


def _stopped(rows: list[dict]) -> str:
    """The epochs at which early stopping ended the runs of a cell, in (fold, seed) order."""
    return ", ".join(str(r["stopped_epoch"]) for r in sorted(rows, key=lambda r: (r["fold"], r["seed"]))
                     if r.get("stopped_epoch") is not None) or "—"


def _combined_report(rows: list[dict]) -> dict:
    """Whole-set metrics over the union of the rows' test sets (confusions summed, then recomputed)."""
    from jazbat_jax.train.metrics import classification_report

    names = rows[0]["report"]["class_names"]
    cm = sum(np.asarray(r["report"]["confusion"], np.int64) for r in rows)
    y_true = np.repeat(np.repeat(np.arange(len(names)), len(names)), cm.ravel())
    y_pred = np.repeat(np.tile(np.arange(len(names)), len(names)), cm.ravel())
    return classification_report(y_true, y_pred, names)


def _history(results: Path, job_id: str) -> list[dict]:
    p = results / "cells" / job_id / "run" / "metrics.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- what the numbers mean
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


def matched_runs(a: list[dict], b: list[dict]) -> tuple[list[dict], list[dict]]:
    """The runs of two conditions that share a fold and seed, in (fold, seed) order: the pairs a paired
    test may use. A partial grid then compares the runs it has rather than none."""
    key = lambda r: (r["fold"], r["seed"])  # noqa: E731
    both = {key(r) for r in a} & {key(r) for r in b}
    return (sorted((r for r in a if key(r) in both), key=key), sorted((r for r in b if key(r) in both), key=key))


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


# ---------------------------------------------------------------- figures
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


def _plot_pretrain_curves(results: Path, pretrain: list[dict], path: Path) -> bool:
    from matplotlib.figure import Figure

    hists = []
    for r in pretrain:
        p = results / "pretrain" / r["job"] / "run" / "metrics.jsonl"
        hists.append([json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else [])
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


# ---------------------------------------------------------------- report
def _was_busy(invocation: dict) -> bool:
    return busy(invocation.get("load_average_start"), invocation.get("load_average_end"),
                invocation["machine"].get("cpu_count"))


def _loads(load: list[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in load) if load else "?"


def _load_note(invocation: dict) -> str:
    """The load averages an invocation recorded (older invocations recorded none)."""
    start, end = invocation.get("load_average_start"), invocation.get("load_average_end")
    if start is None and end is None:
        return "; load average not recorded"
    return f"; load average (1/5/15 min) {_loads(start)} at the start, {_loads(end)} at the end" + (
        " ⚠ busy" if _was_busy(invocation) else "")


def _epochs(section: dict) -> str:
    """'40 epochs', or with early stopping 'at most 40 epochs, early stopping ...'."""
    if section.get("patience") is None:
        return f"{section['epochs']} epochs"
    return (f"at most {section['epochs']} epochs, early stopping on validation macro-F1 after "
            f"{section['patience']} epochs without improvement")


def _inputs_line(cfg: dict) -> str:
    """What the source and target accelerations are: as recorded (the paper) or matched (docs/data.md)."""
    from jazbat_jax.data.matching import GRAVITY_REMOVAL

    gravity, rate = cfg["pretrain"]["gravity"], cfg["target"]["resample_hz"]
    source = ("WISDM acceleration as recorded (with gravity)" if gravity == "as_recorded"
              else f"WISDM acceleration with gravity removed ({GRAVITY_REMOVAL})")
    target = ("the target as recorded" if rate is None
              else f"the target's walks resampled from ~25 Hz to {rate:g} Hz (scipy.signal.resample_poly)")
    return f"- **Inputs**: {source}; {target}."


def _settings_lines(cfg: dict, invocations: list[dict]) -> list[str]:
    t, p, f, g = cfg["target"], cfg["pretrain"], cfg["finetune"], cfg["grid"]
    target = ("Quiroz et al. 2018 walking emotions (smartwatch, happy / neutral / sad)" if t["dataset"] == "quiroz"
              else f"SEECS-layout data at {t['root']} (6 emotions)")
    machines = sorted({json.dumps(i["machine"], sort_keys=True) for i in invocations})
    lines = [
        f"- **Profile** `{cfg['profile']}`; data root `{cfg['data_root']}`"
        + (" (the sample bundled with the package: 12 Quiroz participants, 6 WISDM watch subjects)"
           if cfg["data_root"] == "bundled" else ""),
        f"- **Target**: {target}; windows of {t['window']} samples, step {t['step']}"
        + (f"; participants {t['participants']}" if t["participants"] else "; all participants in the data"),
        f"- **Splits**: `subject` = {g['n_folds']}-fold by participant (no person in two parts), `random` = "
        f"{g['n_folds']}-fold stratified over windows (the paper's probable protocol; overlapping windows of the "
        f"same walk land in train and test); folds run: {cfgmod.folds(cfg)}; split seed {g['split_seed']}; "
        f"validation = {f['val_fraction']:.0%} of the rest (for checkpoint selection by macro-F1).",
        f"- **Fine-tuning**: {_epochs(f)}, batch {f['batch_size']}, Adam lr {f['learning_rate']} "
        f"(paper: 90 epochs); all layers trained; best-validation checkpoint evaluated on the test fold.",
        f"- **Pretraining**: WISDM 2019, {len(p['activities'])} activities `{p['activities']}`, step {p['step']}, "
        f"{_epochs(p)} (paper: 40), subject hold-out ({p['test_fraction']:.0%} test, "
        f"{p['val_fraction']:.0%} val), seed {p['seed']}; subjects listed below.",
        _inputs_line(cfg),
        f"- **Seeds** (initialisation, shuffling): {g['seeds']}; mean ± SD are over folds × seeds (sample SD).",
        f"- **Baseline**: random forest ({cfg['baseline']['n_estimators']} trees) on 15 gait features per channel, "
        f"same folds, trained on " + ("the network's training participants (not its validation part)."
                                      if cfg["baseline"]["fit_on"] == "train" else "train + validation.")
        if cfg["baseline"]["enabled"] else "- Baseline: off.",
    ]
    for m in machines:
        m = json.loads(m)
        lines.append(f"- **Machine**: {m['host_cpu']}, {m['cpu_count']} cores, JAX {m['jax']} on "
                     f"{m['jax_devices']} ({m['jax_backend']}), Python {m['python']}")
    return lines


def build_report(results: str | Path, cfg: dict | None = None, command: str | None = None) -> Path:
    """Write ``report.md`` and ``figures/`` into ``results``; return the report's path."""
    results = Path(results)
    if cfg is None:
        p = results / "config.json"
        if not p.exists():
            raise FileNotFoundError(f"{results} has no config.json: run the grid first (or pass a config)")
        cfg = cfgmod.load_config(None, p)  # on top of its profile: a folder from an older version lacks newer keys
    fig_dir = results / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    jobs = grid.plan(cfg)
    done = {j.id: json.loads((j.folder(results) / "result.json").read_text()) for j in jobs if j.done(results)}
    missing = [j for j in jobs if j.id not in done]
    inv_path = results / "invocations.jsonl"
    invocations = [json.loads(line) for line in inv_path.read_text().splitlines() if line.strip()] if inv_path.exists() else []
    pretrain = [r for r in done.values() if r["kind"] == "pretrain"]
    rows = [_flat(r) for r in done.values() if r["kind"] not in ("pretrain", "personal")]
    g = cfg["grid"]

    out: list[str] = [f"# Jazbat-Net experiments on public data ({cfg['profile']} profile)", ""]
    if command:
        out += ["Report written by:", "", "```", command, "```", ""]
    total_wall = sum(_job_seconds(r) for r in done.values())
    out += [f"{len(done)} of {len(jobs)} jobs finished"
            + (f" ({len(missing)} missing, listed at the end)" if missing else "")
            + f"; training / fitting wall time of the finished jobs {total_wall / 60:.1f} min (a resumed run counts "
              "its earlier sessions' epochs)"
            + ".", ""]
    if invocations:
        out += ["Invocations of the grid on this results folder (from `invocations.jsonl`):", ""]
        out += [f"- {i['started']}: {len(i['ran'])} jobs run, {i['skipped_done']} skipped as done, "
                f"{i['wall_s'] / 60:.1f} min wall" + (f", **stopped early ({i['stopped']})**" if i.get("stopped") else "")
                + _load_note(i) + (f" — `{i['command']}`" if i.get("command") else "")
                for i in invocations]
        if any(_was_busy(i) for i in invocations):
            out += ["", "**Warning: the machine was busy during an invocation marked ⚠ (load average above half its "
                        "cores at the start or above all of them at the end): its wall times are slower than on an idle "
                        "machine of the same kind.**"]
        out.append("")
    roots = sorted({r["settings"]["target"]["root"] for r in done.values() if "target" in r["settings"]}
                   | {r["settings"]["data_root"] for r in pretrain})
    out += ["## Settings", "", *_settings_lines(cfg, invocations),
            f"- **Data used** (dataset @ fingerprint of its files, as recorded in the jobs): "
            f"{', '.join(f'`{x}`' for x in roots) or '—'}", ""]

    # ---- main grid
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

    out += _differences_section(cfg, true_rows)
    out += ["### Published anchor for the target data", "", QUIROZ_ANCHOR if cfg["target"]["dataset"] == "quiroz"
            else "No published anchor for user-supplied SEECS-layout data.", ""]
    out += _personal_section(results, cfg, done, fig_dir)

    # ---- best cell
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

    # ---- learning curves
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

    # ---- pretraining
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

    # ---- complexity
    out += _complexity_section(cfg, rows, results)

    # ---- every cell
    table = []
    for r in rows:
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
    out += ["## Every finished job", "",
            _table(["job", "input", "model", "split", "fold", "seed", "train / test windows", "test participants",
                    "best epoch", "accuracy", "macro-F1", "wall time"], table), ""]
    if missing:
        out += ["## Missing jobs (not run: the grid was stopped or the compute ran out)", ""]
        out += [f"- `{j.id}`" for j in missing]
        out.append("")
    path = results / "report.md"
    path.write_text("\n".join(out))
    return path


def _differences_section(cfg: dict, rows: list[dict]) -> list[str]:
    """Where our numbers differ from the paper's, with the reasons we can name."""
    deep = [r for r in rows if r["kind"] == "deep"]
    if not deep:
        return []
    lines = ["### Where these results differ from the paper, and why", ""]
    for protocol, rs in sorted(_group(deep, "protocol").items()):
        (inp, pre), best = max(_group(rs, "input", "pretraining").items(),
                               key=lambda kv: statistics.fmean(r["acc"] for r in kv[1]))
        paper = PAPER_TABLE_VI.get((inp, pre))
        lines.append(f"- Best Jazbat-Net mean accuracy under `{protocol[0]}`: {100 * statistics.fmean(r['acc'] for r in best):.1f}% "
                     f"({inp.upper()}, {PRETRAIN_LABEL[pre]})"
                     + (f"; the paper reports {paper:.2f}% for that cell on SEECS." if paper else "; not a cell of the paper."))
    leak = []
    for (inp, pre), rs in sorted(_group(rows, "input", "pretraining").items()):
        a = [r["acc"] for r in rs if r["protocol"] == "random"]
        b = [r["acc"] for r in rs if r["protocol"] == "subject"]
        if a and b:
            leak.append(100 * (statistics.fmean(a) - statistics.fmean(b)))
    t = cfg["target"]
    lines += [
        "- **Data**: " + ("Quiroz 2018 is a wrist-worn watch (linear acceleration without gravity, ≈ 25 Hz, no timestamps), "
                          "three *induced* emotions (happy / neutral / sad); SEECS is a chest-worn phone at 75 Hz with six "
                          "*recalled* emotions. Chance is 33% here, 17% there."
                          if t["dataset"] == "quiroz" else "SEECS-layout data supplied by the user; not the paper's copy."),
        "- **Split**: the paper does not state its split; with overlapping windows a random split puts near-copies of "
        "test windows into training."
        + (f" Here the random split scored between {min(leak):+.1f} and {max(leak):+.1f} accuracy points above the "
           "subject split, model by model." if leak else ""),
        f"- **Training length**: fine-tuning {_epochs(cfg['finetune'])} here (paper 90 epochs), "
        f"pretraining {_epochs(cfg['pretrain'])} (paper 40), window steps {t['step']} / {cfg['pretrain']['step']} "
        "(paper 16 / 32).",
        "",
    ]
    return lines


def _complexity_section(cfg: dict, rows: list[dict], results: Path) -> list[str]:
    from jazbat_jax import summary

    c = 3 if cfg["target"]["dataset"] == "quiroz" else 6
    table = []
    for inp in cfg["grid"]["inputs"]:
        variants = []
        if "none" in cfg["grid"]["pretraining"]:
            variants.append(("no pretraining (K = C)", c))
        if any(p != "none" for p in cfg["grid"]["pretraining"]):
            variants.append(("transferred (K = 18 kept), or from scratch with K = 18", 18))
        for name, k in variants:
            j = summary.build(inp, k, c, xla=False)["jazbat_net"]
            table.append([inp.upper(), name, k, c, f"{j['trainable_params']:,}", f"{j['total_params']:,}", f"{j['macs']:,}"])
    lines = ["## Model complexity (computed from the models, `jazbat_jax.summary`)", "",
             _table(["input", "model", "K", "C", "trainable params", "total params", "MACs per window"], table),
             "", "Window 256.", ""]
    profile_json = Path(results) / "profile" / "profile.json"
    from jazbat_jax import plugins

    profile = plugins.load_one(plugins.PROFILERS, "latency") if profile_json.exists() else None
    if profile is not None:  # written by the grid: the exported models' sizes and latency
        lines += ["## Exported models: size and latency (`jazbat profile`, fresh models with perturbed weights)", "",
                  profile.render_markdown(json.loads(profile_json.read_text())), "",
                  "![latency and size](profile/profile.png)", ""]
    else:
        lines += ["This results folder has no latency profile (the grid writes one when `latency.enabled` is on; "
                  "`jazbat profile` makes one on its own).", ""]
    return lines


# ---------------------------------------------------------------- personal models (the study's own protocol)
# Published personal-model results on the same data, by the classes compared.
PERSONAL_PUBLISHED = {
    ("happy", "sad"): "median > 78 (Quiroz et al. 2018); 86.6 (Nur et al., tuned forest)",
    ("happy", "neutral", "sad"): "76.3 (Nur et al., tuned forest)",
}
PERSONAL_SPLIT = {"shuffled": "shuffled (the study's)", "time_block": "time blocks"}
PERSONAL_MODEL = {"rf": "random forest (gait features)", "none": "Jazbat-Net, no pretraining",
                  "watch": "Jazbat-Net, WISDM watch", "phone": "Jazbat-Net, WISDM phone"}


def _personal_stats(result: dict) -> dict:
    """Per-participant accuracies of one personal job, their median and IQR, and how many participants are
    above chance by the exact binomial test, Holm-corrected over the participants."""
    from jazbat_jax.experiments import personal, stats

    people = sorted(result["participants"], key=int)
    per = result["participants"]
    acc = np.array([per[p]["accuracy"] for p in people])
    adjusted = stats.holm([per[p]["p_vs_chance"] for p in people])
    return {"ids": [int(p) for p in people], "acc": acc, "median": float(np.median(acc)),
            "iqr": [float(v) for v in np.percentile(acc, [25, 75])],
            "above": int(sum(p < personal.ALPHA for p in adjusted)), "n": len(people)}


def _median_iqr(st: dict | None) -> str:
    if st is None:
        return "—"
    low, high = st["iqr"]
    return f"{100 * st['median']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _personal_conditions(cfg: dict, done: dict) -> list[dict]:
    """One entry per (input, model, split) with a finished true-label job: its stats and its control's."""
    p = cfg["personal"]
    by = {(r["settings"]["input"], r["settings"]["model"], r["settings"]["split"], r["settings"]["labels"]): r
          for r in done.values() if r["kind"] == "personal"}
    out = []
    for inp in p["inputs"]:
        for model in ("rf", *p["deep_models"]):
            for split in p["splits"]:
                true, control = by.get((inp, model, split, "true")), by.get((inp, model, split, "permuted"))
                if true is None:
                    continue
                out.append({"input": inp, "model": model, "split": split, "true": true, "control": control,
                            "st": _personal_stats(true), "cst": _personal_stats(control) if control else None})
    return out


def _personal_plot(conditions: list[dict], published: float | None, chance: float, path: Path) -> bool:
    """Each participant's accuracy per condition, the permuted-label control beside it; bars: medians."""
    from matplotlib.figure import Figure

    if not conditions:
        return False
    fig = Figure(figsize=(max(6.0, 1.5 * len(conditions) + 2), 4.6), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # horizontal jitter only, so that equal values stay visible
    for i, c in enumerate(conditions):
        for dx, st, color, label in ((-0.18, c["st"], "C0", "true labels"),
                                     (0.18, c["cst"], "0.55", "permuted-label control (walks swapped)")):
            if st is None:
                continue
            vals = 100 * st["acc"]
            ax.scatter(i + dx + rng.uniform(-0.07, 0.07, len(vals)), vals, s=14, alpha=0.75, color=color,
                       label=label if i == 0 else None)
            ax.plot([i + dx - 0.13, i + dx + 0.13], [np.median(vals)] * 2, color="k", lw=1.6)
    ax.axhline(100 * chance, color="0.45", ls="--", lw=1, label=f"chance ({100 * chance:.0f}%)")
    if published is not None:
        ax.axhline(published, color="C3", ls=":", lw=1.2, label=f"published: median above {published:.0f}%")
    names = [f"{c['input'].upper()} {'RF' if c['model'] == 'rf' else 'Jazbat-Net'}\n"
             + ("" if c["model"] == "rf" else f"{PRETRAIN_LABEL[c['model']]}\n") + PERSONAL_SPLIT[c["split"]]
             for c in conditions]
    ax.set_xticks(range(len(conditions)), names, fontsize=8)
    ax.set(ylabel="participant's accuracy (%)", ylim=(0, 102))
    return _save_dot_plot(fig, ax, path, "Personal models: each dot one participant (bar: median)", 4)


def _personal_statement(conditions: list[dict]) -> list[str]:
    """What the comparison shows, in words, from the numbers of the table."""
    lines = []
    for c in conditions:
        if c["split"] != "shuffled":
            continue
        st, cst, r = c["st"], c["cst"], c["true"]
        tested = np.mean([v["n_test"] for v in r["participants"].values()])
        text = (f"- {c['input'].upper()} {PERSONAL_MODEL[c['model']]} ({st['n']} participants, {tested:.0f} test "
                f"predictions each): median {100 * st['median']:.1f}% under the study's shuffled split")
        if cst is not None:
            gap = 100 * (st["median"] - cst["median"])
            text += (f"; with the walks' labels permuted {100 * cst['median']:.1f}% "
                     + ("(the same within 2 points)" if abs(gap) < 2 else f"({gap:+.1f} points)"))
        block = next((b for b in conditions if (b["input"], b["model"], b["split"]) == (c["input"], c["model"],
                                                                                       "time_block")), None)
        if block is not None:
            text += (f"; with time blocks that share no sample with the training windows "
                     f"{100 * block['st']['median']:.1f}% ({100 * (block['st']['median'] - st['median']):+.1f} "
                     f"points), {block['st']['above']} of {block['st']['n']} participants above chance "
                     f"(shuffled: {st['above']} of {st['n']})")
        lines.append(text + ".")
    if not lines:
        return []
    return ["**What the comparison shows.** Inside a personal model each emotion is one walk, so the label is also "
            "*which walk*, and permuting the labels of a person's walks only renames the classes: a model that tells "
            "the walks apart, by emotion or by anything else that differs between them (walk order, time, fatigue, "
            "how the watch sits, heart-rate drift), scores the same in expectation. An accuracy that the control "
            "matches says that the walks differ, not that emotion is recognised; the study's protocol cannot separate "
            "the two. Where true and permuted labels differ, the difference is the spread of the model's own training "
            "(initialisation, order, few test windows), not emotion. The time-block split removes what overlapping "
            "neighbours of a test window give away; what remains above chance is a difference between the walks that "
            "lasts for minutes, still not attributable to emotion.", "", *lines, ""]


def _personal_section(results: Path, cfg: dict, done: dict, fig_dir: Path) -> list[str]:
    """Quiroz et al.'s own protocol: per model × split, per-participant accuracy beside its control."""
    from jazbat_jax.experiments import personal

    p = cfg.get("personal")
    if not p or not p["enabled"] or cfg["target"]["dataset"] != "quiroz":
        return []
    classes = " vs ".join(p["classes"])
    out = [f"## Quiroz et al.'s own protocol: personal models, {classes}", "",
           "One model per participant, trained and tested on that person's own walks only (`personal` jobs, "
           "`jazbat_jax/experiments/personal.py`). Splits inside each person: **shuffled**, the study's repeated "
           "stratified k-fold over the person's windows (overlapping neighbours of a test window are in training), and "
           "**time blocks**, each walk cut into k contiguous blocks, fold i testing block i of every walk, with every "
           "training window that shares a sample with a test window dropped. Beside each, the **permuted-label "
           "control**: the labels of each person's walks permuted among them (two walks: swapped).", ""]
    conditions = _personal_conditions(cfg, done)
    if not conditions:
        return out + ["No personal job has finished yet.", ""]
    published = PERSONAL_PUBLISHED.get(tuple(p["classes"]), "—")
    chance = 1 / len(p["classes"])
    table = []
    for c in conditions:
        s = c["true"]["settings"]
        folds = f"{s['n_folds']}" + (f" (folds {s['folds']})" if s["folds"] is not None else "") + f" × {s['repeats']}"
        table.append([c["input"].upper(), PERSONAL_MODEL[c["model"]], PERSONAL_SPLIT[c["split"]], c["st"]["n"], folds,
                      _median_iqr(c["st"]), _median_iqr(c["cst"]),
                      f"{100 * (c['st']['median'] - c['cst']['median']):+.1f}" if c["cst"] else "—",
                      f"{c['st']['above']}/{c['st']['n']}", f"{c['cst']['above']}/{c['cst']['n']}" if c["cst"] else "—",
                      published])
    out += [_table(["input", "model", "split", "participants", "folds × repeats", "median accuracy [IQR] (%)",
                    "permuted-label control: median [IQR] (%)", "true − control (points)",
                    "above chance (Holm)", "control above chance (Holm)", "published (%)"], table), "",
            "Each participant's accuracy is over all its test predictions (every window is tested once per repeat). "
            f"Above chance: an exact one-sided binomial test per participant of its correct predictions against the "
            "majority-class share, on the test windows of the first repeat that share no sample with one another, "
            f"Holm-corrected over the participants of the row, at α = {personal.ALPHA}. Neighbouring windows of a walk are "
            "still correlated, so these p-values are optimistic. The published figures are personal models on all 44 "
            "participants with 108 features (accelerometer, gyroscope and heart rate); ours are the features and "
            "windows listed below.", ""]
    if _personal_plot(conditions, 78.0 if tuple(p["classes"]) == ("happy", "sad") else None, chance,
                      fig_dir / "personal.png"):
        out += ["![personal models: per-participant accuracy](figures/personal.png)", ""]
    out += _personal_statement(conditions)
    jobs = []
    for r in sorted((r for r in done.values() if r["kind"] == "personal"), key=lambda r: r["job"]):
        s, w, d = r["settings"], r["windows"], r["dropped_train_windows"]
        model = PERSONAL_MODEL[s["model"]] + (f", {s['n_estimators']} trees" if s["model"] == "rf"
                                               else f", {s['epochs']} epoch{'s' if s['epochs'] != 1 else ''}")
        jobs.append([f"`{r['job']}`", model, f"{w['window']} / {w['step']}", f"{w['per_participant_mean']:.0f}",
                     r["runs"], f"{r['n_train_mean']:.0f}",
                     f"{d['total']} ({100 * d['share_of_candidates']:.1f}%)" if s["split"] == "time_block" else "—",
                     f"{r['wall_s']:.0f} s", f"{r['cpu_s']:.0f} s" if "cpu_s" in r else "—"])
    out += ["Personal jobs (a run is one participant's fold of one repeat):", "",
            _table(["job", "model", "window / step", "windows per participant", "runs", "training windows per run",
                    "training windows dropped (share)", "wall time", "CPU time"], jobs), ""]
    return out
