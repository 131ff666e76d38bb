"""The permuted-label control: what a model scores when each walk carries a consistent but wrong label.

Each participant's recordings swap labels among themselves: every recording keeps one label for all
its windows, taken from another recording of the same participant, so the label distribution per
participant (and overall) is unchanged while the link between signal and label is broken. Where the
participant's labels allow it the permutation is a derangement (no recording keeps its true label);
with repeated labels, the fewest possible recordings keep theirs. Among the permutations that do
best, one is drawn with ``seed``.

A model that scores as well on these labels as on the true ones is recognising *which walk* (or
which person) a window came from, not the emotion: the control measures how much of an accuracy
the split leaks.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from .core import WindowSet

EXHAUSTIVE_UP_TO = 7  # recordings per participant: all permutations are searched up to this many


def _best_permutation(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An order of ``labels`` that leaves the fewest entries in place, drawn at random among the best."""
    n = len(labels)
    if n <= EXHAUSTIVE_UP_TO:
        perms = np.asarray(list(itertools.permutations(range(n))), dtype=np.int64).reshape(-1, n)
        kept = (labels[perms] == labels).sum(axis=1)
        best = perms[kept == kept.min()]
        return best[rng.integers(len(best))]
    # Many recordings: sample permutations and keep the best one found.
    trials = rng.permuted(np.tile(np.arange(n), (2000, 1)), axis=1)
    kept = (labels[trials] == labels).sum(axis=1)
    return trials[int(kept.argmin())]


def permute_labels(ws: WindowSet, seed: int = 0) -> WindowSet:
    """``ws`` with its labels permuted among each participant's recordings (see the module docstring);
    ``report["label_permutation"]`` records, per recording, the true and the assigned class."""
    rng = np.random.default_rng(seed)
    y = np.array(ws.y, copy=True)
    records = []
    for subject in np.unique(ws.subject):
        in_subject = ws.subject == subject
        recs = np.unique(ws.recording[in_subject])
        true = np.asarray([_recording_label(ws, r) for r in recs])
        assigned = true[_best_permutation(true, rng)]
        for r, t, a in zip(recs, true, assigned):
            y[ws.recording == r] = a
            records.append({"subject": int(subject), "recording": int(r), "true": ws.class_names[t],
                            "assigned": ws.class_names[a]})
    kept = sum(r["true"] == r["assigned"] for r in records)
    report = {**ws.report, "label_permutation": {"seed": seed, "recordings": len(records),
                                                 "kept_true_label": kept, "per_recording": records}}
    return dataclasses.replace(ws, y=y, report=report)


def _recording_label(ws: WindowSet, recording: int) -> int:
    labels = np.unique(ws.y[ws.recording == recording])
    if len(labels) != 1:
        raise ValueError(f"recording {recording} has windows of {len(labels)} classes; the permuted-label control "
                         "needs one label per recording")
    return int(labels[0])
