"""Classification metrics over a whole evaluation set, plus the paper's batch-averaged variant.

``classification_report`` is the one to report: accuracy, per-class precision / recall / F1,
macro and weighted averages, and the confusion matrix (counts and row-normalised %), all from
the full set of predictions. ``algorithm1_batch_averaged`` reproduces the paper's Algorithm 1
(metrics computed per batch, then averaged over batches): it depends on the batch size and the
order of the windows, and is offered for comparison with the published numbers only.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm
from tabulate import tabulate


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = number of windows of true class i predicted as class j."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict:
    """Whole-set metrics as a JSON-serialisable dict.

    Macro averages are over all ``class_names`` (a class absent from both y_true and y_pred
    counts as 0); weighted averages weight each class by its support.
    """
    c = len(class_names)
    cm = confusion_matrix(y_true, y_pred, c)
    labels = np.arange(c)
    p, r, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    n = int(cm.sum())
    w = support / max(n, 1)
    rows = cm.sum(axis=1, keepdims=True)
    row_pct = 100.0 * np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    return {
        "n": n,
        "accuracy": float(np.trace(cm) / max(n, 1)),
        "macro": {"precision": float(p.mean()), "recall": float(r.mean()), "f1": float(f1.mean())},
        "weighted": {"precision": float(p @ w), "recall": float(r @ w), "f1": float(f1 @ w)},
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "class_names": list(class_names),
        "confusion": cm.tolist(),
        "confusion_row_pct": row_pct.round(4).tolist(),
    }


def algorithm1_batch_averaged(y_true: np.ndarray, y_pred: np.ndarray, batch_size: int) -> dict:
    """The paper's Algorithm 1 (for comparison only): accuracy and macro precision / recall / F1
    computed on each batch of ``batch_size`` consecutive windows, then averaged over batches.

    Within a batch the macro average runs over the classes present in that batch's labels or
    predictions (sklearn's default for ``average='macro'``, which the paper's code calls), which is
    what makes it differ from the whole-set numbers.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    acc, prec, rec, f1s = [], [], [], []
    for s in range(0, len(y_true), batch_size):  # loop over batches, not windows
        t, q = y_true[s:s + batch_size], y_pred[s:s + batch_size]
        p, r, f1, _ = skm.precision_recall_fscore_support(t, q, average="macro", zero_division=0)
        acc.append(np.mean(t == q))
        prec.append(p), rec.append(r), f1s.append(f1)
    return {
        "label": "paper Algorithm 1: batch-averaged (batch-size dependent; for comparison only)",
        "batch_size": int(batch_size),
        "num_batches": len(acc),
        "accuracy": float(np.mean(acc)) if acc else 0.0,
        "macro_precision": float(np.mean(prec)) if prec else 0.0,
        "macro_recall": float(np.mean(rec)) if rec else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
    }


def format_report(report: dict) -> str:
    """A compact text table: per-class P/R/F1/support, then accuracy, macro and weighted."""
    rows = [[name, m["precision"], m["recall"], m["f1"], m["support"]]
            for name, m in ((n, report["per_class"][n]) for n in report["class_names"])]
    rows.append(["accuracy", None, None, report["accuracy"], report["n"]])
    for avg in ("macro", "weighted"):
        m = report[avg]
        rows.append([f"{avg} avg", m["precision"], m["recall"], m["f1"], report["n"]])
    return tabulate(rows, headers=["class", "precision", "recall", "f1", "support"], floatfmt=".4f",
                    missingval="", tablefmt="simple")
