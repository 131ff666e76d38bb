"""Data benchmarks: raw WISDM parsing speed and windowing speed on the full data.

    .venv/bin/pytest benchmarks/test_bench_data.py -m bench --benchmark-enable -p no:cacheprovider

Uses ../shared/data when present (the raw text is regenerated from the packed archives into a
temporary folder, ~16 s per stream) and skips cleanly otherwise. Gate on the median, not the mean.
"""
import numpy as np
import pytest

from jazbat_jax.data import load_wisdm, read_wisdm_raw_stream, shared_data_root, write_wisdm_raw
from jazbat_jax.data.windows import contiguous_segments, cut_windows, window_starts
from jazbat_jax.data.wisdm import clean_stream, load_stream

ROOT = shared_data_root()
pytestmark = [pytest.mark.bench, pytest.mark.skipif(ROOT is None, reason="../shared/data not present")]


@pytest.fixture(scope="module")
def watch_accel():
    st, _ = load_stream(ROOT / "wisdm2019", "watch", "accel")
    return st


@pytest.fixture(scope="module")
def raw_watch_accel(tmp_path_factory, watch_accel):
    """The watch-accel stream written back as raw UCI text files (3,021,961 lines, ~165 MB)."""
    raw = tmp_path_factory.mktemp("wisdm") / "raw"
    write_wisdm_raw(watch_accel, raw, "watch", "accel")
    return raw


def test_bench_parse_raw_watch_accel(benchmark, raw_watch_accel, watch_accel):
    st, rep = benchmark.pedantic(read_wisdm_raw_stream, args=(raw_watch_accel, "watch", "accel"),
                                 rounds=3, iterations=1)
    n = len(st["subject"])
    assert n == len(watch_accel["subject"]) and np.array_equal(st["xyz"], watch_accel["xyz"])
    if benchmark.stats is not None:
        benchmark.extra_info["lines"] = n
        benchmark.extra_info["lines_per_s_median"] = n / benchmark.stats.stats.median


@pytest.mark.parametrize("F", [1, 6])
def test_bench_window_watch_stream(benchmark, watch_accel, F):
    """Segment + cut the whole 3M-row watch stream into (N, 256, F) float32 windows (step 32)."""
    st, _ = clean_stream(watch_accel)
    sig = np.ascontiguousarray(np.tile(st["xyz"], (1, 2))[:, :F] if F > 1 else st["xyz"][:, :1], np.float32)

    def run():
        s, L, _ = contiguous_segments([st["subject"], st["activity"]], st["timestamp"])
        starts, _ = window_starts(s, L, 256, 32)
        return cut_windows(sig, starts, 256)

    x = benchmark.pedantic(run, rounds=3, iterations=1)
    assert x.shape[1:] == (256, F) and x.dtype == np.float32
    benchmark.extra_info["windows"] = int(x.shape[0])
    benchmark.extra_info["rows"] = int(len(sig))


@pytest.mark.parametrize("kind", ["1d", "6d"])
def test_bench_load_wisdm_watch(benchmark, kind):
    """The whole loader: read archives, clean, (join), segment, window."""
    ws = benchmark.pedantic(load_wisdm, args=(ROOT / "wisdm2019",), kwargs=dict(device="watch", input_kind=kind),
                            rounds=2, iterations=1)
    benchmark.extra_info["windows"] = len(ws)


@pytest.fixture(scope="module")
def raw_all_streams(tmp_path_factory):
    """All four packed streams written back as raw UCI text (9,597,360 lines, ~520 MB)."""
    raw = tmp_path_factory.mktemp("wisdm_all") / "raw"
    n = 0
    for dev in ("phone", "watch"):
        for sen in ("accel", "gyro"):
            st, _ = load_stream(ROOT / "wisdm2019", dev, sen, use_supplement=False)
            write_wisdm_raw(st, raw, dev, sen)
            n += len(st["subject"])
    return raw, n


def test_bench_parse_raw_all_streams(benchmark, raw_all_streams):
    raw, n = raw_all_streams

    def run():
        return sum(len(read_wisdm_raw_stream(raw, d, s)[0]["subject"])
                   for d in ("phone", "watch") for s in ("accel", "gyro"))

    assert benchmark.pedantic(run, rounds=1, iterations=1) == n
    if benchmark.stats is not None:
        benchmark.extra_info["lines"] = n
        benchmark.extra_info["lines_per_s"] = n / benchmark.stats.stats.median
