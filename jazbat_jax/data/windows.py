"""Segmentation into contiguous recordings, resampling, channel sets and windowing.

Every loader produces a flat, row-ordered signal plus keys (subject, class, recording) and
optionally timestamps. ``contiguous_segments`` cuts it wherever a key changes or the clock
jumps; ``window_starts`` places windows strictly inside each segment; ``cut_windows`` turns
them into an (N, T, F) array, using a strided view of the signal when the starts allow it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .core import WindowSet

from .inputs import G, INPUT_KINDS, MAG_MODES, acc_magnitude  # noqa: F401  (re-exported)


def _block_starts(keys: Sequence[np.ndarray]) -> np.ndarray:
    """Row indices where any key differs from the previous row (row 0 included)."""
    n = len(keys[0])
    change = np.zeros(n, bool)
    if n:
        change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


def contiguous_segments(
    keys: Sequence[np.ndarray],
    timestamp: np.ndarray | None = None,
    gap_factor: float = 3.0,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Split row-ordered data into contiguous segments.

    A segment ends where any key changes (subject, class, recording, ...) or, with timestamps,
    where the clock steps backwards / repeats (dt <= 0) or jumps by more than ``gap_factor``
    times the block's typical step. The typical step is the 90th percentile of the block's
    positive steps, not the median: some WISDM watch blocks switch from 20 Hz to 100 Hz midway,
    and a median of 10 ms would turn every 50-ms step of the 20-Hz part into a "gap".
    Returns (segment start rows, segment lengths, counts of each kind of cut).
    """
    n = len(keys[0])
    starts = _block_starts(keys)
    cuts = {"key_changes": max(int(starts.size) - 1, 0), "clock_backwards_or_repeat": 0, "clock_gaps": 0}
    if timestamp is not None and n > 1:
        dt = np.diff(timestamp)
        brk = np.zeros(n, bool)
        bounds = np.append(starts, n)
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b - a < 2:
                continue
            d = dt[a : b - 1]
            pos = d[d > 0]
            med = np.percentile(pos, 90) if pos.size else 0
            back = d <= 0
            gap = d > gap_factor * med
            cuts["clock_backwards_or_repeat"] += int(back.sum())
            cuts["clock_gaps"] += int((gap & ~back).sum())
            brk[a + 1 : b] = back | gap
        brk[starts] = True
        starts = np.flatnonzero(brk)
    lengths = np.diff(np.append(starts, n)).astype(np.int64)
    return starts.astype(np.int64), lengths, cuts


def window_count(length: np.ndarray | int, window: int, step: int) -> np.ndarray:
    """floor((n - window) / step) + 1 windows per segment of n samples, 0 when n < window."""
    length = np.asarray(length, np.int64)
    return np.where(length >= window, (length - window) // step + 1, 0)


def window_starts(
    seg_start: np.ndarray, seg_len: np.ndarray, window: int, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Global start rows of all windows and the segment index of each (vectorised)."""
    if window < 1 or step < 1:
        raise ValueError(f"window and step must be >= 1, got window={window}, step={step}")
    counts = window_count(seg_len, window, step)
    seg_idx = np.repeat(np.arange(len(seg_start)), counts)
    # position of each window inside its segment: 0, 1, ... per segment
    first = np.cumsum(counts) - counts
    k = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)
    return np.asarray(seg_start, np.int64)[seg_idx] + k * step, seg_idx


def cut_windows(signal: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """(N, window, F) windows of a (n, F) signal.

    A read-only strided view when the starts form one arithmetic progression (e.g. a single
    segment); otherwise one gather from the strided view (a single contiguous copy).
    """
    signal = np.ascontiguousarray(signal, dtype=np.float32)
    if signal.shape[0] < window or len(starts) == 0:
        return np.zeros((0, window, signal.shape[1]), np.float32)
    view = np.moveaxis(sliding_window_view(signal, window, axis=0), -1, 1)  # (n-w+1, w, F)
    if len(starts) == 1:
        return view[starts[0] : starts[0] + 1]
    d = np.diff(starts)
    if d[0] > 0 and np.all(d == d[0]):
        return view[starts[0] : starts[-1] + 1 : d[0]]
    return view[starts]


def resample_segments(
    signal: np.ndarray,
    timestamp_ns: np.ndarray,
    seg_start: np.ndarray,
    seg_len: np.ndarray,
    rate_hz: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation of each segment onto a uniform grid at ``rate_hz``.

    Returns (new signal, new timestamps in ns, new segment starts, new segment lengths).
    Segments never merge: each is resampled on its own time span.
    """
    if rate_hz <= 0:
        raise ValueError(f"resample_hz must be > 0, got {rate_hz}")
    period = 1e9 / rate_hz
    outs, times, lens = [], [], []
    for a, n in zip(seg_start, seg_len):
        t = timestamp_ns[a : a + n].astype(np.float64)
        m = int(np.floor((t[-1] - t[0]) / period)) + 1 if n > 1 else 1
        grid = t[0] + np.arange(m) * period
        rel = grid - t[0]
        x = signal[a : a + n]
        outs.append(np.stack([np.interp(rel, t - t[0], x[:, j]) for j in range(x.shape[1])], 1).astype(np.float32))
        times.append(grid.astype(np.int64))
        lens.append(m)
    lens = np.asarray(lens, np.int64)
    starts = np.cumsum(lens) - lens
    f = signal.shape[1]
    sig = np.concatenate(outs) if outs else np.zeros((0, f), np.float32)
    ts = np.concatenate(times) if times else np.zeros(0, np.int64)
    return sig, ts, starts, lens


def make_windowset(
    signal: np.ndarray,
    seg_start: np.ndarray,
    seg_len: np.ndarray,
    seg_label: np.ndarray,
    seg_subject: np.ndarray,
    *,
    window: int,
    step: int,
    class_names: Sequence[str],
    channels: Sequence[str],
    rate_hz: float | None,
    source: str,
    report: dict[str, Any],
    input_spec: Any = None,
) -> WindowSet:
    """Window every segment and record, per class, how many segments were too short."""
    if signal.ndim != 2 or signal.shape[1] != len(channels):
        raise ValueError(f"signal must be (n, {len(channels)}), got {signal.shape}")
    starts, seg_idx = window_starts(seg_start, seg_len, window, step)
    short = seg_len < window
    report = dict(report)
    report["window"] = int(window)
    report["step"] = int(step)
    report["segments"] = int(len(seg_start))
    report["segments_shorter_than_window"] = int(short.sum())
    report["rows_in_short_segments_dropped"] = int(seg_len[short].sum())
    report["rows_not_covered_by_last_window"] = int(
        (seg_len - np.where(short, seg_len, (window_count(seg_len, window, step) - 1) * step + window)).sum()
    )
    y = np.asarray(seg_label, np.int32)[seg_idx]
    report["windows"] = int(len(starts))
    report["windows_per_class"] = {c: int((y == i).sum()) for i, c in enumerate(class_names)}
    return WindowSet(
        x=cut_windows(signal, starts, window),
        y=y,
        subject=np.asarray(seg_subject, np.int32)[seg_idx],
        recording=seg_idx.astype(np.int32),
        start=starts - np.asarray(seg_start, np.int64)[seg_idx],
        class_names=tuple(class_names),
        channels=tuple(channels),
        rate_hz=rate_hz,
        source=source,
        report=report,
        input_spec=input_spec,
    )
