"""Vectorised reader (and writer) for the raw UCI WISDM 2019 text layout.

``wisdm-dataset/raw/{phone,watch}/{accel,gyro}/data_16NN_<sensor>_<device>.txt``, one line per
sample: ``subject,activity,timestamp,x,y,z;``. Values may use scientific notation (``2.89917E-4``).

The whole file is handled as one byte array: lines are checked with array operations (5 commas,
trailing ``;``, allowed characters, a known activity code, digit-only subject and timestamp,
subject equal to the file name); subject and timestamp are parsed as exact integers from their
digits; x, y, z are parsed in one C call (``np.fromstring``). Only when that call rejects a line
that passed the checks does a per-line Python pass run to name the line.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ACTIVITY_CODES = "ABCDEFGHIJKLMOPQRS"
FILE_RE = re.compile(r"data_(\d+)_(accel|gyro)_(phone|watch)\.txt$")
_MAX_EXAMPLES = 10

_ALLOWED = np.zeros(256, bool)
for _c in b"0123456789.-+eE,;\n" + b"NaInfity":  # NaN / Infinity parse, then count as non-finite
    _ALLOWED[_c] = True
_ACT_LUT = np.full(256, -1, np.int16)
for _i, _c in enumerate(ACTIVITY_CODES.encode()):
    _ACT_LUT[_c] = _i
_DIGIT = np.zeros(256, bool)
_DIGIT[np.frombuffer(b"0123456789", np.uint8)] = True


class MalformedLineError(ValueError):
    """A line of a raw file does not have the form ``subject,activity,timestamp,x,y,z;``."""


class EmptyFileError(ValueError):
    """A raw file holds no data (e.g. a failed or interrupted download)."""


def _int_fields(buf: np.ndarray, start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact int64 of digit-only fields; second result is False where a field is not 1..18 digits."""
    ok = (length >= 1) & (length <= 18)
    val = np.zeros(len(start), np.int64)
    L = np.where(ok, length, 0)
    for k in range(int(L.max()) if len(L) else 0):
        m = k < L
        d = buf[np.minimum(start + k, len(buf) - 1)]
        ok &= ~m | _DIGIT[d]
        val = np.where(m, val * 10 + (d.astype(np.int64) - 48), val)
    return val, ok


def _line_text(data: bytes, ls: np.ndarray, le: np.ndarray, i: int) -> str:
    return data[ls[i] : le[i]].decode("utf-8", "replace")


def parse_wisdm_raw_file(
    path: str | Path, on_bad_line: str = "raise", expected_subject: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Parse one raw WISDM file. Returns (stream arrays, report).

    on_bad_line: 'raise' (default) raises ``MalformedLineError`` naming the file, the 1-based line
    number, the reason and the line; 'skip' drops such lines and lists how many and where.
    """
    if on_bad_line not in ("raise", "skip"):
        raise ValueError(f"on_bad_line must be 'raise' or 'skip', got {on_bad_line!r}")
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():
        raise EmptyFileError(f"{path}: empty file ({len(data)} bytes)")
    rep: dict[str, Any] = {"file": str(path)}
    if b"\r" in data:  # Windows line ends: harmless, but say so
        rep["cr_characters_removed"] = data.count(b"\r")
        data = data.replace(b"\r", b"")
    if not data.endswith(b"\n"):
        rep["last_line_without_newline"] = True
        data += b"\n"
    buf = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(buf == 10)
    ls = np.concatenate([[0], nl[:-1] + 1]).astype(np.int64)  # line start
    le = nl.astype(np.int64)  # line end (exclusive, at the newline)
    n = len(ls)
    blank = le == ls
    reason = np.zeros(n, np.int8)  # 0 ok, else index into REASONS
    REASONS = ["", "blank line", "not 5 commas", "no ';' at the end", "character not allowed",
               "unknown activity code", "subject or timestamp not an integer", "subject differs from file name",
               "x, y or z not a number"]
    reason[blank] = 1
    # commas per line: bincount of each comma's line (cheaper than a cumulative sum over bytes)
    cpos = np.flatnonzero(buf == 44)
    line_of_comma = np.searchsorted(nl, cpos)
    commas_per_line = np.bincount(line_of_comma, minlength=n)
    reason[(reason == 0) & (commas_per_line != 5)] = 2
    last = buf[np.maximum(le - 1, 0)]
    reason[(reason == 0) & (last != ord(";"))] = 3
    good = reason == 0
    c = cpos[good[line_of_comma]].reshape(-1, 5)  # the 5 commas of every line still good
    gi = np.flatnonzero(good)
    act_pos = c[:, 0] + 1
    bad_char = ~_ALLOWED[buf]
    bad_char[act_pos] = False  # the activity letter is checked on its own
    r = np.zeros(len(gi), np.int8)
    act = _ACT_LUT[buf[act_pos]]
    r[(c[:, 1] != c[:, 0] + 2) | (act < 0)] = 5
    bad_lines = np.zeros(n, bool)
    bad_lines[np.searchsorted(nl, np.flatnonzero(bad_char))] = True  # usually no position at all
    r[(r == 0) & bad_lines[gi]] = 4
    subj, ok_s = _int_fields(buf, ls[gi], c[:, 0] - ls[gi])
    ts, ok_t = _int_fields(buf, c[:, 1] + 1, c[:, 2] - c[:, 1] - 1)
    r[(r == 0) & ~(ok_s & ok_t)] = 6
    if expected_subject is not None:
        r[(r == 0) & (subj != expected_subject)] = 7
    reason[gi] = r

    def floats(lines_ok: np.ndarray) -> np.ndarray | None:
        """x, y, z of the given good lines in one C call; None if it rejects something."""
        idx = np.flatnonzero(lines_ok)
        g = np.searchsorted(gi, idx)
        s, e = c[g, 2] + 1, le[idx] - 1  # from after the 3rd comma up to the ';'
        w = e - s + 1  # bytes of "x,y,z;"
        off = np.cumsum(w) - w  # where each line's bytes go in the gathered text
        text = buf[np.repeat(s - off, w) + np.arange(int(w.sum()))]
        text[off + w - 1] = 44  # the ';' becomes a separator
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            try:
                v = np.fromstring(text.tobytes(), dtype=np.float64, sep=",")
            except (ValueError, DeprecationWarning):
                return None
        return v.reshape(-1, 3) if v.size == 3 * len(idx) else None

    xyz = floats(reason == 0)
    if xyz is None:  # find the offending lines the slow way, then parse the rest fast
        for i in np.flatnonzero(reason == 0):
            parts = data[ls[i] : le[i] - 1].split(b",")[3:]
            try:
                [float(p) for p in parts]
            except ValueError:
                reason[i] = 8
        xyz = floats(reason == 0)
        assert xyz is not None
    bad = np.flatnonzero(reason > 1)
    n_blank = int((reason == 1).sum())
    if n_blank:
        rep["blank_lines_skipped"] = n_blank
    if len(bad):
        if on_bad_line == "raise":
            i = int(bad[0])
            raise MalformedLineError(
                f"{path}, line {i + 1}: {REASONS[reason[i]]}: {_line_text(data, ls, le, i)!r} "
                f"({len(bad)} malformed line(s) in this file; use on_bad_line='skip' / --on-bad-line skip to skip them)"
            )
        rep["bad_lines_skipped"] = int(len(bad))
        rep["bad_line_examples"] = [
            {"line": int(i) + 1, "reason": REASONS[reason[i]], "text": _line_text(data, ls, le, int(i))}
            for i in bad[:_MAX_EXAMPLES]
        ]
    keep = reason[gi] == 0
    out = {
        "subject": subj[keep].astype(np.int16),
        "activity": act[keep].astype(np.uint8),
        "timestamp": ts[keep],
        "xyz": xyz.astype(np.float32),
    }
    nonfinite = ~np.isfinite(out["xyz"]).all(1)
    if nonfinite.any():
        rep["non_finite_lines"] = int(nonfinite.sum())
        rep["non_finite_line_numbers"] = (gi[keep][nonfinite][:_MAX_EXAMPLES] + 1).tolist()
    rep["lines"] = int(n)
    rep["rows"] = int(keep.sum())
    return out, rep


def raw_files(folder: str | Path, device: str, sensor: str) -> list[tuple[int, Path]]:
    """(subject, path) of every raw file of a stream, sorted by subject."""
    return _stream_files(folder, device, sensor)[0]


def _stream_files(folder: str | Path, device: str, sensor: str) -> tuple[list[tuple[int, Path]], list[str]]:
    """The stream's files, and the names of every other file in its folder (another stream's file put
    there by mistake, or an unknown file): those are not read, and the report lists them."""
    d = Path(folder) / device / sensor
    if not d.is_dir():
        raise FileNotFoundError(f"missing channel: no folder {d}")
    out, others = [], []
    for p in d.iterdir():
        m = FILE_RE.match(p.name)
        if m and m.group(2) == sensor and m.group(3) == device:
            out.append((int(m.group(1)), p))
        else:
            others.append(p.name)
    if not out:
        raise FileNotFoundError(f"missing channel: no data_NNNN_{sensor}_{device}.txt files in {d}")
    return sorted(out), sorted(others)


def read_wisdm_raw_stream(
    folder: str | Path, device: str, sensor: str, on_bad_line: str = "raise"
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All files of one stream, concatenated in subject order (the packed archives' order)."""
    parts, per_file, empty = [], {}, []
    files, others = _stream_files(folder, device, sensor)
    for subject, p in files:
        try:
            st, r = parse_wisdm_raw_file(p, on_bad_line=on_bad_line, expected_subject=subject)
        except EmptyFileError:
            if on_bad_line == "raise":
                raise
            empty.append(str(p))  # skip mode: report the file instead of stopping
            continue
        parts.append(st)
        per_file[str(subject)] = {k: v for k, v in r.items() if k != "file"}
    if not parts:
        raise EmptyFileError(f"every raw file of {device} {sensor} in {folder} is empty: {empty}")
    st = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    rep: dict[str, Any] = {"folder": str(Path(folder) / device / sensor), "files": len(parts),
                           "rows_read": int(len(st["subject"]))}
    if empty:
        rep["empty_files_skipped"] = empty
    if others:
        rep["other_files_not_read"] = {"count": len(others), "names": others[:_MAX_EXAMPLES]}
    for key in ("bad_lines_skipped", "blank_lines_skipped", "non_finite_lines", "cr_characters_removed"):
        tot = sum(r.get(key, 0) for r in per_file.values())
        if tot:
            rep[key] = tot
    problems = {s: r for s, r in per_file.items() if set(r) - {"lines", "rows"}}
    if problems:
        rep["files_with_findings"] = problems
    return st, rep


# ---------------------------------------------------------------- writer (round trips, benchmarks)
def _java_floats(x: np.ndarray) -> np.ndarray:
    """Shortest float32 text, in scientific notation with 'E' below 1e-3 like Java's Float.toString."""
    s = np.asarray(x, np.float32).astype(str).astype(object)
    small = (np.abs(x) < 1e-3) & (x != 0)
    for i in np.flatnonzero(small.ravel()):
        s.flat[i] = np.format_float_scientific(np.float32(x.flat[i]), unique=True, exp_digits=1).replace("e", "E")
    return s


def write_wisdm_raw(st: dict[str, np.ndarray], folder: str | Path, device: str, sensor: str) -> list[Path]:
    """Write a stream as raw UCI files, one per subject (used by round-trip tests and benchmarks)."""
    d = Path(folder) / device / sensor
    d.mkdir(parents=True, exist_ok=True)
    vals = _java_floats(st["xyz"])
    codes = np.array(list(ACTIVITY_CODES))[st["activity"]]
    paths = []
    for s in np.unique(st["subject"]):
        idx = np.flatnonzero(st["subject"] == s)
        lines = [f"{int(s)},{a},{t},{x},{y},{z};\n"
                 for a, t, (x, y, z) in zip(codes[idx], st["timestamp"][idx].tolist(), vals[idx].tolist())]
        p = d / f"data_{int(s)}_{sensor}_{device}.txt"
        p.write_text("".join(lines))
        paths.append(p)
    return paths
