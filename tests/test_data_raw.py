"""Raw UCI WISDM parser on generated files with every kind of defect, and a raw <-> packed round trip."""
import numpy as np
import pytest

from jazbat_jax.data import (
    MalformedLineError, bundled_sample_root, load_wisdm, parse_wisdm_raw_file, read_wisdm_raw_stream, write_wisdm_raw,
)
from jazbat_jax.data.wisdm import load_stream

GOOD = [
    "1600,A,252207666810782,-0.36476135,8.793503,1.0550842;",
    "1600,A,252207717164786,2.89917E-4,-6.1035156E-5,1.0;",
    "1600,B,252207767518790,1,-2e1,3.5e+00;",
]


def write(tmp_path, lines, name="data_1600_accel_watch.txt", end="\n"):
    p = tmp_path / name
    p.write_bytes((end.join(lines) + end).encode())
    return p


def test_good_lines_and_scientific_notation(tmp_path):
    st, rep = parse_wisdm_raw_file(write(tmp_path, GOOD), expected_subject=1600)
    assert st["subject"].tolist() == [1600] * 3 and st["activity"].tolist() == [0, 0, 1]
    assert st["timestamp"].tolist() == [252207666810782, 252207717164786, 252207767518790]
    assert st["xyz"].dtype == np.float32
    assert np.array_equal(st["xyz"][1], np.float32([2.89917e-4, -6.1035156e-5, 1.0]))
    assert np.array_equal(st["xyz"][2], np.float32([1, -20, 3.5]))
    assert rep["rows"] == 3 and "bad_lines_skipped" not in rep


BAD = [
    ("1600,A,252207666810782,-0.36,8.79;", "not 5 commas"),
    ("1600,A,252207666810782,-0.36,8.79,1.05", "no ';' at the end"),
    ("1600,A,252207666810782,-0.36,8.79,1.0x;", "character not allowed"),
    ("1600,N,252207666810782,-0.36,8.79,1.05;", "unknown activity code"),
    ("1600,AB,252207666810782,-0.36,8.79,1.05;", "unknown activity code"),
    ("1600,A,2522076668107.82,-0.36,8.79,1.05;", "not an integer"),
    ("1600,A,,-0.36,8.79,1.05;", "not an integer"),
    ("1601,A,252207666810782,-0.36,8.79,1.05;", "subject differs from file name"),
    ("1600,A,252207666810782,-0.3.6,8.79,1.05;", "not a number"),
    ("1600,A,252207666810782,,8.79,1.05;", "not a number"),
]


@pytest.mark.parametrize("line,reason", BAD)
def test_malformed_line_names_file_line_and_text(tmp_path, line, reason):
    p = write(tmp_path, [GOOD[0], line, GOOD[1]])
    with pytest.raises(MalformedLineError) as e:
        parse_wisdm_raw_file(p, expected_subject=1600)
    msg = str(e.value)
    assert str(p) in msg and "line 2" in msg and reason in msg and repr(line) in msg


def test_skip_counts_and_locates_bad_lines(tmp_path):
    lines = [GOOD[0], BAD[0][0], GOOD[1], BAD[3][0], BAD[8][0], GOOD[2]]
    st, rep = parse_wisdm_raw_file(write(tmp_path, lines), on_bad_line="skip", expected_subject=1600)
    assert len(st["subject"]) == 3
    assert rep["bad_lines_skipped"] == 3
    assert [e["line"] for e in rep["bad_line_examples"]] == [2, 4, 5]
    assert rep["bad_line_examples"][2]["reason"] == "x, y or z not a number"


def test_nan_inf_blank_crlf_and_truncated(tmp_path):
    lines = [GOOD[0], "", "1600,A,252207717164790,NaN,1,2;", "1600,A,252207717164799,1,-Infinity,2;", GOOD[2]]
    st, rep = parse_wisdm_raw_file(write(tmp_path, lines, end="\r\n"))
    assert rep["blank_lines_skipped"] == 1 and rep["cr_characters_removed"] == 5
    assert rep["non_finite_lines"] == 2 and rep["non_finite_line_numbers"] == [3, 4]
    # the loader drops non-finite rows and says so
    p = tmp_path / "data_1600_accel_watch.txt"
    p.write_bytes("\n".join(GOOD + ["1600,B,252207767518799,1"]).encode())  # cut off mid-line, no newline
    with pytest.raises(MalformedLineError, match="line 4"):
        parse_wisdm_raw_file(p)
    st, rep = parse_wisdm_raw_file(p, on_bad_line="skip")
    assert rep["last_line_without_newline"] and rep["bad_lines_skipped"] == 1 and len(st["xyz"]) == 3


def test_empty_file_and_missing_channel(tmp_path):
    with pytest.raises(ValueError, match="empty file"):
        parse_wisdm_raw_file(write(tmp_path, [], end=""))
    raw = tmp_path / "wisdm-dataset" / "raw" / "watch" / "accel"
    raw.mkdir(parents=True)
    write(raw, GOOD)
    with pytest.raises(FileNotFoundError, match="missing channel"):
        read_wisdm_raw_stream(tmp_path / "wisdm-dataset" / "raw", "watch", "gyro")
    with pytest.raises(FileNotFoundError, match="missing channel"):
        load_wisdm(tmp_path, device="watch", input_kind="6d")


def test_loader_drops_and_reports_non_finite(tmp_path):
    d = tmp_path / "raw" / "watch" / "accel"
    d.mkdir(parents=True)
    t0 = 10**14
    lines = [f"1600,A,{t0 + i * 50_000_000},{'NaN' if i == 5 else 0.5},9.8,0.1;" for i in range(300)]
    write(d, lines)
    ws = load_wisdm(tmp_path, device="watch", input_kind="1d", window=128, step=32)
    assert ws.report["layout"] == "raw"
    assert ws.report["accel_cleaning"]["non_finite_rows_dropped"] == {"1600": 1}
    assert ws.report["accel"]["non_finite_lines"] == 1


def test_bundled_sample_raw_round_trip(tmp_path):
    """Write the bundled sample as raw UCI text, parse it back, compare with the archives."""
    packed = bundled_sample_root() / "wisdm2019"
    raw = tmp_path / "wisdm-dataset" / "raw"
    for device in ("phone", "watch"):
        for sensor in ("accel", "gyro"):
            st, _ = load_stream(packed, device, sensor)
            write_wisdm_raw(st, raw, device, sensor)
            back, rep = read_wisdm_raw_stream(raw, device, sensor)
            for k in ("subject", "activity", "timestamp", "xyz"):
                assert np.array_equal(back[k], st[k]), (device, sensor, k)
    a = load_wisdm(packed, device="phone", input_kind="6d")
    b = load_wisdm(tmp_path, device="phone", input_kind="6d")
    assert b.report["layout"] == "raw" and a.report["layout"] == "packed"
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and np.array_equal(a.subject, b.subject)


def test_empty_file_skipped_and_reported_in_skip_mode(tmp_path):
    d = tmp_path / "raw" / "watch" / "accel"
    d.mkdir(parents=True)
    write(d, GOOD)
    (d / "data_1601_accel_watch.txt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        read_wisdm_raw_stream(tmp_path / "raw", "watch", "accel")
    st, rep = read_wisdm_raw_stream(tmp_path / "raw", "watch", "accel", on_bad_line="skip")
    assert len(st["subject"]) == 3 and rep["empty_files_skipped"][0].endswith("data_1601_accel_watch.txt")


def test_misplaced_and_unknown_files_are_listed_not_silently_ignored(tmp_path):
    d = tmp_path / "raw" / "phone" / "accel"
    d.mkdir(parents=True)
    write(d, GOOD, name="data_1600_accel_phone.txt")
    write(d, GOOD)  # data_1600_accel_watch.txt: a watch file in the phone folder
    (d / "notes.txt").write_text("not data\n")
    st, rep = read_wisdm_raw_stream(tmp_path / "raw", "phone", "accel")
    assert rep["other_files_not_read"] == {"count": 2, "names": ["data_1600_accel_watch.txt", "notes.txt"]}
