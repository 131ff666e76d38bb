"""Reproducible train / val / test splits of a WindowSet.

* ``subject`` (default): grouped by subject, hold-out or k-fold; no person is in two parts.
  Windows of 256 with step 16 overlap 30 neighbours (step 32: 14), so a random split puts
  near-copies of almost every test window into training.
* ``random``: stratified random split of windows, the paper's (leaky) protocol, for comparison.
* ``time``: inside each recording, contiguous blocks train | val | test separated by gaps of at
  least one window, so no sample is shared between parts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .core import Split, WindowSet

PROTOCOLS = ("subject", "random", "time")


def _check(test_fraction: float, val_fraction: float, n_folds: int | None, fold: int | None) -> None:
    if not (0 <= test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ValueError(f"need 0 <= test_fraction, val_fraction and their sum < 1, got {test_fraction}, {val_fraction}")
    if (n_folds is None) != (fold is None):
        raise ValueError("give both n_folds and fold, or neither")
    if n_folds is not None and not (n_folds >= 2 and 0 <= fold < n_folds):
        raise ValueError(f"need n_folds >= 2 and 0 <= fold < n_folds, got n_folds={n_folds}, fold={fold}")


def _subject_split(ws, test_fraction, val_fraction, seed, n_folds, fold):
    rng = np.random.default_rng(seed)
    subjects = rng.permutation(np.unique(ws.subject))
    n = len(subjects)
    if n_folds is not None:
        if n < n_folds:
            raise ValueError(f"{n} subjects cannot make {n_folds} folds")
        groups = np.array_split(subjects, n_folds)
        test_s = groups[fold]
        # The other folds in the order that follows the test fold, so that the validation subjects
        # (taken first) rotate with the fold instead of being the same people in almost every fold.
        rest = np.concatenate([groups[(fold + i) % n_folds] for i in range(1, n_folds)])
    else:
        n_test = int(round(test_fraction * n)) if test_fraction > 0 else 0
        n_test = max(n_test, 1) if test_fraction > 0 else 0
        test_s, rest = subjects[:n_test], subjects[n_test:]
    n_val = int(round(val_fraction * n)) if val_fraction > 0 else 0
    n_val = min(max(n_val, 1), len(rest) - 1) if val_fraction > 0 else 0
    if len(rest) - n_val < 1:
        raise ValueError(f"{n} subjects are too few for a subject split with val and test parts")
    val_s, train_s = rest[:n_val], rest[n_val:]
    part = lambda s: np.flatnonzero(np.isin(ws.subject, s))
    return part(train_s), part(val_s), part(test_s), {}


def _random_split(ws, test_fraction, val_fraction, seed, n_folds, fold):
    rng = np.random.default_rng(seed)
    tr, va, te = [], [], []
    for c in np.unique(ws.y):  # stratified: the same fractions inside every class
        idx = rng.permutation(np.flatnonzero(ws.y == c))
        if n_folds is not None:
            chunks = np.array_split(idx, n_folds)
            test, rest = chunks[fold], np.concatenate([ch for i, ch in enumerate(chunks) if i != fold])
            n_val = int(round(val_fraction * len(idx)))
            val, train = rest[:n_val], rest[n_val:]
        else:
            n_test, n_val = int(round(test_fraction * len(idx))), int(round(val_fraction * len(idx)))
            test, val, train = idx[:n_test], idx[n_test : n_test + n_val], idx[n_test + n_val :]
        tr.append(train), va.append(val), te.append(test)
    cat = lambda a: np.sort(np.concatenate(a)).astype(np.int64)
    return cat(tr), cat(va), cat(te), {}


def _time_split(ws, test_fraction, val_fraction, seed, n_folds, fold):
    """Per recording: the timeline is cut into blocks; a window belongs to a part when it lies
    entirely inside that part's block; each block after the first starts one window length
    after the previous one ends, so parts never share a sample and are >= one window apart."""
    T = ws.x.shape[1]
    end = ws.start + T
    parts = np.full(len(ws), -1, np.int8)  # 0 train, 1 val, 2 test, -1 in a gap
    for r in np.unique(ws.recording):
        m = np.flatnonzero(ws.recording == r)
        L = float(end[m].max())
        if n_folds is None:
            plan = [(0, 1 - test_fraction - val_fraction), (1, val_fraction), (2, test_fraction)]
        else:
            k = 1.0 / n_folds
            v = val_fraction * (1 - k)
            before, after = fold * k, 1 - (fold + 1) * k
            # validation is the stretch just before the test block (just after it for fold 0)
            if fold > 0:
                plan = [(0, before - v), (1, v), (2, k), (0, after)]
            else:
                plan = [(2, k), (1, v), (0, after - v)]
        plan = [(p, f) for p, f in plan if f > 0]
        lo = 0.0
        prev = None
        for p, f in plan:
            hi = lo + f * L
            a = lo + (T if prev is not None and prev != p else 0)
            inside = (ws.start[m] >= a) & (end[m] <= hi)
            parts[m[inside]] = p
            lo, prev = hi, p
    idx = lambda p: np.flatnonzero(parts == p).astype(np.int64)
    return idx(0), idx(1), idx(2), {"windows_in_gaps_dropped": int((parts == -1).sum())}


def split_windows(
    ws: WindowSet,
    protocol: str = "subject",
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    n_folds: int | None = None,
    fold: int | None = None,
) -> Split:
    """Split windows into train / val / test index arrays (see module doc for the protocols).

    Hold-out uses ``test_fraction`` (of subjects, of windows per class, or of each recording's
    timeline); k-fold (``n_folds``, ``fold``) makes fold ``fold`` the test part. ``val_fraction``
    is taken from what is left. The same seed always gives the same split.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    _check(test_fraction, val_fraction, n_folds, fold)
    fn = {"subject": _subject_split, "random": _random_split, "time": _time_split}[protocol]
    train, val, test, extra = fn(ws, test_fraction, val_fraction, seed, n_folds, fold)
    split = Split(train=train, val=val, test=test, protocol=protocol, seed=seed)
    split.summary = summarize_split(ws, split, test_fraction=test_fraction, val_fraction=val_fraction,
                                    n_folds=n_folds, fold=fold, **extra)
    return split


def summarize_split(ws: WindowSet, split: Split, **extra: Any) -> dict[str, Any]:
    """Subjects, windows and windows per class of each part (JSON-serialisable)."""
    out: dict[str, Any] = {"protocol": split.protocol, "seed": split.seed, "source": ws.source, **extra}
    subj = {}
    for name in ("train", "val", "test"):
        idx = getattr(split, name)
        s = np.unique(ws.subject[idx])
        subj[name] = set(s.tolist())
        out[name] = {
            "windows": int(len(idx)),
            "subjects": s.tolist(),
            "recordings": int(len(np.unique(ws.recording[idx]))),
            "windows_per_class": {c: int((ws.y[idx] == i).sum()) for i, c in enumerate(ws.class_names)},
        }
    out["subjects_shared_between_parts"] = sorted(
        (subj["train"] & subj["test"]) | (subj["train"] & subj["val"]) | (subj["val"] & subj["test"])
    )
    return out


def format_split_summary(summary: dict[str, Any]) -> str:
    lines = [f"split: protocol={summary['protocol']} seed={summary['seed']}"
             + (f" fold={summary['fold']}/{summary['n_folds']}" if summary.get("n_folds") else "")]
    for name in ("train", "val", "test"):
        p = summary[name]
        lines.append(f"  {name:5s} {p['windows']:7d} windows  {len(p['subjects']):3d} subjects  "
                     + " ".join(f"{c}={n}" for c, n in p["windows_per_class"].items()))
    if summary.get("windows_in_gaps_dropped"):
        lines.append(f"  windows in gaps between parts (dropped): {summary['windows_in_gaps_dropped']}")
    shared = summary["subjects_shared_between_parts"]
    lines.append(f"  subjects in more than one part: {len(shared)}"
                 + (" (expected for protocol random/time)" if shared and summary["protocol"] != "subject" else ""))
    return "\n".join(lines)


def save_split_summary(split: Split, path: str | Path) -> Path:
    """Write the summary as JSON next to a run's outputs (and return the path)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split.summary, indent=1))
    return path
