"""Windowing: no window crosses a segment boundary; counts equal floor((n - T) / step) + 1."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jazbat_jax.data import acc_magnitude, contiguous_segments, cut_windows, window_count, window_starts
from jazbat_jax.data.windows import make_windowset, resample_segments


@settings(max_examples=150, deadline=None)
@given(
    lens=st.lists(st.integers(0, 400), min_size=1, max_size=12),
    window=st.integers(1, 64),
    step=st.integers(1, 40),
)
def test_windows_stay_inside_segments_and_count(lens, window, step):
    lens = np.array(lens, np.int64)
    seg_start = np.cumsum(lens) - lens
    starts, seg = window_starts(seg_start, lens, window, step)
    for i, n in enumerate(lens):
        mine = starts[seg == i]
        expected = (n - window) // step + 1 if n >= window else 0
        assert len(mine) == expected == window_count(n, window, step)
        assert np.all(mine >= seg_start[i]) and np.all(mine + window <= seg_start[i] + n)
        assert np.all(np.diff(mine) == step)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(0, 3), min_size=1, max_size=300),
    jumps=st.lists(st.integers(0, 30), min_size=1, max_size=300),
)
def test_segments_split_on_key_changes_and_clock_gaps(keys, jumps):
    n = min(len(keys), len(jumps))
    k = np.array(sorted(keys[:n]))
    # steps of 10 ns; a step of 0 or > 30 ns is a cut
    dt = np.where(np.array(jumps[:n]) == 0, 0, np.where(np.array(jumps[:n]) > 25, 100, 10))
    ts = np.cumsum(dt).astype(np.int64)
    s, L, cuts = contiguous_segments([k], ts, gap_factor=3.0)
    assert L.sum() == n and np.all(L > 0)
    for a, m in zip(s, L):
        assert np.all(k[a : a + m] == k[a])  # one key per segment
        d = np.diff(ts[a : a + m])
        assert np.all(d > 0)


def test_segments_table():
    k = np.repeat([1, 2], 20)
    ts = np.concatenate([np.arange(20) * 10, 1000 + np.arange(20) * 10])
    ts[10:] += 200  # a clock gap in key 1
    ts[30:] -= 10  # a repeated timestamp in key 2
    s, L, cuts = contiguous_segments([k], ts)
    assert s.tolist() == [0, 10, 20, 30] and L.tolist() == [10, 10, 10, 10]
    assert cuts == {"key_changes": 1, "clock_backwards_or_repeat": 1, "clock_gaps": 1}


def test_cut_windows_values_and_views():
    sig = np.arange(40, dtype=np.float32).reshape(20, 2)
    x = cut_windows(sig, np.array([0, 3, 6]), 4)  # one arithmetic progression: a view
    assert x.shape == (3, 4, 2) and not x.flags.owndata and not x.flags.writeable
    assert np.array_equal(x[1], sig[3:7])
    y = cut_windows(sig, np.array([0, 5, 6]), 4)  # irregular: one gather
    assert np.array_equal(y[2], sig[6:10])


def test_make_windowset_records_short_segments():
    sig = np.zeros((1000, 1), np.float32)
    ws = make_windowset(sig, np.array([0, 300, 600]), np.array([300, 100, 400]), np.array([0, 1, 0]),
                        np.array([7, 7, 8]), window=256, step=32, class_names=("a", "b"), channels=("m",),
                        rate_hz=20.0, source="t", report={})
    assert len(ws) == 2 + 0 + 5 and ws.report["segments_shorter_than_window"] == 1
    assert ws.report["rows_in_short_segments_dropped"] == 100
    assert ws.report["windows_per_class"] == {"a": 7, "b": 0}
    assert ws.start.max() + 256 <= 400 and set(ws.subject.tolist()) == {7, 8}


def test_magnitude_modes():
    xyz = np.array([[0, 0, 9.80665], [3, 4, 0], [0, 0, 1.0]], np.float32)
    assert np.allclose(acc_magnitude(xyz, "norm")[:, 0], [9.80665, 5, 1])
    assert np.allclose(acc_magnitude(xyz, "norm_minus_g")[:, 0], [0, 5 - 9.80665, 1 - 9.80665], atol=1e-5)
    lit = acc_magnitude(xyz, "paper_literal")[:, 0]
    assert np.isclose(lit[1], np.sqrt(25 - 9.80665)) and lit[2] == 0  # clamped, never NaN
    with pytest.raises(ValueError, match="mag_mode"):
        acc_magnitude(xyz, "bogus")


def test_resample_keeps_segments_apart():
    ts = np.concatenate([np.arange(0, 1e9, 2e7), 5e9 + np.arange(0, 1e9, 4e7)]).astype(np.int64)  # 50 Hz, 25 Hz
    sig = (ts / 1e9).astype(np.float32)[:, None]  # a ramp: linear interpolation is exact
    n1 = 50
    out, t2, s, L = resample_segments(sig, ts, np.array([0, n1]), np.array([n1, len(ts) - n1]), 20.0)
    assert L.tolist() == [20, 20] and s.tolist() == [0, 20]
    assert np.allclose(out[:, 0], t2 / 1e9, atol=1e-6)
    assert np.allclose(np.diff(t2[:20]), 5e7)
