"""Emotion recordings in the SEECS layout (closed SEECS Emotions dataset; layout defined here).

The SEECS Emotions data (chest-worn Galaxy S5, 75 Hz, six emotions) are not public and their
file layout is unknown, so we define a simple one and validate it strictly::

    ROOT/
      <subject>/             integer subject id, e.g. 07 or 1012
        <emotion>/           one of: happy fear sad disgust anger surprise
          <name>.csv         one contiguous recording

Each CSV has exactly the header ``timestamp,ax,ay,az,gx,gy,gz`` and one row per sample:
``timestamp`` in milliseconds (any origin, strictly increasing, integer or decimal), ``ax..az``
acceleration in m/s^2 *including gravity* (like WISDM), ``gx..gz`` angular velocity in rad/s.
Anything else (another header, a missing column, a non-number, NaN/inf, a non-increasing
timestamp, an unknown emotion folder, a stray file) is an error naming the file and line.
A recording is cut at clock gaps (> ``gap_factor`` x its typical step); pieces shorter than one
window are dropped and counted in the report.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .core import WindowSet
from .inputs import INPUT_KINDS, InputSpec
from .matching import GRAVITY_REMOVAL, highpass_segments, segment_rates
from .windows import contiguous_segments, make_windowset

SEECS_EMOTIONS = ("happy", "fear", "sad", "disgust", "anger", "surprise")
SEECS_HEADER = "timestamp,ax,ay,az,gx,gy,gz"
SEECS_RATE_HZ = 75.0


def read_seecs_recording(path: str | Path) -> np.ndarray:
    """(n, 7) float64 array of one recording, strictly validated."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the header
    lines = text.splitlines()
    if not lines:
        raise ValueError(f"{path}: empty file")
    if lines[0].strip() != SEECS_HEADER:
        raise ValueError(f"{path}, line 1: header must be {SEECS_HEADER!r}, got {lines[0]!r}")
    if len(lines) < 2:
        raise ValueError(f"{path}: no samples after the header")
    with np.errstate(all="ignore"):
        try:
            a = np.loadtxt(lines[1:], delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError:
            a = None
    if a is None or a.shape[1] != 7:
        for i, ln in enumerate(lines[1:], start=2):  # name the first bad line
            f = ln.split(",")
            try:
                if len(f) != 7:
                    raise ValueError(f"{len(f)} fields instead of 7")
                [float(v) for v in f]
            except ValueError as e:
                raise ValueError(f"{path}, line {i}: {e}: {ln!r}") from None
        raise ValueError(f"{path}: could not parse")
    bad = ~np.isfinite(a).all(1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}, line {i + 2}: NaN or infinite value: {lines[i + 1]!r}")
    d = np.diff(a[:, 0])
    if (d <= 0).any():
        i = int(np.flatnonzero(d <= 0)[0]) + 1
        raise ValueError(f"{path}, line {i + 2}: timestamp not strictly increasing: {lines[i + 1]!r}")
    return a


def scan_seecs(root: str | Path) -> list[tuple[int, str, Path]]:
    """(subject, emotion, csv path) of every recording; strict about the folder layout."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SEECS folder not found: {root}")
    out = []
    for sd in sorted(root.iterdir()):
        if sd.name.startswith("."):
            continue
        if not sd.is_dir() or not sd.name.isdigit():
            raise ValueError(f"{sd}: expected only subject folders with integer names in {root}")
        for ed in sorted(sd.iterdir()):
            if ed.name.startswith("."):
                continue
            if not ed.is_dir() or ed.name not in SEECS_EMOTIONS:
                raise ValueError(f"{ed}: expected an emotion folder, one of {SEECS_EMOTIONS}")
            for f in sorted(ed.iterdir()):
                if f.name.startswith("."):
                    continue
                if f.suffix != ".csv" or not f.is_file():
                    raise ValueError(f"{f}: expected only .csv recordings in {ed}")
                out.append((int(sd.name), ed.name, f))
    if not out:
        raise FileNotFoundError(f"no recordings in {root} (layout: <subject>/<emotion>/<name>.csv)")
    return out


def load_seecs(
    root: str | Path,
    input_kind: str = "1d",
    window: int = 256,
    step: int = 16,
    mag_mode: str = "norm_minus_g",
    gap_factor: float = 3.0,
    remove_gravity: bool = False,
) -> WindowSet:
    """Windows of SEECS-layout recordings; classes ``SEECS_EMOTIONS`` in that order.

    input_kind: '1d' acceleration magnitude (``mag_mode`` as for WISDM: the phone's
    accelerometer includes gravity), '3d' ax..az, '6d' + gx..gz. No resampling (the paper uses
    75 Hz as recorded); the report gives the rates found. remove_gravity: high-pass ax..az in each
    contiguous piece (``data.matching``), as for WISDM; the 1D input is then |a_lin|.
    """
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    if remove_gravity and input_kind == "1d" and mag_mode == "paper_literal":
        raise ValueError("mag_mode='paper_literal' needs gravity in the signal; with remove_gravity the 1D input "
                         "is |a_lin| (mag_mode 'norm')")
    recs = scan_seecs(root)
    arrays = [read_seecs_recording(p) for _, _, p in recs]
    lens = np.array([len(a) for a in arrays])
    data = np.concatenate(arrays)
    rec_id = np.repeat(np.arange(len(recs)), lens)
    timestamp_ns = (data[:, 0] * 1e6).astype(np.int64)
    seg_start, seg_len, cuts = contiguous_segments([rec_id], timestamp_ns, gap_factor)
    rates = [1000.0 / float(np.median(np.diff(a[:, 0]))) for a in arrays if len(a) > 1]
    raw = data[:, 1:7]
    removal = None
    if remove_gravity:
        seg_hz = segment_rates(timestamp_ns, seg_start, seg_len, float(np.median(rates)) if rates else SEECS_RATE_HZ)
        raw = raw.copy()
        raw[:, :3], removal = highpass_segments(raw[:, :3], seg_start, seg_len, seg_hz)
    spec = InputSpec(input_kind, gravity="removed" if remove_gravity else "included",
                     magnitude=("norm" if remove_gravity else mag_mode) if input_kind == "1d" else None,
                     gyro_units="rad/s" if input_kind == "6d" else None,
                     rate_hz=round(float(np.median(rates)), 2) if rates else SEECS_RATE_HZ,
                     gravity_removal=GRAVITY_REMOVAL if remove_gravity else None)
    signal = spec.from_raw(raw)
    r_of_seg = rec_id[seg_start]
    subj = np.array([s for s, _, _ in recs])[r_of_seg]
    label = np.array([SEECS_EMOTIONS.index(e) for _, e, _ in recs])[r_of_seg]
    short = {str(recs[r][2].relative_to(root)): int(n) for r, n in zip(r_of_seg, seg_len) if n < window}
    report: dict[str, Any] = {
        "dataset": "seecs", "root": str(root), "input_kind": input_kind,
        "mag_mode": spec.magnitude, "recordings": len(recs),
        "subjects": sorted({s for s, _, _ in recs}), "rows": int(len(data)), "segment_cuts": cuts,
        "rates_hz_min_median_max": [round(min(rates), 2), round(float(np.median(rates)), 2), round(max(rates), 2)]
        if rates else None,
        "pieces_shorter_than_window_dropped": short,
    }
    if removal is not None:
        report["gravity_removal"] = removal
    return make_windowset(
        signal, seg_start, seg_len, label, subj, window=window, step=step, class_names=SEECS_EMOTIONS,
        channels=spec.channels, rate_hz=float(np.median(rates)) if rates else SEECS_RATE_HZ,
        source=f"seecs:{input_kind}", report=report, input_spec=spec,
    )


def write_seecs_recording(path: str | Path, timestamp_ms: np.ndarray, acc: np.ndarray, gyro: np.ndarray) -> Path:
    """Write one recording in the SEECS layout (for tests and for converting your own data)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.column_stack([timestamp_ms, acc, gyro])
    np.savetxt(path, a, delimiter=",", header=SEECS_HEADER, comments="", fmt="%.9g")
    return path
