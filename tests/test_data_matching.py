"""Matched inputs: gravity removal by a high-pass and resampling, per recording; their configuration and flags."""
import math

import numpy as np
import pytest

from jazbat_jax.data.config import SCHEMA, ConfigError, DataConfig, SplitConfig, load_windows
from jazbat_jax.data.inputs import G, InputSpec
from jazbat_jax.data.matching import (
    GRAVITY_REMOVAL, highpass_segments, highpass_sos, resample_poly_segments, resample_ratio,
)

FS = 20.0


def _amplitude(x, freq, fs):
    """Least-squares amplitude of the ``freq`` sinusoid in ``x``."""
    t = np.arange(len(x)) / fs
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], 1)
    return float(np.hypot(*np.linalg.lstsq(basis, x, rcond=None)[0]))


def test_highpass_removes_gravity_and_keeps_walking():
    t = np.arange(1200) / FS  # one minute at 20 Hz
    walk = 1.5 * np.sin(2 * np.pi * 2.0 * t + 0.3)  # a 2 Hz step rhythm
    x = np.stack([np.full_like(t, 9.81), walk + 9.81, walk - 3.0], 1)
    out, rep = highpass_segments(x, np.array([0]), np.array([len(t)]), FS)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out[:, 0], 0.0, atol=1e-5)  # a constant offset is gone everywhere
    for col in (1, 2):
        assert _amplitude(out[:, col], 2.0, FS) == pytest.approx(1.5, rel=0.01)
        np.testing.assert_allclose(out[100:-100, col], walk[100:-100], atol=0.01)  # zero phase: no lag
    assert (rep["order"], rep["cutoff_hz"], rep["design_rates_hz"]) == (4, 0.3, [20.0])
    with pytest.raises(ValueError, match="needs a sampling rate above 0.6 Hz"):
        highpass_sos(0.5)


def test_highpass_works_per_recording():
    t = np.arange(600) / FS
    a = np.full((400, 1), 9.81)  # a device lying still
    b = (-5.0 + 1.5 * np.sin(2 * np.pi * 2.0 * t))[:, None]  # another recording, another orientation
    both = np.concatenate([a, b])
    out, _ = highpass_segments(both, np.array([0, 400]), np.array([400, 600]), np.array([FS, 25.0]))
    alone_a, _ = highpass_segments(a, np.array([0]), np.array([400]), FS)
    alone_b, rep = highpass_segments(b, np.array([0]), np.array([600]), 25.0)
    np.testing.assert_array_equal(out[:400], alone_a)  # nothing of b reaches a, and the reverse
    np.testing.assert_array_equal(out[400:], alone_b)
    assert rep["design_rates_hz"] == [25.0]  # each recording with its own rate
    # filtered as one recording, the 14.8 m/s² step between them rings into both sides
    joined, _ = highpass_segments(both, np.array([0]), np.array([1000]), FS)
    assert np.abs(joined[380:400]).max() > 1.0
    # a piece too short for the filter's edge padding has its mean removed instead
    short, rep = highpass_segments(np.array([[9.0], [10.0], [11.0]]), np.array([0]), np.array([3]), FS)
    np.testing.assert_allclose(short[:, 0], [-1.0, 0.0, 1.0])
    assert rep["segments_too_short_mean_subtracted"] == 1
    with pytest.raises(ValueError, match="segments cover 3 of 4 rows"):
        highpass_segments(np.zeros((4, 1)), np.array([0]), np.array([3]), FS)


def test_resample_length_rate_and_recordings():
    assert resample_ratio(25.0, 20.0) == (4, 5) and resample_ratio(20.0, 50.0) == (5, 2)
    n1, n2 = 1000, 1001
    t1 = np.arange(n1) / 25.0
    x = np.concatenate([np.sin(2 * np.pi * 2.0 * t1), np.full(n2, 3.0)])[:, None]
    out, starts, lens = resample_poly_segments(x, np.array([0, n1]), np.array([n1, n2]), 25.0, 20.0)
    assert lens.tolist() == [800, math.ceil(n2 * 4 / 5)] and starts.tolist() == [0, 800] and len(out) == lens.sum()
    # the same 2 Hz wave, now 20 samples a second (away from the ends)
    expect = np.sin(2 * np.pi * 2.0 * np.arange(800) / 20.0)
    np.testing.assert_allclose(out[20:780, 0], expect[20:780], atol=2e-3)
    # the line padding keeps a constant constant up to the polyphase filter's DC ripple, ends included
    np.testing.assert_allclose(out[800:, 0], 3.0, atol=2e-3)
    alone, _, _ = resample_poly_segments(x[:n1], np.array([0]), np.array([n1]), 25.0, 20.0)
    np.testing.assert_array_equal(out[:800], alone)  # no sample of the next recording leaks in
    with pytest.raises(ValueError, match="rates must be > 0"):
        resample_ratio(25.0, 0.0)


def test_config_round_trip_and_defaults_not_stored():
    # The default dictionary, key for key, as configurations made before these fields stored it: job ids stay.
    assert DataConfig().to_dict() == {
        "schema": SCHEMA, "dataset": "wisdm", "root": None, "input_kind": "1d", "mag_mode": "norm_minus_g",
        "window": 256, "step": 32, "device": "watch", "activities": None, "subjects": None, "max_windows": None,
        "on_bad_line": "raise", "split": {"protocol": "subject", "test_fraction": 0.2, "val_fraction": 0.1,
                                          "seed": 0, "n_folds": None, "fold": None}}
    wisdm = DataConfig(root="bundled", gravity="removed", split=SplitConfig("subject", n_folds=3, fold=1))
    quiroz = DataConfig(dataset="quiroz", root="bundled", resample_hz=20)
    for c in (wisdm, quiroz):
        assert DataConfig.from_dict(c.to_dict()) == c
    assert wisdm.to_dict()["gravity"] == "removed" and "resample_hz" not in wisdm.to_dict()
    assert quiroz.to_dict()["resample_hz"] == 20.0 and "gravity" not in quiroz.to_dict()
    for bad, match in [(dict(dataset="quiroz", gravity="removed"), "already holds linear acceleration"),
                       (dict(resample_hz=20.0), "resample_hz is for the Quiroz walks"),
                       (dict(gravity="removed", mag_mode="paper_literal"), "needs gravity in the signal"),
                       (dict(gravity="high-passed"), "gravity must be one of"),
                       (dict(dataset="quiroz", resample_hz=-1), "resample_hz must be > 0")]:
        with pytest.raises(ConfigError, match=match):
            DataConfig(**bad)


def test_wisdm_sample_with_gravity_removed():
    as_recorded = load_windows(DataConfig(root="bundled", input_kind="6d"))
    linear = load_windows(DataConfig(root="bundled", input_kind="6d", gravity="removed"))
    spec = linear.input_spec
    assert (spec.gravity, spec.gravity_removal) == ("removed", GRAVITY_REMOVAL)
    assert linear.report["gravity_removal"]["segments"] == linear.report["segments"]
    np.testing.assert_array_equal(linear.x[..., 3:], as_recorded.x[..., 3:])  # the gyroscope is untouched
    acc, raw = linear.x[..., :3], as_recorded.x[..., :3]
    assert np.linalg.norm(raw, axis=-1).mean() > 9.0 and np.linalg.norm(acc, axis=-1).mean() < G / 2
    for r in np.unique(linear.recording):  # check_gravity agrees, recording by recording
        mine = linear.recording == r
        spec.check_gravity(acc[mine].reshape(-1, 3), f"recording {r}")
        with pytest.raises(ValueError, match="includes gravity"):
            spec.check_gravity(raw[mine].reshape(-1, 3), f"recording {r}")
    # 1D is |a_lin| of the same filtered axes, whatever mag_mode says for gravity-including data
    one = load_windows(DataConfig(root="bundled", input_kind="1d", gravity="removed"))
    three = load_windows(DataConfig(root="bundled", input_kind="3d", gravity="removed"))
    assert one.channels == ("acc_norm",) and one.input_spec.magnitude == "norm"
    np.testing.assert_allclose(one.x[..., 0], np.linalg.norm(three.x, axis=2), rtol=1e-5, atol=1e-5)


def test_quiroz_sample_resampled_to_wisdm_rate():
    native = load_windows(DataConfig(dataset="quiroz", root="bundled", window=64, step=64))
    ws = load_windows(DataConfig(dataset="quiroz", root="bundled", window=64, step=64, resample_hz=20.0))
    assert ws.rate_hz == 20.0 and (ws.input_spec.rate_hz, ws.input_spec.resampled_from_hz) == (20.0, 25.0)
    assert "at 20 Hz (resampled from 25 Hz)" in ws.input_spec.describe()
    assert (ws.report["resampling"]["up"], ws.report["resampling"]["down"]) == (4, 5)
    lo, med, hi = native.report["walk_rows_min_median_max"]
    assert ws.report["walk_rows_min_median_max"] == [math.ceil(n * 4 / 5) for n in (lo, med, hi)]
    assert ws.report["walks"] == native.report["walks"] and ws.class_names == native.class_names
    assert abs(float(ws.x.mean()) - float(native.x.mean())) < 0.1  # same |a_lin| level, fewer samples


def test_input_spec_metadata():
    old = InputSpec("1d", "removed", "norm", rate_hz=25.0)
    assert "gravity_removal" not in old.to_dict() and "resampled_from_hz" not in old.to_dict()
    new = InputSpec("3d", "removed", gravity_removal=GRAVITY_REMOVAL, rate_hz=20.0, resampled_from_hz=25.0)
    assert InputSpec.from_dict(new.to_dict()) == new and "high-pass" in new.describe()
    with pytest.raises(ValueError, match="only with gravity='removed'"):
        InputSpec("3d", "included", gravity_removal=GRAVITY_REMOVAL)
    # vigorous linear acceleration (|a_lin| averaging above g) is still gravity-free: its mean vector is ~0
    t = np.arange(2000) / FS
    jog = 14.0 * np.stack([np.sin(2 * np.pi * 2.7 * t), np.cos(2 * np.pi * 2.7 * t), np.sin(2 * np.pi * 1.3 * t)], 1)
    assert np.linalg.norm(jog, axis=1).mean() > G
    new.check_gravity(jog)
    with pytest.raises(ValueError, match=r"\|mean a\| is 9.81 m/s², so its acceleration includes gravity"):
        new.check_gravity(np.tile([0.0, 0.0, 9.81], (50, 1)))


def test_cli_flags_build_the_config():
    from jazbat_jax.cli import build_parser
    from jazbat_jax.train.cli import data_config_from_args

    args = build_parser().parse_args(["pretrain", "--sample", "--gravity", "removed"])
    assert data_config_from_args(args, "1d", 256).gravity == "removed"
    args = build_parser().parse_args(["finetune", "--no-pretrain", "--sample", "--resample-hz", "20"])
    assert data_config_from_args(args, "1d", 256).resample_hz == 20.0
    assert data_config_from_args(build_parser().parse_args(["pretrain"]), "1d", 256) == DataConfig()
    args = build_parser().parse_args(["finetune", "--no-pretrain", "--gravity", "removed"])
    with pytest.raises(ConfigError, match="already holds linear acceleration"):
        data_config_from_args(args, "1d", 256)
