"""The data contract shared by loaders, training, export and experiments.

A loader turns a source (WISDM, Quiroz 2018, SEECS-layout CSVs) into a ``WindowSet``;
``split_windows`` turns it into a ``Split``; a ``Standardizer`` fitted on the training part
travels with the model into evaluation, export and prediction.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass
class WindowSet:
    """Fixed-length windows cut inside contiguous recordings.

    x:          (N, T, F) float32 windows (may be a read-only strided view of the recordings).
    y:          (N,) int32 class index into ``class_names``.
    subject:    (N,) int32 subject / participant id.
    recording:  (N,) int32 id of the contiguous recording the window was cut from.
    start:      (N,) int64 index of the window's first sample inside its recording.
    class_names, channels: names of the classes and of the F input channels.
    input_spec: how those channels are computed from raw sensor columns (``inputs.InputSpec``).
    rate_hz:    nominal sampling rate, or None when unknown.
    report:     what the loader found, dropped and why (JSON-serialisable).
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    recording: np.ndarray
    start: np.ndarray
    class_names: tuple[str, ...]
    channels: tuple[str, ...]
    rate_hz: float | None = None
    source: str = ""
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_spec: Any = None  # an InputSpec: how the channels were computed from raw sensor columns

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: np.ndarray) -> "WindowSet":
        return dataclasses.replace(
            self,
            x=self.x[index],
            y=self.y[index],
            subject=self.subject[index],
            recording=self.recording[index],
            start=self.start[index],
        )


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """Per-channel z-score with statistics of the training part only."""

    mean: np.ndarray  # (F,)
    std: np.ndarray  # (F,)

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardizer":
        flat = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
        std = flat.std(axis=0)
        return cls(flat.mean(axis=0).astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> "Standardizer":
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))


@dataclasses.dataclass
class Split:
    """Index arrays into a WindowSet, plus a printable, saveable summary."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str
    seed: int
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
