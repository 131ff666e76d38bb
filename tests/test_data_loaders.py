"""Loaders on the bundled real sample and on generated data; the CLI; SEECS layout validation."""
import argparse
import json

import numpy as np
import pytest

from jazbat_jax.data import (
    SEECS_EMOTIONS, bundled_sample_root, data_root, load_quiroz, load_seecs, load_wisdm, split_windows,
    write_seecs_recording,
)
from jazbat_jax.data.cli import register
from jazbat_jax.data.wisdm import clean_stream, join_accel_gyro

SAMPLE = bundled_sample_root()


@pytest.mark.parametrize("kind,F", [("1d", 1), ("3d", 3), ("6d", 6)])
def test_wisdm_sample_watch(kind, F):
    ws = load_wisdm(SAMPLE, device="watch", input_kind=kind)
    assert ws.x.shape[1:] == (256, F) and ws.x.dtype == np.float32
    assert len(ws.class_names) == 18 and set(np.unique(ws.y)) == set(range(18))
    assert set(ws.subject.tolist()) == {1600, 1604, 1606, 1611, 1612, 1615}
    assert ws.report["layout"] == "packed" and 19.5 < ws.rate_hz < 20.5
    # windows never cross a recording and stay inside it
    assert np.all(ws.start >= 0)
    for r in np.unique(ws.recording)[:20]:
        m = ws.recording == r
        assert len(set(ws.y[m])) == 1 and len(set(ws.subject[m])) == 1
    assert sum(ws.report["windows_per_class"].values()) == len(ws)
    if kind == "1d":
        assert ws.channels == ("acc_norm_minus_g",) and abs(float(np.median(ws.x))) < 2.0  # gravity removed


def test_wisdm_options():
    ws = load_wisdm(SAMPLE, device="phone", activities="AD", subjects=[1600], step=64, mag_mode="norm")
    assert ws.class_names == ("walking", "sitting") and set(ws.subject.tolist()) == {1600}
    assert 8.0 < float(np.median(ws.x)) < 12.0  # |a| with gravity
    rs = load_wisdm(SAMPLE, device="watch", input_kind="3d", activities="A", resample_hz=10.0)
    assert rs.rate_hz == 10.0 and rs.report["resampled_to_hz"] == 10.0
    with pytest.raises(ValueError, match="activities"):
        load_wisdm(SAMPLE, activities="AN")
    with pytest.raises(ValueError, match="never mixed"):
        load_wisdm(SAMPLE, device="both")
    with pytest.raises(FileNotFoundError):
        load_wisdm(SAMPLE / "nope")


def _stream(subj, act, ts, xyz=None):
    n = len(ts)
    return {"subject": np.full(n, subj, np.int16) if np.isscalar(subj) else np.asarray(subj, np.int16),
            "activity": np.full(n, act, np.uint8) if np.isscalar(act) else np.asarray(act, np.uint8),
            "timestamp": np.asarray(ts, np.int64),
            "xyz": np.arange(3 * n, dtype=np.float32).reshape(n, 3) if xyz is None else xyz}


def test_clean_double_recording_and_cross_activity_overlap():
    # 1629-like: the whole session twice, identical timestamps and values
    t = np.arange(100) * 50
    st = _stream(1629, np.repeat([0, 1], 50).tolist() * 2, np.concatenate([t, t]))
    st["xyz"] = np.concatenate([st["xyz"][:100]] * 2)
    out, rep = clean_stream(st)
    assert len(out["timestamp"]) == 100 and rep["repeated_rows_dropped"] == {"1629": 100}
    assert rep["repeated_rows_with_different_values"] == 0
    # 1649-like: the start of O (code index 13) copied into a longer M (12) block
    tm, to = 10_000 + np.arange(300) * 50, 90_000 + np.arange(100) * 50
    st = _stream(1649, [12] * 300 + [12] * 20 + [13] * 100, np.concatenate([tm, to[:20], to]))
    out, rep = clean_stream(st)
    assert rep["cross_activity_duplicate_rows_dropped"] == {"1649M": 20}
    assert (out["activity"] == 13).sum() == 100 and (out["activity"] == 12).sum() == 300


def test_join_accel_gyro_nearest_within_tolerance():
    ta = np.arange(20) * 50
    tg = np.delete(ta, [3, 4]) + 5  # gyro 5 ns late, two rows missing
    acc, gyr = _stream(1600, 0, ta), _stream(1600, 0, tg)
    out, rep = join_accel_gyro(acc, gyr)
    assert out["xyz"].shape == (18, 6) and rep["accel_rows_without_gyro_match_dropped"] == 2
    assert np.array_equal(out["timestamp"], np.delete(ta, [3, 4]))


def test_quiroz_sample():
    ws = load_quiroz(SAMPLE)
    assert ws.class_names == ("happy", "neutral", "sad") and ws.x.shape[1:] == (256, 1)
    assert ws.report["walks"] == 36 and len(set(ws.subject.tolist())) == 12
    assert np.all(ws.x >= 0)  # |linear acceleration|
    assert load_quiroz(SAMPLE, input_kind="6d").x.shape[2] == 6
    sp = split_windows(ws, "subject", seed=0)
    assert not set(ws.subject[sp.train]) & set(ws.subject[sp.test])
    with pytest.raises(ValueError, match="gravity"):
        load_quiroz(SAMPLE, mag_mode="paper_literal")
    sub = load_quiroz(SAMPLE, emotions=["sad", "happy"], step=32)
    assert sub.class_names == ("sad", "happy") and set(sub.y.tolist()) == {0, 1}


def make_seecs(root, subjects=(1, 2), emotions=SEECS_EMOTIONS, n=400, rate=75.0, seed=0):
    rng = np.random.default_rng(seed)
    for s in subjects:
        for e in emotions:
            t = np.arange(n) * 1000.0 / rate
            acc = rng.normal(size=(n, 3)) + [0, 0, 9.81]
            write_seecs_recording(root / f"{s:02d}" / e / "walk1.csv", t, acc, rng.normal(size=(n, 3)))
    return root


def test_seecs_generated(tmp_path):
    root = make_seecs(tmp_path / "seecs")
    ws = load_seecs(root, input_kind="6d")
    assert ws.class_names == SEECS_EMOTIONS and ws.x.shape == (2 * 6 * ((400 - 256) // 16 + 1), 256, 6)
    assert abs(ws.rate_hz - 75.0) < 0.01 and set(ws.subject.tolist()) == {1, 2}
    # a gap of 1 s cuts the recording; a piece shorter than a window is dropped and named
    t = np.concatenate([np.arange(300), 400 + np.arange(100)]) * 1000 / 75
    write_seecs_recording(root / "03" / "fear" / "gap.csv", t, np.ones((400, 3)), np.zeros((400, 3)))
    ws = load_seecs(root)
    assert ws.report["segment_cuts"]["clock_gaps"] == 1
    assert ws.report["pieces_shorter_than_window_dropped"] == {"03/fear/gap.csv": 100}


@pytest.mark.parametrize("content,msg", [
    ("time,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5,6\n", "header"),
    ("timestamp,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5\n", "line 2: 6 fields"),
    ("timestamp,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5,6\n13,1,x,3,4,5,6\n", "line 3"),
    ("timestamp,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5,6\n13,1,nan,3,4,5,6\n", "NaN"),
    ("timestamp,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5,6\n0,1,2,3,4,5,6\n", "strictly increasing"),
    ("", "empty"),
    ("timestamp,ax,ay,az,gx,gy,gz\n", "no samples"),
])
def test_seecs_strict_validation(tmp_path, content, msg):
    f = tmp_path / "01" / "sad" / "r.csv"
    f.parent.mkdir(parents=True)
    f.write_text(content)
    with pytest.raises(ValueError, match=msg):
        load_seecs(tmp_path)


def test_seecs_layout_errors(tmp_path):
    (tmp_path / "01" / "joy").mkdir(parents=True)
    with pytest.raises(ValueError, match="emotion folder"):
        load_seecs(tmp_path)
    (tmp_path / "01" / "joy").rmdir()
    (tmp_path / "alice").mkdir()
    with pytest.raises(ValueError, match="integer names"):
        load_seecs(tmp_path)


def run_cli(argv, capsys):
    parser = argparse.ArgumentParser(prog="jazbat")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_cli_info_sample_text_and_json(capsys):
    out = run_cli(["data", "info", str(SAMPLE)], capsys)
    assert "WISDM 2019 (packed layout)" in out and "Quiroz 2018" in out and "per class" in out
    info = json.loads(run_cli(["data", "info", str(SAMPLE), "--format", "json"], capsys))
    w = info["sources"][0]
    assert w["streams"]["watch_accel"]["subjects"] == [1600, 1604, 1606, 1611, 1612, 1615]
    assert info["sources"][1]["windows_per_class"]["happy"] > 0


def test_cli_info_seecs_and_raw(tmp_path, capsys):
    make_seecs(tmp_path / "seecs")
    out = run_cli(["data", "info", str(tmp_path / "seecs")], capsys)
    assert "SEECS-layout" in out and "happy=" in out
    d = tmp_path / "wisdm-dataset" / "raw" / "phone" / "accel"
    d.mkdir(parents=True)
    (d / "data_1600_accel_phone.txt").write_text(
        "".join(f"1600,A,{10**14 + i * 50_000_000},0.1,9.8,0.2;\n" for i in range(300)) + "1600,A,x;\n")
    out = json.loads(run_cli(["data", "info", str(tmp_path / "wisdm-dataset"), "--format", "json",
                              "--on-bad-line", "skip"], capsys))
    s = out["sources"][0]
    assert s["layout"] == "raw" and s["streams"]["phone_accel"]["defects"]["bad_lines_skipped"] == 1
    assert "missing" in s["streams"]["watch_gyro"]
    with pytest.raises(FileNotFoundError, match="not a WISDM"):
        run_cli(["data", "info", str(tmp_path / "wisdm-dataset" / "raw" / "phone")], capsys)


def test_data_root_falls_back_to_sample():
    assert (data_root() / "wisdm2019").is_dir()


def test_join_when_a_block_is_recorded_twice_with_another_clock():
    # file order: A (clock 1), B, A again (clock 2): both A runs join, file order is kept
    ta = np.concatenate([np.arange(10) * 50, 10_000 + np.arange(10) * 50, 900_000 + np.arange(10) * 50])
    acts = [0] * 10 + [1] * 10 + [0] * 10
    acc, gyr = _stream(1629, acts, ta), _stream(1629, acts, ta + 3)
    out, rep = join_accel_gyro(acc, gyr)
    assert np.array_equal(out["timestamp"], ta) and rep["accel_rows_without_gyro_match_dropped"] == 0
    assert np.array_equal(out["xyz"][:, 3:], gyr["xyz"])


DEFECTS = SAMPLE / "wisdm2019_defects"


def test_real_defects_1649_overlap_and_1629_double_recording():
    w = load_wisdm(DEFECTS, device="watch", input_kind="6d")
    assert w.report["accel_cleaning"] == {"cross_activity_duplicate_rows_dropped": {"1649M": 1160}}
    assert w.report["gyro_cleaning"] == {"cross_activity_duplicate_rows_dropped": {"1649M": 1159}}
    assert w.report["segment_cuts"]["clock_gaps"] >= 5  # the 351-s kicking block has gaps over 1 s
    assert set(w.class_names[i] for i in np.unique(w.y)) == {"kicking", "catch"}
    p = load_wisdm(DEFECTS, device="phone", activities="ABCM")
    sup = p.report["accel"]["supplement"]
    assert sup["subjects_added"] == [1629] and sup["incomplete_blocks"] == ["1629M"]
    assert p.report["accel_cleaning"]["repeated_rows_dropped"] == {"1629": 3200}
    assert p.report["accel_cleaning"]["repeated_rows_with_different_values"] == 0
    assert p.report["windows_per_class"] == {"walking": 18, "jogging": 18, "stairs": 18, "kicking": 18}
    d = load_wisdm(DEFECTS, device="phone", activities="ABCM", supplement_incomplete="drop")
    # only the second copy's M run is flagged incomplete; the first copy's M is complete and stays
    assert d.report["accel"]["supplement"]["rows_in_incomplete_blocks_dropped"] == 800
    assert d.report["accel_cleaning"]["repeated_rows_dropped"] == {"1629": 2400}
    assert d.report["windows_per_class"]["kicking"] == 18
    with pytest.raises(FileNotFoundError, match="missing channel"):
        load_wisdm(DEFECTS, device="phone", input_kind="6d")


def test_cli_split_prints_and_saves(tmp_path, capsys):
    out = run_cli(["data", "split", str(SAMPLE), "--source", "quiroz", "--n-folds", "4", "--fold", "2",
                   "--out", str(tmp_path / "s.json")], capsys)
    assert "subjects in more than one part: 0" in out
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["protocol"] == "subject" and d["fold"] == 2 and len(d["test"]["subjects"]) == 3
