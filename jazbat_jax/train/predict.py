"""Slide the model's window over one recording: class probabilities per window and a summary.

The recording's raw columns become the model's input through the input definition stored with the
model (``data.inputs.InputSpec``): the same function the loaders used on the training data.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import flax.linen as nn
import numpy as np

from jazbat_jax.data.core import Standardizer
from jazbat_jax.data.inputs import InputSpec
from jazbat_jax.data.windows import cut_windows


def input_spec_of(meta: dict) -> InputSpec:
    """The input definition stored in a checkpoint's meta."""
    if not meta.get("input"):
        raise ValueError(f"the checkpoint {meta.get('checkpoint', '')} stores no input definition (trained on windows "
                         "given in code, not by a loader): predict cannot know how to turn raw columns into its input")
    return InputSpec.from_dict(meta["input"])


# Appended to every "cannot read this file" error, so that the user learns what would work.
ACCEPTED_FORMATS = ("predict reads .csv / .txt (one row of numbers per sample, comma- or space-separated, an "
                    "optional first line of column names), .npy arrays, or SEECS CSV files; `jazbat predict --help` "
                    "describes them")


def _read_array(path: Path) -> np.ndarray:
    """The numbers of a .npy, SEECS-layout CSV (without its timestamps), or plain .csv / .txt file."""
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{path}: not a readable .npy array ({e})") from None
    try:
        # utf-8-sig: a byte-order mark (spreadsheet programs write one) is not part of the first field.
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline().strip()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file; {ACCEPTED_FORMATS}") from None
    if first == "timestamp,ax,ay,az,gx,gy,gz":
        from jazbat_jax.data.seecs import read_seecs_recording

        return read_seecs_recording(path)[:, 1:]
    if not first:
        raise ValueError(f"{path}: the first line is empty; {ACCEPTED_FORMATS}")
    if path.suffix.lower() == ".json" or first[0] in "{[":
        raise ValueError(f"{path}: a JSON file, not a recording format; {ACCEPTED_FORMATS}")
    fields = first.replace(",", " ").split()
    numeric = [_is_number(v) for v in fields]
    if all(numeric):
        skip = 0
    elif not any(numeric):  # a header: column names only
        skip = 1
    else:  # dropping it as a header would lose a sample silently; the same row further down is an error too
        raise ValueError(f"{path}, line 1: {first[:60]!r} mixes numbers and other text: a header line holds only "
                         "column names, a sample's line only numbers")
    try:
        # loadtxt warns (with a source line) when nothing follows the header; the check below says it in one line.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            a = np.loadtxt(path, delimiter="," if "," in first else None, skiprows=skip, ndmin=2,
                           encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as e:
        where = _first_bad_line(path, skip, len(fields))  # numpy counts rows after the header, from 0
        raise ValueError(f"{path}{where or f': cannot read it as rows of numbers ({e})'}; {ACCEPTED_FORMATS}") from None
    if not a.size:
        raise ValueError(f"{path}: no rows of numbers" + (f" after the header line {first[:40]!r}" if skip else "")
                         + f"; {ACCEPTED_FORMATS}")
    return a


def read_recording(path: str | Path, spec: InputSpec) -> np.ndarray:
    """A recording as the model's (samples, width) float32 input.

    Accepted columns: the raw columns of ``spec`` (ax, ay, az [, gx, gy, gz]), turned into the model's
    input by ``spec.from_raw`` after checking that the acceleration agrees with the gravity the model was
    trained with; or, for a 1D model, one column that already is its magnitude input.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recording at {path}")
    a = np.asarray(_read_array(path), np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or not len(a):
        raise ValueError(f"{path}: expected rows of samples, got an array of shape {a.shape}")
    with np.errstate(over="ignore"):
        if not np.isfinite(a.astype(np.float32)).all():  # 1e39 is finite in float64, infinite in float32
            raise ValueError(f"{path}: contains NaN, infinite or out-of-range values (beyond float32)")
    if a.shape[1] in (3, 6) and a.shape[1] >= len(spec.raw_columns):
        spec.check_gravity(a[:, :3], str(path))
        x = spec.from_raw(a)
    elif a.shape[1] == spec.width:
        x = a.astype(np.float32)  # a 1D model's magnitude input, given as it is
    else:
        raise ValueError(f"{path}: {a.shape[1]} column(s); the model ({spec.kind}) takes the raw columns "
                         f"{', '.join(spec.raw_columns)}" + (" or its one magnitude column" if spec.kind == "1d" else ""))
    return x


def _first_bad_line(path: Path, skip: int, width: int) -> str | None:
    """", line N: what is wrong" for the first line after the header that is not ``width`` numbers."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                fields = line.replace(",", " ").split()
                if number <= skip or not fields:
                    continue
                if not all(_is_number(v) for v in fields):
                    return f", line {number}: {line.strip()[:60]!r} is not all numbers"
                if len(fields) != width:
                    return f", line {number}: {len(fields)} values where the first line has {width}"
    except UnicodeDecodeError as e:
        return f": not UTF-8 text after offset {e.start}"
    return None


def _is_number(field: str) -> bool:
    try:
        float(field)
        return True
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
    from jazbat_jax.train.evaluate import predict_proba

    window = model.window
    if len(signal) < window:
        raise ValueError(f"the recording has {len(signal)} samples, fewer than one window of the model ({window})")
    starts = np.arange(0, len(signal) - window + 1, step)
    x = cut_windows(signal, starts, window)
    prob = predict_proba(model, variables, x, standardizer, batch_size)
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
