"""Batch-1 latency of the exported Jazbat-Net (F=1) against the paper's toolchain, in one run.

Runtimes: jitted JAX, our TFLite FP32 (XNNPACK, 1 thread), our native-GRU ONNX (ONNX Runtime,
1 thread), and the Keras 3 twin converted to TFLite with builtins (XNNPACK, 1 thread) as the
reference. All four compute the same function (the twin gets the Flax weights; checked below).
Protocol: 5 warm-up rounds, 100 timed rounds of one call. Targets (issue 5): ONNX ≤ 0.4 ms,
TFLite ≤ 1.0 ms, JAX ≤ 0.6 ms, each ≥ 5× faster than the twin's TFLite measured in the same run.
The 5× ratio is asserted (same-run, machine-independent) on the *minimum* of the 100 runs, which
other processes on a shared machine can only inflate; the median ratio is printed next to it.
Absolute targets are recorded in extra_info. Artifact sizes go into extra_info["exact"].

    .venv/bin/python -m pytest benchmarks/test_bench_export.py --benchmark-enable -m bench
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

from keras_twin import build_keras_twin, copy_flax_weights, twin_to_tflite  # noqa: E402

from conversion import onnx_native, parity, runtime, tflite  # noqa: E402
from conversion.source import fresh_source, perturbed  # noqa: E402

pytestmark = pytest.mark.bench

TARGET_MS = {"onnx": 0.4, "tflite": 1.0, "jax": 0.6}
MIN_SPEEDUP = 5.0
MEDIANS: dict[str, float] = {}
MINIMA: dict[str, float] = {}


@pytest.fixture(scope="module")
def setup():
    source = perturbed(fresh_source("jazbat_net", "1d"), seed=3)
    twin = build_keras_twin(input_dim=1, num_classes=6, reduce_filters=6)
    copy_flax_weights(twin, source.variables)
    artifacts = {
        "tflite": tflite.to_tflite_bytes(source),
        "onnx": onnx_native.to_onnx_bytes(source),
        "keras_twin_tflite": twin_to_tflite(twin),
    }
    x = runtime.windows(source, 1)
    reference = np.asarray(source.probabilities_fn()(x))
    calls = {
        "jax": runtime.jax_call(source, x),
        "tflite": runtime.tflite_call(artifacts["tflite"], x),
        "onnx": runtime.onnx_call(artifacts["onnx"], x),
        "keras_twin_tflite": runtime.tflite_call(artifacts["keras_twin_tflite"], x),
    }
    for name, call in calls.items():  # all four compute the same probabilities
        out = np.asarray(call())
        assert np.max(np.abs(out - reference)) <= parity.FP32_ATOL, name
    return artifacts, calls


@pytest.mark.ci  # part of the short CI benchmark pass
@pytest.mark.parametrize("name", ["keras_twin_tflite", "jax", "tflite", "onnx"])
def test_latency_batch1(benchmark, setup, name):
    artifacts, calls = setup
    benchmark.group = "export latency, batch 1"
    benchmark.extra_info["runtime"] = {"jax": "XLA CPU default threads", "onnx": "ONNX Runtime, 1 thread"}.get(
        name, "LiteRT XNNPACK, 1 thread")
    if name in ("tflite", "onnx"):  # ours are byte-identical run to run; the twin's TFLite embeds Keras's
        benchmark.extra_info["exact"] = {"artifact_bytes": len(artifacts[name])}  # auto-numbered layer names
    benchmark.pedantic(calls[name], rounds=runtime.RUNS, iterations=1, warmup_rounds=runtime.WARMUP)
    if benchmark.stats is not None:  # None under --benchmark-disable
        median_ms = benchmark.stats.stats.median * 1e3
        MEDIANS[name] = median_ms
        MINIMA[name] = benchmark.stats.stats.min * 1e3
        if name in TARGET_MS:
            benchmark.extra_info["target_ms"] = TARGET_MS[name]
            benchmark.extra_info["meets_target"] = median_ms <= TARGET_MS[name]


@pytest.mark.ci
def test_speedup_over_keras_twin():
    if "keras_twin_tflite" not in MEDIANS or len(MEDIANS) < 2:
        pytest.skip("needs the latency benchmarks of this run (run with --benchmark-enable)")
    twin, twin_min = MEDIANS["keras_twin_tflite"], MINIMA["keras_twin_tflite"]
    lines = [f"{n}: median {m:.3f} ms ({twin / m:.1f}x faster than the Keras twin's TFLite, {twin:.3f} ms); "
             f"min {MINIMA[n]:.3f} ms ({twin_min / MINIMA[n]:.1f}x, twin {twin_min:.3f} ms)"
             for n, m in MEDIANS.items() if n != "keras_twin_tflite"]
    print("\n" + "\n".join(lines))
    slow = [n for n in MINIMA if n != "keras_twin_tflite" and twin_min / MINIMA[n] < MIN_SPEEDUP]
    assert not slow, f"less than {MIN_SPEEDUP}x faster than the Keras twin: " + "; ".join(lines)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_export_time(benchmark, fmt):
    """Wall time of one export of Jazbat-Net 1D (trace + convert; parity gates are timed separately by `jazbat export`)."""
    source = perturbed(fresh_source("jazbat_net", "1d"), seed=3)
    convert = {"tflite": tflite.to_tflite_bytes, "onnx": onnx_native.to_onnx_bytes}[fmt]
    benchmark.group = "export time, Jazbat-Net 1D"
    data = benchmark.pedantic(lambda: convert(source), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["exact"] = {"artifact_bytes": len(data)}
