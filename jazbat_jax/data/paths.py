"""Where data live: ../shared/data for developers and CI, else the bundled real sample."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("wisdm2019", "quiroz2018_emotion_walking")


def bundled_sample_root() -> Path:
    """The small real sample shipped inside the package (same layout as ../shared/data)."""
    return Path(__file__).resolve().parents[1] / "sample_data"


def shared_data_root() -> Path | None:
    """``$JAZBAT_DATA_ROOT`` if set, else ``../shared/data`` next to the repository, if present."""
    env = os.environ.get("JAZBAT_DATA_ROOT")
    cands = [Path(env)] if env else []
    cands.append(REPO_ROOT.parent / "shared" / "data")
    for c in cands:
        if any((c / s).is_dir() for s in SOURCES):
            return c
    return None


def data_root() -> Path:
    """The full data when available, otherwise the bundled sample."""
    return shared_data_root() or bundled_sample_root()
