"""Quiroz et al.'s own protocol: personal models, with their controls, against the published figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jazbat_jax.experiments.report.common import PRETRAIN_LABEL, _table
from jazbat_jax.experiments.report.figures import _save_dot_plot


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
    by = {(r["settings"]["input"], r["settings"]["model"], r["settings"]["split"], r["settings"]["labels"],
           r["settings"].get("contrast", "emotion")): r
          for r in done.values() if r["kind"] == "personal"}
    out = []
    for inp in p["inputs"]:
        for model in ("rf", *p["deep_models"]):
            for split in p["splits"]:
                true, control, null = (by.get((inp, model, split, "true", "emotion")),
                                       by.get((inp, model, split, "permuted", "emotion")),
                                       by.get((inp, model, split, "true", "neutral_halves")))
                if true is None:
                    continue
                out.append({"input": inp, "model": model, "split": split, "true": true, "control": control,
                            "null": null, "st": _personal_stats(true),
                            "cst": _personal_stats(control) if control else None,
                            "nst": _personal_stats(null) if null else None})
    return out


def _personal_plot(conditions: list[dict], published: float | None, chance: float, path: Path) -> bool:
    """Each participant's accuracy per condition, the permuted-label control beside it; bars: medians."""
    from matplotlib.figure import Figure

    if not conditions:
        return False
    fig = Figure(figsize=(max(6.0, 1.5 * len(conditions) + 2), 4.6), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # horizontal jitter only, so that equal values stay visible
    has_null = any(c["nst"] is not None for c in conditions)
    # (offsets, jitter, half bar width): three series per condition when the null ran, else two
    offsets, jitter, bar = ((-0.25, 0.0, 0.25), 0.05, 0.1) if has_null else ((-0.18, 0.18), 0.07, 0.13)
    for i, c in enumerate(conditions):
        series = ((c["st"], "C0", "true labels"), (c["cst"], "0.55", "permuted-label control (walks swapped)"),
                  (c["nst"], "C2", "null: neutral walk, first vs second half"))
        for dx, (st, color, label) in zip(offsets, series):
            if st is None:
                continue
            vals = 100 * st["acc"]
            ax.scatter(i + dx + rng.uniform(-jitter, jitter, len(vals)), vals, s=14, alpha=0.75, color=color,
                       label=label if i == 0 else None)
            ax.plot([i + dx - bar, i + dx + bar], [np.median(vals)] * 2, color="k", lw=1.6)
    ax.axhline(100 * chance, color="0.45", ls="--", lw=1, label=f"chance ({100 * chance:.0f}%)")
    if published is not None:
        ax.axhline(published, color="C3", ls=":", lw=1.2, label=f"published: median above {published:.0f}%")
    names = [f"{c['input'].upper()} {'RF' if c['model'] == 'rf' else 'Jazbat-Net'}\n"
             + ("" if c["model"] == "rf" else f"{PRETRAIN_LABEL[c['model']]}\n") + PERSONAL_SPLIT[c["split"]]
             for c in conditions]
    ax.set_xticks(range(len(conditions)), names, fontsize=8)
    ax.set(ylabel="participant's accuracy (%)", ylim=(0, 102))
    return _save_dot_plot(fig, ax, path, "Personal models: each dot one participant (bar: median)", 2 if has_null else 4)


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
        if c["nst"] is not None:
            text += (f"; first vs second half of the neutral walk (no emotion difference) "
                     f"{100 * c['nst']['median']:.1f}%")
        block = next((b for b in conditions if (b["input"], b["model"], b["split"]) == (c["input"], c["model"],
                                                                                       "time_block")), None)
        if block is not None:
            text += (f"; with time blocks that share no sample with the training windows "
                     f"{100 * block['st']['median']:.1f}% ({100 * (block['st']['median'] - st['median']):+.1f} "
                     f"points), {block['st']['above']} of {block['st']['n']} participants above chance "
                     f"(shuffled: {st['above']} of {st['n']})"
                     + (f", the neutral halves {100 * block['nst']['median']:.1f}%" if block["nst"] is not None else ""))
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
            "lasts for minutes, still not attributable to emotion. The **neutral-halves null** has no emotion "
            "difference at all: each person's neutral walk cut in two, first half against second half, through the same "
            "protocol. Where it scores like happy vs sad, the protocol measures that two stretches of walking differ, "
            "whatever their emotion.", "", *lines, ""]


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
           "control**: the labels of each person's walks permuted among them (two walks: swapped), and, where it ran, the "
           "**neutral-halves null**: each person's neutral walk cut at its middle into two classes, first half vs "
           "second half (windows across the middle dropped), through the same protocol: no emotion differs there.", ""]
    conditions = _personal_conditions(cfg, done)
    if not conditions:
        return out + ["No personal job has finished yet.", ""]
    published = PERSONAL_PUBLISHED.get(tuple(p["classes"]), "—")
    chance = 1 / len(p["classes"])
    has_null = any(c["nst"] is not None for c in conditions)
    table = []
    for c in conditions:
        s = c["true"]["settings"]
        folds = f"{s['n_folds']}" + (f" (folds {s['folds']})" if s["folds"] is not None else "") + f" × {s['repeats']}"
        table.append([c["input"].upper(), PERSONAL_MODEL[c["model"]], PERSONAL_SPLIT[c["split"]], c["st"]["n"], folds,
                      _median_iqr(c["st"]), _median_iqr(c["cst"]),
                      f"{100 * (c['st']['median'] - c['cst']['median']):+.1f}" if c["cst"] else "—",
                      f"{c['st']['above']}/{c['st']['n']}", f"{c['cst']['above']}/{c['cst']['n']}" if c["cst"] else "—",
                      published]
                     + ([_median_iqr(c["nst"]), f"{c['nst']['above']}/{c['nst']['n']}" if c["nst"] else "—"]
                        if has_null else []))
    out += [_table(["input", "model", "split", "participants", "folds × repeats", "median accuracy [IQR] (%)",
                    "permuted-label control: median [IQR] (%)", "true − control (points)",
                    "above chance (Holm)", "control above chance (Holm)", "published (%)"]
                   + (["null, neutral walk first vs second half: median [IQR] (%)", "null above chance (Holm)"]
                      if has_null else []), table), "",
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
