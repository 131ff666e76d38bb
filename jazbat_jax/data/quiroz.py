"""Quiroz et al. 2018: smartwatch walking after happy / neutral / sad emotion induction.

The packed archive ``quiroz2018_walking.npz`` holds 44 participants x 3 walks (one per
emotion). Each walk is one recording; windows never cross a walk. The export has no
timestamps: rows are treated as a ~25 Hz sequence (median 40 ms in the raw files), so there is
no gap detection. ``resample_hz`` resamples each walk from the nominal 25 Hz with
``scipy.signal.resample_poly`` (e.g. to WISDM's 20 Hz, so that a 256-sample window spans the
same 12.8 s as in pretraining); off by default, as in the paper.

Acceleration is the watch's *linear* acceleration (gravity already removed), so the 1D input is
|a_lin|, which is what the WISDM mode ``norm_minus_g`` approximates for accelerometers that
include gravity. ``norm_minus_g`` and ``norm`` therefore both give |a_lin| here; after z-scoring
they would be identical anyway. ``paper_literal`` (sqrt(|a|^2 - g), clamped) is refused: for
gravity-free data it is 0 for every |a_lin| < 3.13 m/s^2, i.e. almost all of walking.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .core import WindowSet
from .paths import data_root
from .inputs import INPUT_KINDS, MAG_MODES, InputSpec
from .matching import resample_poly_segments, resample_ratio
from .windows import contiguous_segments, make_windowset

ARCHIVE = "quiroz2018_walking.npz"
EMOTIONS = ("happy", "neutral", "sad")
_EMOTION_CODE = {"happy": 1, "neutral": 0, "sad": -1}  # the archive's ``emotion`` values
CONDITIONS = ("movie", "music", "music_walking")
NOMINAL_RATE_HZ = 25.0


def resolve_quiroz_path(root: str | Path | None) -> Path:
    if root is None:
        root = data_root() / "quiroz2018_emotion_walking"
    root = Path(root)
    for cand in (root, root / ARCHIVE, root / "quiroz2018_emotion_walking" / ARCHIVE):
        if cand.is_file() and cand.name == ARCHIVE:
            return cand
    raise FileNotFoundError(f"no {ARCHIVE} in {root}")


def read_quiroz(root: str | Path | None = None) -> dict[str, np.ndarray]:
    path = resolve_quiroz_path(root)
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    need = ("participant", "emotion", "segment", "lin_acc", "rot")
    missing = [k for k in need if k not in d]
    if missing:
        raise ValueError(f"{path}: missing channel/key(s) {missing}")
    d["_path"] = np.asarray(str(path))
    return d


def load_quiroz(
    root: str | Path | None = None,
    input_kind: str = "1d",
    window: int = 256,
    step: int = 16,
    mag_mode: str = "norm_minus_g",
    emotions: Iterable[str] | None = None,
    participants: Iterable[int] | None = None,
    resample_hz: float | None = None,
) -> WindowSet:
    """Windows of the Quiroz 2018 walks; classes ``EMOTIONS`` (or the subset given, in that order).

    input_kind: '1d' |linear acceleration| (see module doc for mag_mode), '3d' linear
    acceleration (m/s^2, no gravity), '6d' + rotation rate (probably deg/s; values reach ~2000).
    ``subject`` is the participant id (EW number). resample_hz: resample every walk (all six raw
    columns, before the magnitude) from ``NOMINAL_RATE_HZ`` to this rate (``data.matching``).
    """
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    if mag_mode not in MAG_MODES:
        raise ValueError(f"mag_mode must be one of {MAG_MODES}, got {mag_mode!r}")
    if input_kind == "1d" and mag_mode == "paper_literal":
        raise ValueError(
            "mag_mode='paper_literal' needs gravity in the signal; Quiroz 2018 holds linear "
            "acceleration (no gravity), where sqrt(|a|^2 - g) is 0 for almost every walking sample"
        )
    names = EMOTIONS if emotions is None else tuple(emotions)
    if not names or len(set(names)) != len(names) or any(e not in EMOTIONS for e in names):
        raise ValueError(f"emotions must be distinct names from {EMOTIONS}, got {names!r}")
    d = read_quiroz(root)
    path = str(d["_path"])
    n_all = len(d["participant"])
    finite = np.isfinite(d["lin_acc"]).all(1) & np.isfinite(d["rot"]).all(1)
    keep = finite & np.isin(d["emotion"], [_EMOTION_CODE[e] for e in names])
    if participants is not None:
        keep &= np.isin(d["participant"], np.asarray(list(participants)))
    report: dict[str, Any] = {
        "dataset": "quiroz2018_emotion_walking", "file": path, "input_kind": input_kind,
        "mag_mode": ("norm of linear acceleration (gravity-free)" if input_kind == "1d" else None),
        "rows_read": int(n_all), "non_finite_rows_dropped": int((~finite).sum()),
        "rate_hz": (f"~{NOMINAL_RATE_HZ} (no timestamps in the export; not resampled)" if resample_hz is None else
                    f"{resample_hz:g} (resampled from the nominal ~{NOMINAL_RATE_HZ:g} by scipy.signal.resample_poly)"),
    }
    p, e, sg = d["participant"][keep], d["emotion"][keep], d["segment"][keep]
    acc, rot = d["lin_acc"][keep], d["rot"][keep]
    if len(p) == 0:
        raise ValueError(f"no rows left for emotions {names} and participants {participants}")
    seg_start, seg_len, cuts = contiguous_segments([p, sg, e])
    if len(seg_start) != len(np.unique(np.stack([p, sg]), axis=1).T):
        raise ValueError(f"{path}: a walk (participant, segment) is split into several runs of rows")
    code_to_idx = {_EMOTION_CODE[n]: i for i, n in enumerate(names)}
    seg_label = np.array([code_to_idx[int(v)] for v in e[seg_start]], np.int32)
    seg_participant = p[seg_start]
    report["participants"] = sorted(np.unique(p).tolist())
    report["rows"] = int(len(p))
    report["walks"] = int(len(seg_start))
    if "condition" in d:
        cond = d["condition"][keep][seg_start]
        report["participants_per_condition"] = {
            CONDITIONS[c]: int(len(np.unique(seg_participant[cond == c]))) for c in range(len(CONDITIONS))
        }
    raw = np.concatenate([acc, rot], 1)
    if resample_hz is not None:
        # every raw column, walk by walk, before the magnitude: |a| of resampled xyz, not resampled |a|
        raw, seg_start, seg_len = resample_poly_segments(raw, seg_start, seg_len, NOMINAL_RATE_HZ, resample_hz)
        up, down = resample_ratio(NOMINAL_RATE_HZ, resample_hz)
        report["resampling"] = {"method": "scipy.signal.resample_poly per walk, padtype 'line'",
                                "from_hz": NOMINAL_RATE_HZ, "to_hz": float(resample_hz), "up": up, "down": down,
                                "rows_after": int(len(raw))}
    report["walk_rows_min_median_max"] = [int(seg_len.min()), int(np.median(seg_len)), int(seg_len.max())]
    rate = float(resample_hz) if resample_hz is not None else NOMINAL_RATE_HZ
    # Linear acceleration has no gravity to subtract: the 1D input is |a_lin| whatever mag_mode says.
    spec = InputSpec(input_kind, gravity="removed", magnitude="norm" if input_kind == "1d" else None,
                     gyro_units="deg/s (probably: values reach about 2000)" if input_kind == "6d" else None,
                     rate_hz=rate, resampled_from_hz=NOMINAL_RATE_HZ if resample_hz is not None else None)
    signal = spec.from_raw(raw)
    ws = make_windowset(
        signal, seg_start, seg_len, seg_label, seg_participant, window=window, step=step,
        class_names=names, channels=spec.channels, rate_hz=rate,
        source=f"quiroz2018:{input_kind}", report=report, input_spec=spec,
    )
    return ws
