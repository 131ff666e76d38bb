"""How each model input channel is computed from raw sensor columns: the one definition that travels
with a model from the loader into checkpoints, ``predict``, ``evaluate`` and exported artifacts.

Raw columns are ``ax, ay, az`` (acceleration) and, for 6D, ``gx, gy, gz`` (rotation rate). The
model's channels are:

    1d   one magnitude of (ax, ay, az), computed with ``magnitude``
    3d   ax, ay, az as they are
    6d   ax, ay, az, gx, gy, gz as they are

``gravity`` says whether the raw acceleration includes gravity (WISDM, SEECS phones) or not
(Quiroz 2018's watch gives linear acceleration). A model trained on one cannot read the other:
a recording whose mean acceleration vector says otherwise is refused (``check_gravity``).
``gravity_removal`` says how gravity was taken out when a loader did it (``data.matching``), and
``resampled_from_hz`` the rate the data had before a loader resampled them to ``rate_hz``; both
are absent when nothing was done.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

G = 9.80665  # standard gravity, m/s^2
INPUT_KINDS = ("1d", "3d", "6d")
INPUT_WIDTH = {"1d": 1, "3d": 3, "6d": 6}
KIND_OF_WIDTH = {w: k for k, w in INPUT_WIDTH.items()}
# 1D magnitude of (ax, ay, az). Eq. (1) of the paper literally reads sqrt(ax²+ay²+az² − g), which is NaN
# below |a|² = g: "norm_minus_g" (|a| − g) is the default reading, "norm" (|a|) the one for gravity-free
# data, "paper_literal" the formula with its argument clamped at 0.
MAG_MODES = ("norm_minus_g", "norm", "paper_literal")
GRAVITY = ("included", "removed")
ACC_COLUMNS = ("ax", "ay", "az")
GYRO_COLUMNS = ("gx", "gy", "gz")
# Length of the mean acceleration vector that separates "includes gravity" from "linear". Gravity is the
# recording's constant part (about 9.8 m/s² while the device is held still, less when it turns); linear
# acceleration averages to about 0 however vigorous the movement. The mean of |a| cannot tell them apart:
# a jogging wrist's |a_lin| averages more than g. docs/data.md gives the values measured on both datasets.
GRAVITY_THRESHOLD = G / 4


def acc_magnitude(xyz: np.ndarray, mode: str = "norm_minus_g", g: float = G) -> np.ndarray:
    """The 1D input, shape (n, 1), from (n, 3) acceleration (see ``MAG_MODES``)."""
    sq = np.einsum("ij,ij->i", xyz, xyz, dtype=np.float64)
    if mode == "norm_minus_g":
        out = np.sqrt(sq) - g
    elif mode == "norm":
        out = np.sqrt(sq)
    elif mode == "paper_literal":
        out = np.sqrt(np.maximum(sq - g, 0.0))
    else:
        raise ValueError(f"mag_mode must be one of {MAG_MODES}, got {mode!r}")
    return out.astype(np.float32)[:, None]


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The model's input: which raw columns, which transformation, which units and rate."""

    kind: str  # 1d | 3d | 6d
    gravity: str  # included | removed (in the raw acceleration columns)
    magnitude: str | None = None  # 1d only: one of MAG_MODES
    accel_units: str = "m/s^2"
    gyro_units: str | None = None  # 6d only
    rate_hz: float | None = None  # nominal sampling rate of the training data
    gravity_removal: str | None = None  # how a loader removed gravity (None: as recorded)
    resampled_from_hz: float | None = None  # the rate before a loader resampled to rate_hz (None: not resampled)

    def __post_init__(self):
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"input kind must be one of {INPUT_KINDS}, got {self.kind!r}")
        if self.gravity not in GRAVITY:
            raise ValueError(f"gravity must be one of {GRAVITY}, got {self.gravity!r}")
        if (self.kind == "1d") != (self.magnitude is not None):
            raise ValueError("a magnitude mode is given for 1d inputs, and only for them")
        if self.magnitude is not None and self.magnitude not in MAG_MODES:
            raise ValueError(f"magnitude must be one of {MAG_MODES}, got {self.magnitude!r}")
        if self.gravity_removal is not None and self.gravity != "removed":
            raise ValueError("gravity_removal says how gravity was removed: give it only with gravity='removed'")

    @property
    def width(self) -> int:
        return INPUT_WIDTH[self.kind]

    @property
    def raw_columns(self) -> tuple[str, ...]:
        return ACC_COLUMNS + (GYRO_COLUMNS if self.kind == "6d" else ())

    @property
    def channels(self) -> tuple[str, ...]:
        if self.kind == "1d":
            return (f"acc_{self.magnitude}",)
        return self.raw_columns

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        """The model's (n, width) float32 input from (n, 3 or 6) raw columns (ax, ay, az[, gx, gy, gz])."""
        raw = np.asarray(raw)
        if raw.ndim != 2 or raw.shape[1] < len(self.raw_columns):
            raise ValueError(f"need raw columns {', '.join(self.raw_columns)}, got an array of shape {raw.shape}")
        if self.kind == "1d":
            return acc_magnitude(raw[:, :3], self.magnitude)
        return np.ascontiguousarray(raw[:, : self.width], np.float32)

    def check_gravity(self, acc: np.ndarray, where: str = "the recording") -> None:
        """Refuse acceleration whose constant part contradicts ``gravity`` (linear vs gravity-including):
        the length of its mean vector, |mean a|, is about g with gravity and about 0 without."""
        acc = np.asarray(acc, np.float64)[:, :3]
        dc = float(np.linalg.norm(acc.mean(axis=0))) if len(acc) else 0.0
        includes = dc > GRAVITY_THRESHOLD
        if includes and self.gravity == "removed":
            raise ValueError(f"{where}: |mean a| is {dc:.2f} m/s², so its acceleration includes gravity, but this "
                             "model was trained on gravity-free linear acceleration; give linear acceleration"
                             + (f" ({self.gravity_removal})" if self.gravity_removal else ""))
        if not includes and self.gravity == "included":
            raise ValueError(f"{where}: |mean a| is {dc:.2f} m/s², so its acceleration is gravity-free, but this "
                             "model was trained on acceleration that includes gravity; give the raw accelerometer")

    def describe(self) -> str:
        """One line for help texts, reports and artifact metadata."""
        gravity = "including gravity" if self.gravity == "included" else "gravity removed (linear acceleration)"
        if self.gravity_removal:
            gravity = f"gravity removed ({self.gravity_removal})"
        if self.kind == "1d":
            what = f"{self.magnitude} of (ax, ay, az) in {self.accel_units}, {gravity}"
        else:
            what = f"{', '.join(self.raw_columns)}; acceleration in {self.accel_units}, {gravity}"
            if self.gyro_units:
                what += f"; rotation rate in {self.gyro_units}"
        rate = f" at {self.rate_hz:g} Hz" if self.rate_hz else ""
        if self.resampled_from_hz:
            rate += f" (resampled from {self.resampled_from_hz:g} Hz)"
        return f"{self.kind}: {what}{rate}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("gravity_removal", "resampled_from_hz"):  # absent when unused: older models' metadata stays as it was
            if d[k] is None:
                del d[k]
        return {**d, "raw_columns": list(self.raw_columns), "channels": list(self.channels),
                "description": self.describe()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})
