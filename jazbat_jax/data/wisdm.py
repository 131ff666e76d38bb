"""WISDM 2019 (UCI 507): raw UCI text layout or the packed NumPy archives -> WindowSet.

Pipeline: load one stream per (device, sensor) -> clean (non-finite values, the 1629 double
recording, the 1649 kicking/catch overlap) -> for 6D join accel and gyro of the same device on
timestamps -> cut contiguous segments (never across subject, activity or a clock gap) ->
optional gravity removal (a high-pass per segment, ``data.matching``) -> channels (1D magnitude /
3D / 6D) -> optional resampling -> windows. Every drop is counted in ``WindowSet.report``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .core import WindowSet
from .paths import data_root
from .inputs import INPUT_KINDS, InputSpec
from .matching import GRAVITY_REMOVAL, highpass_segments, segment_rates
from .windows import contiguous_segments, make_windowset, resample_segments

ACTIVITY_CODES = "ABCDEFGHIJKLMOPQRS"  # the dataset has no code N
ACTIVITY_NAMES = (
    "walking", "jogging", "stairs", "sitting", "standing", "typing", "brushing_teeth",
    "eating_soup", "eating_chips", "eating_pasta", "drinking", "eating_sandwich", "kicking",
    "catch", "dribbling", "writing", "clapping", "folding",
)
ACTIVITIES = dict(zip(ACTIVITY_CODES, ACTIVITY_NAMES))
DEVICES = ("phone", "watch")
SENSORS = ("accel", "gyro")
SUPPLEMENT = "wisdm2019_phone_accel_supplement_ABCM.npz"

Stream = dict  # keys: subject int16 (n,), activity uint8 (n,), timestamp int64 (n,), xyz float32 (n,3)


# ---------------------------------------------------------------- locating the data
def resolve_wisdm_root(root: str | Path | None) -> tuple[str, Path]:
    """('packed', folder with wisdm2019_*.npz) or ('raw', folder with phone/ and watch/)."""
    if root is None:
        root = data_root() / "wisdm2019"
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"WISDM folder not found: {root}")
    for cand in (root, root / "wisdm2019"):
        if any(cand.glob("wisdm2019_*_*.npz")):
            return "packed", cand
    for cand in (root, root / "raw", root / "wisdm-dataset" / "raw"):
        if any((cand / d / s).is_dir() for d in DEVICES for s in SENSORS):
            return "raw", cand
    raise FileNotFoundError(
        f"{root} holds neither packed archives (wisdm2019_<device>_<sensor>.npz) nor the raw UCI "
        "layout (wisdm-dataset/raw/{phone,watch}/{accel,gyro}/data_16NN_<sensor>_<device>.txt)"
    )


def _check_stream(st: Stream, where: str) -> Stream:
    bad = st["activity"] >= len(ACTIVITY_CODES)
    if bad.any():
        raise ValueError(f"{where}: unknown activity index {int(st['activity'][bad][0])} in {int(bad.sum())} rows")
    if st["xyz"].ndim != 2 or st["xyz"].shape[1] != 3:
        raise ValueError(f"{where}: xyz must have 3 channels, got shape {st['xyz'].shape}")
    return st


def _load_packed(
    folder: Path, device: str, sensor: str, use_supplement: bool, supplement_incomplete: str = "keep"
) -> tuple[Stream, dict]:
    path = folder / f"wisdm2019_{device}_{sensor}.npz"
    if not path.exists():
        raise FileNotFoundError(f"missing channel: {path} (needed for {device} {sensor})")
    with np.load(path) as z:
        codes = "".join(z["activity_codes"].tolist())
        if codes != ACTIVITY_CODES:
            raise ValueError(f"{path}: activity_codes {codes!r} differ from {ACTIVITY_CODES!r}")
        st = {k: z[k] for k in ("subject", "activity", "timestamp", "xyz")}
    rep: dict[str, Any] = {"file": str(path), "rows_read": int(len(st["subject"]))}
    sup = folder / SUPPLEMENT
    if device == "phone" and sensor == "accel" and use_supplement and sup.exists():
        with np.load(sup) as z:
            s = {k: z[k] for k in ("subject", "activity", "timestamp", "xyz", "block_complete")}
        new = ~np.isin(s["subject"], np.unique(st["subject"]))  # raw file wins where both exist
        inc = new & ~s["block_complete"]
        if supplement_incomplete == "drop":
            new &= s["block_complete"]
        rep["supplement"] = {
            "file": str(sup),
            "subjects_added": sorted(np.unique(s["subject"][new]).tolist()),
            "rows_added": int(new.sum()),
            f"rows_in_incomplete_blocks_{'dropped' if supplement_incomplete == 'drop' else 'kept'}": int(inc.sum()),
            "incomplete_blocks": sorted(
                f"{int(a)}{ACTIVITY_CODES[int(b)]}" for a, b in set(zip(s["subject"][inc], s["activity"][inc]))
            ),
            "note": "supplement holds only activities A,B,C,M; the last block of each subject may be cut "
            "short (block_complete=False): its rows are real, so they are kept unless "
            "supplement_incomplete='drop'",
        }
        st = {k: np.concatenate([st[k], s[k][new]]) for k in st}
    return _check_stream(st, str(path)), rep


def load_stream(
    root: str | Path | None, device: str, sensor: str, *, use_supplement: bool = True,
    supplement_incomplete: str = "keep", on_bad_line: str = "raise",
) -> tuple[Stream, dict]:
    """One raw stream (device, sensor) in file order, from either layout."""
    if device not in DEVICES or sensor not in SENSORS:
        raise ValueError(f"device must be one of {DEVICES} and sensor one of {SENSORS}")
    if supplement_incomplete not in ("keep", "drop"):
        raise ValueError(f"supplement_incomplete must be 'keep' or 'drop', got {supplement_incomplete!r}")
    kind, folder = resolve_wisdm_root(root)
    if kind == "packed":
        return _load_packed(folder, device, sensor, use_supplement, supplement_incomplete)
    from .raw import read_wisdm_raw_stream

    st, rep = read_wisdm_raw_stream(folder, device, sensor, on_bad_line=on_bad_line)
    return _check_stream(st, str(folder)), rep


# ---------------------------------------------------------------- cleaning
def _take(st: Stream, keep: np.ndarray) -> Stream:
    return {k: v[keep] for k, v in st.items()}


def _by_subject(subject: np.ndarray, mask: np.ndarray) -> dict[str, int]:
    u, c = np.unique(subject[mask], return_counts=True)
    return {str(int(a)): int(b) for a, b in zip(u, c)}


def clean_stream(st: Stream) -> tuple[Stream, dict]:
    """Drop non-finite rows and repeated timestamps; return the cleaned stream and what was dropped.

    * Exact repeats of (subject, activity, timestamp) keep the first row: subject 1629's files
      hold the whole session twice with identical timestamps and values.
    * A (subject, timestamp) present in two activity blocks cannot carry both labels: it is kept
      in the shorter block. Watch 1649 has 1,160 rows of the catch (O) block copied into its
      351-s kicking (M) block; they stay in O, where they start the block.
    """
    rep: dict[str, Any] = {}
    finite = np.isfinite(st["xyz"]).all(axis=1)
    if not finite.all():
        rep["non_finite_rows_dropped"] = _by_subject(st["subject"], ~finite)
        st = _take(st, finite)
    s, a, t = st["subject"], st["activity"], st["timestamp"]
    n = len(s)
    order = np.lexsort((np.arange(n), t, a, s))  # stable: first occurrence first
    rep_ = np.zeros(n, bool)
    same = (s[order][1:] == s[order][:-1]) & (a[order][1:] == a[order][:-1]) & (t[order][1:] == t[order][:-1])
    rep_[order[1:][same]] = True
    if rep_.any():
        prev = order[:-1][same]
        differ = int((st["xyz"][order[1:][same]] != st["xyz"][prev]).any(axis=1).sum())
        rep["repeated_rows_dropped"] = _by_subject(s, rep_)
        rep["repeated_rows_with_different_values"] = differ
        st = _take(st, ~rep_)
        s, a, t = st["subject"], st["activity"], st["timestamp"]
        n = len(s)
    # same subject and timestamp under two activities
    order = np.lexsort((a, t, s))
    dup = (s[order][1:] == s[order][:-1]) & (t[order][1:] == t[order][:-1])
    if dup.any():
        key = s.astype(np.int64) * 64 + a
        uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        size = cnt[inv]
        i, j = order[:-1][dup], order[1:][dup]
        loser = np.where(size[i] > size[j], i, np.where(size[j] > size[i], j, np.maximum(i, j)))
        drop = np.zeros(n, bool)
        drop[loser] = True
        blocks: dict[str, int] = {}
        for ss, aa in zip(s[drop], a[drop]):
            k = f"{int(ss)}{ACTIVITY_CODES[int(aa)]}"
            blocks[k] = blocks.get(k, 0) + 1
        rep["cross_activity_duplicate_rows_dropped"] = blocks
        st = _take(st, ~drop)
    return st, rep


# ---------------------------------------------------------------- 6D join
def _key_groups(st: Stream) -> dict[tuple[int, int], np.ndarray]:
    """Row indices of every (subject, activity), in timestamp order (a key may span several runs
    of rows, e.g. a session recorded twice with another clock base)."""
    s, a, t = st["subject"], st["activity"], st["timestamp"]
    order = np.lexsort((t, a, s))
    ks, ka = s[order], a[order]
    change = np.ones(len(order), bool)
    change[1:] = (ks[1:] != ks[:-1]) | (ka[1:] != ka[:-1])
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(order))
    return {(int(ks[b]), int(ka[b])): order[b:e] for b, e in zip(starts, ends)}


def join_accel_gyro(acc: Stream, gyr: Stream, tolerance: float = 0.5) -> tuple[Stream, dict]:
    """Nearest-timestamp join of gyro onto accel within each (subject, activity).

    An accel row is kept when a gyro row lies within ``tolerance`` x the median accel sampling
    period of that subject and activity (accel and gyro share >= 94 % of timestamps exactly);
    other accel rows, and gyro rows nobody matched, are dropped and counted. Removed rows can
    open clock gaps, which segmentation then respects. Rows keep the accel file order.
    """
    gk = _key_groups(gyr)
    ak = _key_groups(acc)
    keep_idx, gyro_idx = [], []
    no_block: dict[str, int] = {}
    unmatched_acc: dict[str, int] = {}
    unmatched_gyr = 0
    for (subj, act), ai in ak.items():
        ta = acc["timestamp"][ai]
        if (subj, act) not in gk:
            no_block[f"{subj}{ACTIVITY_CODES[act]}"] = len(ai)
            continue
        gi_ = gk[(subj, act)]
        tgs = gyr["timestamp"][gi_]
        pos = np.clip(np.searchsorted(tgs, ta), 1, len(tgs) - 1) if len(tgs) > 1 else np.zeros(len(ta), np.int64)
        left = np.maximum(pos - 1, 0)
        near = np.where(np.abs(tgs[left] - ta) <= np.abs(tgs[pos] - ta), left, pos)
        d = np.diff(ta)
        tol = tolerance * (np.median(d[d > 0]) if (d > 0).any() else 0)
        ok = np.abs(tgs[near] - ta) <= tol
        if not ok.all():
            unmatched_acc[str(subj)] = unmatched_acc.get(str(subj), 0) + int((~ok).sum())
        unmatched_gyr += len(gi_) - len(np.unique(near[ok]))
        keep_idx.append(ai[ok])
        gyro_idx.append(gi_[near[ok]])
    ki = np.concatenate(keep_idx) if keep_idx else np.zeros(0, np.int64)
    gi = np.concatenate(gyro_idx) if gyro_idx else np.zeros(0, np.int64)
    o = np.argsort(ki, kind="stable")
    ki, gi = ki[o], gi[o]
    out = _take(acc, ki)
    out["xyz"] = np.concatenate([acc["xyz"][ki], gyr["xyz"][gi]], axis=1)
    rep = {
        "method": f"nearest timestamp within {tolerance} x median accel period, same subject and activity",
        "accel_rows_matched": int(len(ki)),
        "accel_rows_without_gyro_match_dropped": sum(unmatched_acc.values()),
        "accel_rows_without_gyro_match_by_subject": unmatched_acc,
        "gyro_rows_unmatched_dropped": int(unmatched_gyr),
        "accel_blocks_without_gyro_block_dropped": no_block,
        "gyro_blocks_without_accel_block_dropped": sorted(
            f"{s}{ACTIVITY_CODES[a]}" for (s, a) in gk if (s, a) not in ak
        ),
    }
    return out, rep


# ---------------------------------------------------------------- rates
def block_rates(st: Stream) -> dict[str, Any]:
    """Median sampling rate per (subject, activity) block and a histogram of rounded rates."""
    per_block: dict[str, float] = {}
    groups = _key_groups(st)
    for (s, a), idx in groups.items():
        d = np.diff(st["timestamp"][idx])
        d = d[d > 0]
        if d.size:
            per_block[f"{s}{ACTIVITY_CODES[a]}"] = round(1e9 / float(np.median(d)), 2)
    mixed = []
    for (s, a), idx in groups.items():
        d = np.diff(st["timestamp"][idx])
        d = d[d > 0]
        if d.size > 20:
            p5, p95 = np.percentile(d, [5, 95])
            if p95 > 2 * p5:  # e.g. watch blocks switching from 20 Hz to 100 Hz midway
                mixed.append(f"{s}{ACTIVITY_CODES[a]}")
    hist: dict[str, int] = {}
    for r in per_block.values():
        k = str(int(round(r / 5.0) * 5))  # 19.86 Hz and 20.03 Hz both count as "20"
        hist[k] = hist.get(k, 0) + 1
    subj: dict[str, list[float]] = {}
    for k, r in per_block.items():
        subj.setdefault(k[:-1], []).append(r)
    return {
        "median_hz": round(float(np.median(list(per_block.values()))), 3) if per_block else None,
        "blocks_by_rounded_hz": dict(sorted(hist.items(), key=lambda kv: int(kv[0]))),
        "blocks_with_mixed_rates": mixed,
        "per_subject_median_hz": {k: round(float(np.median(v)), 2) for k, v in sorted(subj.items())},
        "per_block_hz": per_block,
    }


# ---------------------------------------------------------------- loader
def _filter(st: Stream, activities: Iterable[str] | None, subjects: Iterable[int] | None) -> Stream:
    keep = np.ones(len(st["subject"]), bool)
    if activities is not None:
        idx = [ACTIVITY_CODES.index(c) for c in activities]
        keep &= np.isin(st["activity"], idx)
    if subjects is not None:
        keep &= np.isin(st["subject"], np.asarray(list(subjects)))
    return _take(st, keep)


def load_wisdm(
    root: str | Path | None = None,
    device: str = "watch",
    input_kind: str = "1d",
    mag_mode: str = "norm_minus_g",
    window: int = 256,
    step: int = 32,
    activities: Iterable[str] | None = None,
    subjects: Iterable[int] | None = None,
    resample_hz: float | None = None,
    use_supplement: bool = True,
    on_bad_line: str = "raise",
    gap_factor: float = 3.0,
    supplement_incomplete: str = "keep",
    remove_gravity: bool = False,
) -> WindowSet:
    """Windows of one WISDM device (phone or watch; their clocks cannot be aligned).

    root: raw UCI folder (``wisdm-dataset``, its ``raw`` or a parent), a folder with the packed
    archives, or None for ../shared/data/wisdm2019 when present, else the bundled sample.
    input_kind: '1d' accel magnitude (``mag_mode``), '3d' accel xyz (m/s^2, with gravity),
    '6d' accel xyz + gyro xyz (rad/s). activities: subset of codes, e.g. "ABC"; class indices
    follow the order given. resample_hz: linear interpolation on timestamps inside each segment
    (the paper does not resample). A segment ends at a subject/activity change or when the
    clock repeats, steps back or skips more than ``gap_factor`` typical periods.
    use_supplement / supplement_incomplete: packed layout only; add the phone-accel supplement
    (A,B,C,M) for subjects without a raw phone-accel file, keeping or dropping its cut-short
    blocks (``block_complete=False``). on_bad_line: raw layout only, 'raise' or 'skip'.
    remove_gravity: high-pass ax, ay, az in each contiguous segment (``data.matching``) so that the
    input is linear acceleration like Quiroz's; the gyro is left as it is, and the 1D input is then
    |a_lin| (mag_mode 'paper_literal', which needs gravity in the signal, is refused).
    """
    if device not in DEVICES:
        raise ValueError(f"device must be 'phone' or 'watch' (never mixed), got {device!r}")
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    if remove_gravity and input_kind == "1d" and mag_mode == "paper_literal":
        raise ValueError("mag_mode='paper_literal' needs gravity in the signal; with remove_gravity the 1D input "
                         "is |a_lin| (mag_mode 'norm')")
    codes = ACTIVITY_CODES if activities is None else "".join(activities)
    unknown = [c for c in codes if c not in ACTIVITY_CODES]
    if unknown or len(set(codes)) != len(codes) or not codes:
        raise ValueError(f"activities must be distinct codes from {ACTIVITY_CODES} (no N), got {codes!r}")
    kind, folder = resolve_wisdm_root(root)
    report: dict[str, Any] = {"dataset": "wisdm2019", "layout": kind, "root": str(folder), "device": device,
                              "input_kind": input_kind, "mag_mode": mag_mode if input_kind == "1d" else None}
    acc, r = load_stream(folder, device, "accel", use_supplement=use_supplement,
                         supplement_incomplete=supplement_incomplete, on_bad_line=on_bad_line)
    report["accel"] = r
    # clean before selecting activities: the 1649 M/O overlap is only visible with both blocks
    acc, report["accel_cleaning"] = clean_stream(_filter(acc, None, subjects))
    acc = _filter(acc, codes, None)
    if input_kind == "6d":
        gyr, r = load_stream(folder, device, "gyro", on_bad_line=on_bad_line)
        report["gyro"] = r
        gyr, report["gyro_cleaning"] = clean_stream(_filter(gyr, None, subjects))
        gyr = _filter(gyr, codes, None)
        acc, report["join"] = join_accel_gyro(acc, gyr)
    if len(acc["subject"]) == 0:
        raise ValueError(f"no {device} rows left for activities {codes!r} and subjects {subjects}")
    rates = block_rates(acc)
    report["rates"] = {k: v for k, v in rates.items() if k != "per_block_hz"}
    report["rows"] = int(len(acc["subject"]))
    report["subjects"] = sorted(np.unique(acc["subject"]).tolist())
    present = set(_key_groups(acc))
    missing = {str(s): "".join(c for c in codes if (s, ACTIVITY_CODES.index(c)) not in present) for s in report["subjects"]}
    report["missing_activities_by_subject"] = {k: v for k, v in missing.items() if v}

    seg_start, seg_len, cuts = contiguous_segments([acc["subject"], acc["activity"]], acc["timestamp"], gap_factor)
    report["segment_cuts"] = cuts
    raw = acc["xyz"]
    if remove_gravity:
        # Before resampling and windowing, each segment at its own clock rate (blocks run at 20, 25, 50 or 100 Hz).
        seg_hz = segment_rates(acc["timestamp"], seg_start, seg_len, rates["median_hz"])
        raw = raw.copy()
        raw[:, :3], report["gravity_removal"] = highpass_segments(raw[:, :3], seg_start, seg_len, seg_hz)
        report["mag_mode"] = "norm of high-passed acceleration (gravity removed)" if input_kind == "1d" else None
    spec = InputSpec(input_kind, gravity="removed" if remove_gravity else "included",
                     magnitude=("norm" if remove_gravity else mag_mode) if input_kind == "1d" else None,
                     gyro_units="rad/s" if input_kind == "6d" else None,
                     rate_hz=float(resample_hz) if resample_hz else rates["median_hz"],
                     gravity_removal=GRAVITY_REMOVAL if remove_gravity else None)
    signal = spec.from_raw(raw)
    # labels: position of the activity code in ``codes``
    lut = np.full(len(ACTIVITY_CODES), -1, np.int32)
    for i, c in enumerate(codes):
        lut[ACTIVITY_CODES.index(c)] = i
    seg_act, seg_subject = acc["activity"][seg_start], acc["subject"][seg_start]
    if resample_hz is not None:
        # Resampling |a| rather than xyz then |a|: at 20-50 Hz the difference is far below sensor
        # noise, and one code path serves all input kinds. Segments keep their order and count.
        signal, _, seg_start, seg_len = resample_segments(signal, acc["timestamp"], seg_start, seg_len, resample_hz)
        report["resampled_to_hz"] = resample_hz
    short: dict[str, int] = {}  # pieces cut off by clock gaps, or whole blocks, shorter than a window
    for s_, a_, n_ in zip(seg_subject[seg_len < window], seg_act[seg_len < window], seg_len[seg_len < window]):
        k = f"{int(s_)}{ACTIVITY_CODES[int(a_)]}"
        short[k] = short.get(k, 0) + int(n_)
    report["short_segment_rows_dropped_by_block"] = short
    ws = make_windowset(
        signal, seg_start, seg_len, lut[seg_act], seg_subject,
        window=window, step=step, class_names=[ACTIVITIES[c] for c in codes], channels=spec.channels,
        rate_hz=float(resample_hz) if resample_hz else rates["median_hz"],
        source=f"wisdm2019:{kind}:{device}:{input_kind}", report=report, input_spec=spec,
    )
    ws.report["class_codes"] = list(codes)
    return ws

