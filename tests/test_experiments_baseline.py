"""Classical baseline: gait features on signals whose answers are known, and the forest on them."""
import numpy as np
import pytest

from jazbat_jax.experiments import baseline

T = 128


def _feat(x, channel=0):
    names = baseline.PER_CHANNEL
    f = baseline.window_features(x).reshape(len(x), x.shape[2], len(names))
    return {n: f[:, channel, i] for i, n in enumerate(names)}


def test_sine_frequency_zero_crossings_and_period():
    t = np.arange(T)
    period = 16
    x = (3.0 + 2.0 * np.sin(2 * np.pi * t / period + 0.3))[None, :, None]  # offset 3: zero crossings use mean removal
    f = _feat(x)
    assert f["dominant_freq"][0] == pytest.approx(1 / period)
    assert f["dominant_power_share"][0] > 0.95  # a pure tone: all power in one bin
    assert f["autocorr_lag"][0] == period  # the first full period is the autocorrelation peak
    assert f["autocorr_peak"][0] > 0.8
    # two sign changes per period of the mean-removed signal
    assert f["zero_cross_rate"][0] * (T - 1) == pytest.approx(2 * T / period, abs=1)
    assert f["mean"][0] == pytest.approx(3.0, abs=1e-6)
    assert f["std"][0] == pytest.approx(2.0 / np.sqrt(2), rel=1e-3)
    assert f["max"][0] == pytest.approx(5.0, abs=0.05) and f["min"][0] == pytest.approx(1.0, abs=0.05)


def test_ramp_statistics_and_constant_signal():
    ramp = np.linspace(0.0, 1.0, T)
    x = np.stack([ramp, np.full(T, 2.5)], axis=-1)[None]  # two channels
    r, c = _feat(x, 0), _feat(x, 1)
    assert r["p50"][0] == pytest.approx(0.5)
    assert r["p10"][0] == pytest.approx(0.1) and r["p90"][0] == pytest.approx(0.9)
    assert r["energy"][0] == pytest.approx(np.mean(ramp ** 2))
    assert r["zero_cross_rate"][0] == pytest.approx(1 / (T - 1))  # crosses its own mean once
    # a constant channel: no spread, no crossings, no spectrum, no autocorrelation (and no NaN)
    assert c["std"][0] == 0 and c["zero_cross_rate"][0] == 0
    assert c["dominant_power_share"][0] == 0 and c["autocorr_peak"][0] == 0
    assert np.isfinite(baseline.window_features(x)).all()


def test_names_shape_and_errors():
    x = np.random.default_rng(0).normal(size=(5, 64, 3)).astype(np.float32)
    assert baseline.window_features(x).shape == (5, 3 * len(baseline.PER_CHANNEL))
    assert len(baseline.feature_names(["ax", "ay", "az"])) == 3 * len(baseline.PER_CHANNEL)
    assert baseline.feature_names(["a"])[0] == "a:mean"
    # chunking does not change the result
    assert np.array_equal(baseline.window_features(x, chunk=2), baseline.window_features(x))
    with pytest.raises(ValueError, match="N, T, F"):
        baseline.window_features(x[0])
    with pytest.raises(ValueError, match="too short"):
        baseline.window_features(x[:, :5])


def test_forest_separates_two_gait_frequencies():
    rng = np.random.default_rng(1)
    t = np.arange(T)

    def walks(period, n):
        phase = rng.uniform(0, 2 * np.pi, n)[:, None]
        return (np.sin(2 * np.pi * t / period + phase) + 0.3 * rng.normal(size=(n, T)))[..., None]

    x = np.concatenate([walks(10, 40), walks(20, 40)]).astype(np.float32)
    y = np.repeat([0, 1], 40)
    idx = rng.permutation(80)
    tr, te = idx[:60], idx[60:]
    pred, info = baseline.fit_predict(x[tr], y[tr], x[te], seed=0, n_estimators=50)
    assert (pred == y[te]).mean() == 1.0
    assert info["model"] == "RandomForestClassifier" and info["n_estimators"] == 50
