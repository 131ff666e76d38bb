"""Make the source's input match the target's: gravity removal and resampling, per recording.

WISDM 2019 gives raw accelerometer readings (gravity included, ~20 Hz); Quiroz 2018 gives the
watch's linear acceleration (gravity removed, ~25 Hz). Two steps bring them together:

* ``highpass_segments``: a zero-phase Butterworth high-pass (order ``HIGHPASS_ORDER`` at
  ``HIGHPASS_CUTOFF_HZ``, ``scipy.signal.sosfiltfilt``) on each acceleration axis. Gravity is
  the low-frequency part of the accelerometer signal; the 0.3 Hz corner is the one used to
  split gravity from body acceleration in the UCI HAR dataset (Anguita et al., ESANN 2013).
  The order is not given there; 4 (8 after the forward-backward pass) keeps a 1 Hz arm swing
  at >99.99 % of its amplitude and still gives exactly zero for a constant offset.
* ``resample_poly_segments``: ``scipy.signal.resample_poly`` (polyphase FIR with its own
  anti-aliasing filter) from a nominal rate to another, e.g. Quiroz 25 Hz -> WISDM 20 Hz.

Both work on each contiguous recording on its own, before windowing, so that no recording's
samples leak into another's and windows see the filtered signal, not filter edges at every
window boundary.

A high-pass removes only the slow part of gravity. When the wrist turns, gravity's projection on
the axes changes at the rate of the movement, and a filter cannot tell that from body
acceleration; the watch's linear-acceleration sensor uses the gyroscope to follow it. The match
is therefore close in level and spectrum, not exact.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

# scipy.signal is imported inside the functions that filter: importing it costs about half a second
# of CPU, and this module is reached while `jazbat --help` builds its parser.

HIGHPASS_ORDER = 4
HIGHPASS_CUTOFF_HZ = 0.3
GRAVITY_REMOVAL = (f"zero-phase Butterworth high-pass, order {HIGHPASS_ORDER} at {HIGHPASS_CUTOFF_HZ:g} Hz "
                   "(scipy.signal.sosfiltfilt), per contiguous recording, on ax, ay, az")


def highpass_sos(rate_hz: float, cutoff_hz: float = HIGHPASS_CUTOFF_HZ, order: int = HIGHPASS_ORDER) -> np.ndarray:
    """Second-order sections of the Butterworth high-pass for data sampled at ``rate_hz``."""
    if not 0 < cutoff_hz < rate_hz / 2:
        raise ValueError(f"a {cutoff_hz} Hz high-pass needs a sampling rate above {2 * cutoff_hz} Hz, got {rate_hz}")
    from scipy import signal as sps

    return sps.butter(order, cutoff_hz, btype="highpass", fs=rate_hz, output="sos")


def _default_padlen(sos: np.ndarray) -> int:
    # sosfiltfilt's own default padding (its documentation gives this formula); shorter inputs raise there.
    return 3 * (2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum())))


def highpass_segments(
    x: np.ndarray,
    seg_start: np.ndarray,
    seg_len: np.ndarray,
    rate_hz: float | np.ndarray,
    cutoff_hz: float = HIGHPASS_CUTOFF_HZ,
    order: int = HIGHPASS_ORDER,
) -> tuple[np.ndarray, dict[str, Any]]:
    """High-pass every column of ``x`` (n, k) inside each segment; returns (float32 copy, report).

    ``rate_hz`` is one rate for all segments or one per segment (WISDM blocks run at 20, 25, 50 or
    100 Hz). A segment too short for the filter's edge padding (a fraction of a second, never a
    window) has its mean subtracted instead, and is counted in the report.
    """
    from scipy import signal as sps

    x = np.asarray(x)
    covered = int(np.sum(seg_len))
    if covered != len(x):
        raise ValueError(f"segments cover {covered} of {len(x)} rows: give the segmentation of the whole signal")
    out = np.empty(x.shape, np.float32)
    rates = np.broadcast_to(np.asarray(rate_hz, np.float64), np.shape(seg_start))
    designs: dict[float, np.ndarray] = {}
    mean_only = 0
    for a, n, r in zip(seg_start, seg_len, rates):
        piece = x[a : a + n].astype(np.float64)
        key = round(float(r), 1)  # 20.03 and 19.98 Hz share a design: the corner moves by < 0.3 %
        sos = designs.get(key)
        if sos is None:
            sos = designs[key] = highpass_sos(key, cutoff_hz, order)
        if n > _default_padlen(sos):
            out[a : a + n] = sps.sosfiltfilt(sos, piece, axis=0)
        else:
            out[a : a + n] = piece - piece.mean(axis=0)
            mean_only += 1
    report = {"method": "zero-phase Butterworth high-pass (scipy.signal.sosfiltfilt), per contiguous recording",
              "order": order, "cutoff_hz": cutoff_hz, "segments": int(len(seg_start)),
              "design_rates_hz": sorted(designs), "segments_too_short_mean_subtracted": mean_only}
    return out, report


def segment_rates(timestamp_ns: np.ndarray, seg_start: np.ndarray, seg_len: np.ndarray,
                  fallback_hz: float) -> np.ndarray:
    """Each segment's rate from its median positive clock step (``fallback_hz`` for a 1-row segment)."""
    out = np.full(len(seg_start), float(fallback_hz))
    for i, (a, n) in enumerate(zip(seg_start, seg_len)):
        d = np.diff(timestamp_ns[a : a + n])
        d = d[d > 0]
        if d.size:
            out[i] = 1e9 / float(np.median(d))
    return out


def resample_ratio(from_hz: float, to_hz: float) -> tuple[int, int]:
    """(up, down) integers with to_hz / from_hz = up / down, e.g. 25 -> 20 Hz gives (4, 5)."""
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"sampling rates must be > 0, got {from_hz} -> {to_hz}")
    ratio = (Fraction(to_hz).limit_denominator(1000) / Fraction(from_hz).limit_denominator(1000)).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def resample_poly_segments(
    x: np.ndarray, seg_start: np.ndarray, seg_len: np.ndarray, from_hz: float, to_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample each segment of ``x`` (n, k) from ``from_hz`` to ``to_hz`` with ``resample_poly``.

    A segment of n rows becomes ceil(n * up / down) rows. The signal is padded with a line fitted
    to its ends (``padtype='line'``), not with zeros, so that a segment with a non-zero mean does
    not sag at its edges. Returns (float32 signal, new segment starts, new segment lengths).
    """
    from scipy import signal as sps

    up, down = resample_ratio(from_hz, to_hz)
    x = np.asarray(x, np.float64)
    pieces = [sps.resample_poly(x[a : a + n], up, down, axis=0, padtype="line") for a, n in zip(seg_start, seg_len)]
    lens = np.array([len(p) for p in pieces], np.int64)
    starts = np.cumsum(lens) - lens
    out = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros((0, x.shape[1]), np.float32)
    return out, starts, lens
