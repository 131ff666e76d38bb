"""Checks on the full data in ../shared/data (skipped cleanly when it is absent)."""
import json

import pytest

from jazbat_jax.data import load_quiroz, load_wisdm, shared_data_root, split_windows
from jazbat_jax.data.wisdm import load_stream

ROOT = shared_data_root()
pytestmark = pytest.mark.skipif(ROOT is None, reason="../shared/data not present")


@pytest.fixture(scope="module")
def watch():
    return load_wisdm(ROOT / "wisdm2019", device="watch", input_kind="1d")


def test_watch_known_defects(watch):
    r = watch.report
    assert r["accel"]["rows_read"] == 3_021_961
    assert r["accel_cleaning"] == {"cross_activity_duplicate_rows_dropped": {"1649M": 1160}}
    assert r["missing_activities_by_subject"] == {"1616": "B", "1618": "O", "1642": "CF"}
    assert len(r["subjects"]) == 46 and len(watch.class_names) == 18
    assert min(r["windows_per_class"].values()) > 4000
    assert r["windows"] == len(watch) == sum(r["windows_per_class"].values())


def test_phone_supplement_and_1629(watch):
    ws = load_wisdm(ROOT / "wisdm2019", device="phone", input_kind="1d")
    r = ws.report
    sup = r["accel"]["supplement"]
    assert len(sup["subjects_added"]) == 29 and sup["rows_added"] == 484_526
    assert r["accel_cleaning"]["repeated_rows_dropped"] == {"1629": 14264}
    assert r["accel_cleaning"]["repeated_rows_with_different_values"] == 0
    assert set(r["rates"]["blocks_by_rounded_hz"]) >= {"20", "25", "50"}
    # the phone and the watch are never mixed
    assert ws.source.endswith(":phone:1d") and watch.source.endswith(":watch:1d")
    no_sup = load_wisdm(ROOT / "wisdm2019", device="phone", activities="A", use_supplement=False)
    assert len(no_sup.report["subjects"]) == 22


def test_stream_rows_match_readme():
    for dev, sen, rows in [("phone", "gyro", 2_050_015), ("watch", "gyro", 3_091_895)]:
        st, _ = load_stream(ROOT / "wisdm2019", dev, sen)
        assert len(st["subject"]) == rows


def test_quiroz_full():
    ws = load_quiroz(ROOT / "quiroz2018_emotion_walking")
    r = ws.report
    assert r["rows"] == 648_998 and len(r["participants"]) == 44 and r["walks"] == 132
    assert r["participants_per_condition"] == {"movie": 16, "music": 14, "music_walking": 14}
    sp = split_windows(ws, "subject", n_folds=5, fold=0, seed=0)
    assert not set(ws.subject[sp.train]) & set(ws.subject[sp.test])


def test_supplement_incomplete_blocks_can_be_dropped():
    keep = load_wisdm(ROOT / "wisdm2019", device="phone", activities="ABCM")
    drop = load_wisdm(ROOT / "wisdm2019", device="phone", activities="ABCM", supplement_incomplete="drop")
    k, d = keep.report["accel"]["supplement"], drop.report["accel"]["supplement"]
    assert k["rows_added"] - d["rows_added"] == d["rows_in_incomplete_blocks_dropped"] > 0
    assert len(drop) < len(keep)


def test_1649_overlap_removed_even_when_catch_is_not_selected():
    ws = load_wisdm(ROOT / "wisdm2019", device="watch", activities="M", subjects=[1649])
    assert ws.report["accel_cleaning"] == {"cross_activity_duplicate_rows_dropped": {"1649M": 1160}}
    pack = json.loads((ROOT / "wisdm2019" / "pack_report.json").read_text())
    rows_m = pack["streams"]["watch_accel"]["per_file"]["1649"]["rows_per_activity"]["M"]
    assert ws.report["rows"] == rows_m - 1160
