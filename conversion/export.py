"""Export a model to every requested format, gate each artifact on parity, write a manifest.

Everything is built in a staging folder inside ``out_dir`` and checked there; only when every
artifact has passed are the files moved into ``out_dir`` and ``manifest.json`` written (last). On
any failure the staging folder is removed, so a failed export leaves nothing that looks valid.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from conversion import ALL_FORMATS, FORMATS  # noqa: F401  (FORMATS re-exported)
from conversion import manifest as manifest_mod
from conversion import onnx_native, parity, tf2onnx_path, tflite
from conversion.source import ExportSource
from jazbat_jax.files import write_atomically

# 'all' is everything practical; onnx-tf2onnx (the slow generic path) only on request.


def expand_formats(formats: Iterable[str] | str) -> tuple[str, ...]:
    formats = [formats] if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for f in formats:
        for g in ALL_FORMATS if f == "all" else (f,):
            if g not in FORMATS:
                raise ValueError(f"unknown format {g!r}; choose from {FORMATS + ('all',)}")
            if g not in out:
                out.append(g)
    return tuple(out)


def representative_windows(source: ExportSource, n: int = 128) -> tuple[np.ndarray, str]:
    """Calibration windows for full INT8, as the artifact takes them: the bundled real sample, else
    (said so) random windows."""
    real = parity.real_windows(source, n)
    if real is not None:
        return source.artifact_input(real.raw), real.origin
    return parity.random_windows(source, n, seed=1), "random normal windows (no real sample available)"


def export(
    source: ExportSource,
    out_dir: str | Path,
    formats: Iterable[str] | str = ("tflite", "onnx"),
    batch_size: int = 1,
    gru_unroll: int = tflite.DEFAULT_TFLITE_UNROLL,
    parity_windows: int = 64,
    real: parity.RealWindows | None | bool = True,
    fold_standardizer: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write the artifacts of ``formats`` and ``manifest.json`` into ``out_dir``; return the manifest.

    batch_size: the fixed batch of the TFLite / SavedModel files (the ONNX graph takes any batch).
    real: real windows for the gates (True = the checkpoint's test split when the source has one, else
    ``parity_windows`` windows of the bundled sample).
    fold_standardizer: True (default): the artifacts standardise their input and take raw sensor
    values; False: the bare model, which takes standardised windows.
    log: told of each phase as it starts ("[2/4] ONNX ...") and how long the previous one took, so that a
    user sees where a minutes-long export is.
    Raises ``parity.ParityError`` if an FP32 artifact disagrees with the JAX model.
    """
    source = dataclasses.replace(source, fold_standardizer=fold_standardizer)
    formats = expand_formats(formats)
    if "onnx" in formats and source.architecture not in onnx_native.ARCHITECTURES:
        # onnx_native builds only this package's two graphs: any other model takes the generic path.
        formats = [f for f in formats if f != "onnx"] + ([] if "onnx-tf2onnx" in formats else ["onnx-tf2onnx"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if real is True:  # a checkpoint's test split, else the bundled sample
        real = source.test_windows or parity.real_windows(source, parity_windows)
    stem = source.name
    signature = {"name": "x", "shape": list(source.input_shape(batch_size)), "dtype": "float32",
                 "values": source.input_values}
    staging = Path(tempfile.mkdtemp(prefix=".export-staging-", dir=out_dir))
    entries: list[tuple[Path, dict[str, Any]]] = []
    phases = [f for f in ("tflite", "tflite-int8", "tflite-full-int8", "onnx", "onnx-tf2onnx", "saved_model")
              if f in formats]
    clock = {"t": time.perf_counter()}

    def phase(fmt: str, what: str) -> None:
        if log is not None:
            now = time.perf_counter()
            took = f" (previous step {now - clock['t']:.0f} s)" if phases.index(fmt) else ""
            log(f"[{phases.index(fmt) + 1}/{len(phases)}] {what}{took}")
            clock["t"] = now

    try:
        def gate(runner, label: str, exact: bool) -> list[dict]:
            results = parity.check(source, runner, label, exact=exact, n=parity_windows, real=real)
            return [r.to_dict() for r in results]

        def stage_bytes(name: str, data: bytes) -> Path:
            path = staging / name
            path.write_bytes(data)
            return path

        if "tflite" in formats:
            phase("tflite", "TFLite FP32: jax2tf conversion, then the parity gate")
            path = stage_bytes(f"{stem}.tflite", tflite.to_tflite_bytes(source, batch_size, "fp32", gru_unroll=gru_unroll))
            data = path.read_bytes()
            entries.append((path, {
                "format": "tflite", "quantization": "fp32", "input_signature": signature, "gru_unroll": gru_unroll,
                "ops": tflite.builtin_op_names(data), "metadata": tflite.METADATA_NAME,
                "parity_gate": f"fp32: max |dp| <= {parity.FP32_ATOL:g} and identical argmax",
                "parity": gate(tflite.TFLiteRunner(data), path.name, exact=True),
            }))
        quants = [q for q, f in (("dynamic_int8", "tflite-int8"), ("int8", "tflite-full-int8")) if f in formats]
        if quants:
            reps, reps_origin = representative_windows(source) if "int8" in quants else (None, None)
            for quant in quants:
                phase("tflite-int8" if quant == "dynamic_int8" else "tflite-full-int8",
                      f"TFLite {'dynamic-range' if quant == 'dynamic_int8' else 'full'} INT8: conversion, then agreement")
                data = tflite.to_tflite_bytes(source, batch_size, quant, reps if quant == "int8" else None, gru_unroll)
                path = stage_bytes(f"{stem}.{quant}.tflite", data)
                data = path.read_bytes()
                entries.append((path, {
                    "format": "tflite", "quantization": quant, "input_signature": signature,
                    "gru_unroll": source.window if quant == "int8" else gru_unroll,
                    "ops": tflite.builtin_op_names(data), "metadata": tflite.METADATA_NAME,
                    "representative_windows": reps_origin if quant == "int8" else None,
                    "parity_gate": "report only (quantised): agreement and accuracy",
                    "parity": gate(tflite.TFLiteRunner(data), path.name, exact=False),
                }))
        if "onnx" in formats:
            phase("onnx", "ONNX: the graph from the parameter tree, then the parity gate")
            path = stage_bytes(f"{stem}.onnx", onnx_native.to_onnx_bytes(source))
            entries.append((path, {
                "format": "onnx", "exporter": "onnx_native (parameter tree, native GRU op)", "opset": onnx_native.OPSET,
                "input_signature": {**signature, "shape": ["batch", *signature["shape"][1:]]},
                "parity_gate": f"fp32: max |dp| <= {parity.FP32_ATOL:g} and identical argmax",
                "parity": gate(onnx_native.OnnxRunner(path.read_bytes()), path.name, exact=True),
            }))
        if "onnx-tf2onnx" in formats:
            phase("onnx-tf2onnx", "ONNX through tf2onnx (the slow path: minutes), then the parity gate")
            path = stage_bytes(f"{stem}.tf2onnx.onnx", tf2onnx_path.to_onnx_bytes(source, batch_size))
            entries.append((path, {
                "format": "onnx", "exporter": "jax2tf -> fully unrolled TFLite -> tf2onnx", "opset": tf2onnx_path.OPSET,
                "input_signature": signature,
                "parity_gate": f"fp32: max |dp| <= {parity.FP32_ATOL:g} and identical argmax",
                "parity": gate(onnx_native.OnnxRunner(path.read_bytes()), path.name, exact=True),
            }))
        if "saved_model" in formats:
            phase("saved_model", "TensorFlow SavedModel: jax2tf, then the parity gate")
            path = staging / f"{stem}.saved_model"
            tflite.to_saved_model(source, str(path), batch_size, gru_unroll)
            entries.append((path, {
                "format": "saved_model", "signature": "serving_default", "output_key": "probabilities",
                "sidecar": f"assets.extra/{tflite.SIDECAR_FILE}",
                "input_signature": signature, "gru_unroll": gru_unroll,
                "note": "one XlaCallModule op (jax2tf); needs TensorFlow to run",
                "parity_gate": f"fp32: max |dp| <= {parity.FP32_ATOL:g} and identical argmax",
                "parity": gate(_saved_model_runner(path, batch_size), path.name, exact=True),
            }))

        if log is not None:
            log(f"every file passed its gate (last step {time.perf_counter() - clock['t']:.0f} s); writing them")
        # Every gate passed: move into place, manifest last (an old manifest goes first).
        (out_dir / manifest_mod.MANIFEST).unlink(missing_ok=True)
        rows = []
        for path, fields in entries:
            final = out_dir / path.name
            if final.is_dir():
                shutil.rmtree(final)
            elif final.exists():
                final.unlink()
            path.rename(final)
            rows.append(manifest_mod.artifact_entry(final, out_dir, **fields))
        write_atomically(out_dir / f"{stem}.sidecar.json", (_json(source.sidecar()) + "\n").encode())
        manifest_mod.write_manifest(out_dir, source, rows)
        return manifest_mod.read_manifest(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _saved_model_runner(path: Path, batch_size: int):
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]

    def run(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return np.concatenate([serve(x=tf.constant(x[i : i + batch_size]))["probabilities"].numpy()
                               for i in range(0, len(x), batch_size)])

    return run


def _json(obj) -> str:
    import json

    return json.dumps(obj, indent=2)
