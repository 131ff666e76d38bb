"""The classical baseline: hand-crafted gait features per window and a random forest.

The features are the standard time- and frequency-domain statistics of window-based gait and
emotion-from-walking work (Quiroz et al. 2018 used sliding-window statistics with random
forests / SVMs; Hashmi et al. 2020 used stride statistics with SVM / RF). Per channel:

    mean, std, min, max, 10/25/50/75/90th percentiles, energy (mean square),
    zero-crossing rate of the mean-removed signal, dominant frequency (cycles per sample,
    from the FFT of the mean-removed signal), its share of the spectral power,
    autocorrelation peak (height and lag, lags 4 .. T/2; the gait period shows up here).

Frequencies are in cycles per sample because Quiroz has no timestamps (≈ 25 Hz); multiply by
the sampling rate for Hz. The forest sees the raw (un-standardised) windows: trees do not care
about scale.
"""
from __future__ import annotations

import numpy as np

PER_CHANNEL = (
    "mean", "std", "min", "max", "p10", "p25", "p50", "p75", "p90", "energy",
    "zero_cross_rate", "dominant_freq", "dominant_power_share", "autocorr_peak", "autocorr_lag",
)
MIN_LAG = 4  # shorter lags are just the smoothness of the signal, not a gait period


def feature_names(channels: tuple[str, ...] | list[str]) -> list[str]:
    return [f"{c}:{f}" for c in channels for f in PER_CHANNEL]


def window_features(x: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(N, T, F) windows → (N, F × 15) features, in ``feature_names`` order. Chunked to bound memory."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"windows must be (N, T, F), got shape {x.shape}")
    n, t, f = x.shape
    if t < 2 * MIN_LAG + 2:
        raise ValueError(f"windows of {t} samples are too short for the autocorrelation features (need >= {2 * MIN_LAG + 2})")
    out = np.empty((n, f, len(PER_CHANNEL)), np.float32)
    for a in range(0, n, chunk):
        out[a:a + chunk] = _features(np.asarray(x[a:a + chunk], np.float64))
    return out.reshape(n, f * len(PER_CHANNEL))


def _features(x: np.ndarray) -> np.ndarray:
    n, t, f = x.shape
    mean = x.mean(axis=1)
    centred = x - mean[:, None, :]
    std = centred.std(axis=1)
    pct = np.percentile(x, [10, 25, 50, 75, 90], axis=1)  # (5, n, f)
    energy = (x ** 2).mean(axis=1)
    sign = np.signbit(centred)
    zcr = (sign[:, 1:] != sign[:, :-1]).sum(axis=1) / (t - 1)
    power = np.abs(np.fft.rfft(centred, axis=1)) ** 2  # (n, t//2+1, f)
    power[:, 0] = 0.0  # the mean is removed; ignore DC anyway
    k = power.argmax(axis=1)
    dom_freq = k / t
    total = power.sum(axis=1)
    dom_share = np.where(total > 0, power.max(axis=1) / np.where(total > 0, total, 1.0), 0.0)
    # Autocorrelation via the power spectrum of the zero-padded signal (Wiener–Khinchin).
    spec = np.fft.rfft(centred, n=2 * t, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, n=2 * t, axis=1)[:, : t // 2 + 1]
    ac0 = ac[:, :1]
    ac = np.where(ac0 > 0, ac / np.where(ac0 > 0, ac0, 1.0), 0.0)
    lags = ac[:, MIN_LAG:]
    lag = lags.argmax(axis=1) + MIN_LAG
    peak = lags.max(axis=1)
    cols = [mean, std, x.min(axis=1), x.max(axis=1), *pct, energy, zcr, dom_freq, dom_share, peak, lag]
    return np.stack(cols, axis=-1)  # (n, f, 15)


def fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int = 0,
                n_estimators: int = 200, max_depth: int | None = None, n_jobs: int = 2) -> tuple[np.ndarray, dict]:
    """Random forest on window features: test predictions and the fitted settings."""
    from sklearn.ensemble import RandomForestClassifier

    clf = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=seed, n_jobs=n_jobs)
    clf.fit(window_features(train_x), train_y)
    pred = clf.predict(window_features(test_x))
    return pred.astype(np.int64), {"model": "RandomForestClassifier", "n_estimators": n_estimators,
                                   "max_depth": max_depth, "random_state": seed,
                                   "features_per_channel": list(PER_CHANNEL)}
