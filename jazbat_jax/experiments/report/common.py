"""Helpers every section uses: tables, mean ± SD, grouping, load notes, the paper's labels."""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
from tabulate import tabulate

from jazbat_jax import paper
from jazbat_jax.files import read_json_lines
from jazbat_jax.machine import busy


PAPER_TABLE_VI = paper.TABLE_VI
PAPER_SOURCE = "Imran et al., IEEE IoT Journal 2026, Table VI"
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


def _job_seconds(result: dict) -> float:
    """A job's training / fitting time: the wall time of the invocation that finished it, plus, for a
    run resumed from a checkpoint, the training time its earlier sessions spent on the epochs it kept."""
    return (result.get("wall_s") or 0.0) + (result.get("earlier_train_s") or 0.0)


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
    return read_json_lines(results / "cells" / job_id / "run" / "metrics.jsonl")


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
