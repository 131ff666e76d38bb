"""Build the bundled real sample (``jazbat_jax/sample_data``) from the full packed archives.

    python -m jazbat_jax.data.sample ../shared/data jazbat_jax/sample_data

WISDM: watch accel+gyro of 6 clean 20-Hz subjects with all 18 activities, phone accel+gyro of 2
of them; each activity block keeps its first ``WISDM_ROWS_PER_BLOCK`` rows (64 s at 20 Hz, 33
windows of 256 at step 32). Quiroz: 12 participants (4 per induction condition), each walk
keeps its first ``QUIROZ_ROWS_PER_WALK`` rows (~82 s, 113 windows at step 16). Rows are copied
unchanged, in the same archive layout, so every loader runs on them unchanged.

``wisdm2019_defects/`` holds two known defects as real rows, so that their handling is tested
without the full data: watch accel+gyro of subject 1649, blocks M (kicking, whose last 1,160
rows copy the start of O) and O (catch), complete; and the phone-accel supplement rows of
subject 1629 (the session recorded twice), the first ``DEFECT_ROWS_PER_RUN`` rows of each of its
8 runs, with their ``block_complete`` flags. Its main phone-accel archive is empty, as the raw
1629 file is missing from the full data.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

WISDM_WATCH_SUBJECTS = (1600, 1604, 1606, 1611, 1612, 1615)
WISDM_PHONE_SUBJECTS = (1600, 1604)
WISDM_ROWS_PER_BLOCK = 1280
QUIROZ_PER_CONDITION = 4
QUIROZ_ROWS_PER_WALK = 2048
DEFECT_ROWS_PER_RUN = 800


def _first_rows(keys: list[np.ndarray], limit: int) -> np.ndarray:
    """Mask keeping the first ``limit`` rows of every run of equal keys."""
    n = len(keys[0])
    brk = np.zeros(n, bool)
    brk[0] = True
    for k in keys:
        brk[1:] |= k[1:] != k[:-1]
    run_start = np.maximum.accumulate(np.where(brk, np.arange(n), 0))
    return (np.arange(n) - run_start) < limit


def build_wisdm(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for device, subjects in (("watch", WISDM_WATCH_SUBJECTS), ("phone", WISDM_PHONE_SUBJECTS)):
        for sensor in ("accel", "gyro"):
            name = f"wisdm2019_{device}_{sensor}.npz"
            with np.load(src / name) as z:
                d = {k: z[k] for k in z.files}
            keep = np.isin(d["subject"], subjects)
            keep &= _first_rows([d["subject"], d["activity"]], WISDM_ROWS_PER_BLOCK)
            out = {k: d[k][keep] for k in ("subject", "activity", "timestamp", "xyz")}
            fs, fc = np.unique(out["subject"], return_counts=True)
            out.update(activity_codes=d["activity_codes"], file_subjects=fs.astype(np.int16),
                       file_row_start=(np.cumsum(fc) - fc).astype(np.int64), file_row_count=fc.astype(np.int64))
            np.savez_compressed(dst / name, **out)


def quiroz_participants(src: Path) -> list[int]:
    with np.load(src / "quiroz2018_walking.npz") as z:
        mp, mc = z["meta_participant"], z["meta_condition"]
    chosen = []
    for prefix in ("Mo", "Mu", "Mw"):  # balance the three induction conditions
        ids = sorted(int(p) for p, c in zip(mp, mc) if c.startswith(prefix))
        chosen += ids[:QUIROZ_PER_CONDITION]
    return sorted(chosen)


def build_quiroz(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    with np.load(src / "quiroz2018_walking.npz") as z:
        d = {k: z[k] for k in z.files}
    parts = quiroz_participants(src)
    keep = np.isin(d["participant"], parts) & _first_rows([d["participant"], d["segment"]], QUIROZ_ROWS_PER_WALK)
    out = {k: v[keep] for k, v in d.items() if not k.startswith("meta_")}
    mk = np.isin(d["meta_participant"], parts)
    out.update({k: v[mk] for k, v in d.items() if k.startswith("meta_")})
    np.savez_compressed(dst / "quiroz2018_walking.npz", **out)


def build_defects(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    keys = ("subject", "activity", "timestamp", "xyz")
    for sensor in ("accel", "gyro"):
        name = f"wisdm2019_watch_{sensor}.npz"
        with np.load(src / name) as z:
            d = {k: z[k] for k in z.files}
        keep = (d["subject"] == 1649) & np.isin(d["activity"], [12, 13])  # M, O
        out = {k: d[k][keep] for k in keys}
        n = int(keep.sum())
        np.savez_compressed(dst / name, **out, activity_codes=d["activity_codes"], file_subjects=np.int16([1649]),
                            file_row_start=np.int64([0]), file_row_count=np.int64([n]))
    with np.load(src / "wisdm2019_phone_accel_supplement_ABCM.npz") as z:
        d = {k: z[k] for k in z.files}
    m = d["subject"] == 1629
    t, a = d["timestamp"], d["activity"]
    # runs: a new run at every activity change or backward clock step (the second copy starts over)
    brk = np.r_[True, (a[1:] != a[:-1]) | (np.diff(t) < 0) | (d["subject"][1:] != d["subject"][:-1])]
    run_start = np.maximum.accumulate(np.where(brk, np.arange(len(t)), 0))
    keep = m & ((np.arange(len(t)) - run_start) < DEFECT_ROWS_PER_RUN)
    np.savez_compressed(dst / "wisdm2019_phone_accel_supplement_ABCM.npz",
                        **{k: d[k][keep] for k in (*keys, "block_complete")}, activity_codes=d["activity_codes"])
    with np.load(src / "wisdm2019_phone_accel.npz") as z:
        np.savez_compressed(dst / "wisdm2019_phone_accel.npz", subject=np.zeros(0, np.int16),
                            activity=np.zeros(0, np.uint8), timestamp=np.zeros(0, np.int64),
                            xyz=np.zeros((0, 3), np.float32), activity_codes=z["activity_codes"],
                            file_subjects=np.zeros(0, np.int16), file_row_start=np.zeros(0, np.int64),
                            file_row_count=np.zeros(0, np.int64))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    src, dst = Path(argv[0]), Path(argv[1])
    build_wisdm(src / "wisdm2019", dst / "wisdm2019")
    build_quiroz(src / "quiroz2018_emotion_walking", dst / "quiroz2018_emotion_walking")
    build_defects(src / "wisdm2019", dst / "wisdm2019_defects")


if __name__ == "__main__":
    main()
