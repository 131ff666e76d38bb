"""One example recording to try ``jazbat predict`` on: a real walk from the bundled Quiroz 2018 sample.

``sample_data/examples/quiroz2018_p02_happy_walk.csv`` is the watch's linear acceleration (m/s², gravity
removed, ~25 Hz, no timestamps) of participant 2's walk after happy-emotion induction, as the columns
``ax,ay,az``: the same rows as in ``quiroz2018_walking.npz``, written with enough digits to give back
the archive's float32 values exactly. Rebuild it with

    python -m jazbat_jax.data.example
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .paths import bundled_sample_root
from .quiroz import _EMOTION_CODE, read_quiroz

PARTICIPANT = 2
EMOTION = "happy"
COLUMNS = ("ax", "ay", "az")
FILE_NAME = f"quiroz2018_p{PARTICIPANT:02d}_{EMOTION}_walk.csv"


def example_recording() -> Path:
    """The path of the example recording shipped with the package (CSV, header ``ax,ay,az``)."""
    return bundled_sample_root() / "examples" / FILE_NAME


def example_walk(root: str | Path | None = None) -> np.ndarray:
    """The example walk's (samples, 3) float32 linear acceleration, read from a Quiroz archive
    (by default the bundled sample's)."""
    d = read_quiroz(root or bundled_sample_root() / "quiroz2018_emotion_walking")
    rows = (d["participant"] == PARTICIPANT) & (d["emotion"] == _EMOTION_CODE[EMOTION])
    if not rows.any():
        raise ValueError(f"{d['_path']}: no {EMOTION} walk of participant {PARTICIPANT}")
    return d["lin_acc"][rows]


def write_example_recording(path: str | Path, root: str | Path | None = None) -> Path:
    """Write the example walk as CSV; ``%.9g`` round-trips every float32 value."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, example_walk(root), delimiter=",", fmt="%.9g", header=",".join(COLUMNS), comments="")
    return path


if __name__ == "__main__":
    print(write_example_recording(sys.argv[1] if len(sys.argv) > 1 else example_recording()))
