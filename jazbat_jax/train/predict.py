"""Slide the model's window over one recording: class probabilities per window and a summary."""
from __future__ import annotations

import json
from pathlib import Path

import flax.linen as nn
import numpy as np

from jazbat_jax.data.core import Standardizer
from jazbat_jax.data.windows import acc_magnitude, cut_windows


def read_recording(path: str | Path, input_dim: int, mag_mode: str = "norm_minus_g") -> np.ndarray:
    """A recording as a (samples, input_dim) float32 signal.

    Accepted: a SEECS-layout CSV (``timestamp,ax,ay,az,gx,gy,gz``), or a ``.npy`` / ``.csv`` /
    ``.txt`` array (an optional one-line text header is skipped) with either ``input_dim``
    columns (used as they are) or, for a 1D model, 3 acceleration columns (turned into the
    model's magnitude input with ``mag_mode``, as the loaders do).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recording at {path}")
    if path.suffix == ".npy":
        a = np.load(path)
    else:
        with open(path) as f:
            first = f.readline().strip()
        if first == "timestamp,ax,ay,az,gx,gy,gz":
            from jazbat_jax.data.seecs import read_seecs_recording

            a = read_seecs_recording(path)[:, 1:]
            a = {1: a[:, :3], 3: a[:, :3], 6: a}.get(input_dim, a)
        else:
            skip = 0 if _is_numeric_row(first) else 1
            a = np.loadtxt(path, delimiter="," if "," in first else None, skiprows=skip, ndmin=2)
    a = np.asarray(a, np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.shape[1] == 3 and input_dim == 1:
        a = acc_magnitude(a, mag_mode)
    if a.shape[1] != input_dim:
        raise ValueError(f"{path}: {a.shape[1]} column(s), the model expects {input_dim} (or 3 acceleration columns for 1D)")
    if not np.isfinite(a).all():
        raise ValueError(f"{path}: contains NaN or infinite values")
    return a.astype(np.float32)


def _is_numeric_row(line: str) -> bool:
    try:
        [float(v) for v in line.replace(",", " ").split()]
        return bool(line)
    except ValueError:
        return False


def predict_recording(
    model: nn.Module,
    variables: dict,
    standardizer: Standardizer,
    signal: np.ndarray,
    class_names: list[str],
    step: int = 16,
    batch_size: int = 256,
) -> dict:
    """Per-window probabilities for every window of ``step`` samples' stride, plus a summary:
    the mean probability per class, the majority vote, and the class with the highest mean."""
    from jazbat_jax.train.loop import Evaluator, inference_state
    from jazbat_jax.train.sharding import DataParallel

    window = model.window
    if len(signal) < window:
        raise ValueError(f"the recording has {len(signal)} samples, fewer than one window ({window})")
    starts = np.arange(0, len(signal) - window + 1, step)
    x = cut_windows(signal, starts, window)
    dp = DataParallel.create()
    out = Evaluator(dp, batch_size)(inference_state(model, variables, dp), x, None, standardizer)
    prob = out["prob"]
    votes = np.bincount(prob.argmax(1), minlength=len(class_names))
    mean = prob.mean(0)
    return {
        "starts": starts,
        "prob": prob,
        "summary": {
            "windows": int(len(starts)),
            "window": int(window),
            "step": int(step),
            "predicted": class_names[int(mean.argmax())],
            "mean_probability": {c: float(p) for c, p in zip(class_names, mean)},
            "votes": {c: int(v) for c, v in zip(class_names, votes)},
        },
    }


def write_predictions(result: dict, class_names: list[str], path: str | Path) -> None:
    """``.json`` (summary + per-window rows) or ``.csv`` (one row per window)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        rows = [{"start": int(s), **{c: float(p) for c, p in zip(class_names, pr)}}
                for s, pr in zip(result["starts"], result["prob"])]
        path.write_text(json.dumps({"summary": result["summary"], "windows": rows}, indent=1))
    else:
        table = np.column_stack([result["starts"], result["prob"]])
        np.savetxt(path, table, delimiter=",", header="start," + ",".join(class_names), comments="",
                   fmt=["%d"] + ["%.6f"] * len(class_names))
