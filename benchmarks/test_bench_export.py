"""Batch-1 latency of the exported Jazbat-Net (F=1) against the paper's toolchain, in one run.

Runtimes: jitted JAX, our TFLite FP32 (XNNPACK, 1 thread), our native-GRU ONNX (ONNX Runtime,
1 thread), and the Keras 3 twin converted to TFLite with builtins (XNNPACK, 1 thread) as the
reference. All four compute the same function (the twin gets the Flax weights; checked below).
``test_latency_batch1``: the paper's protocol, 5 warm-up rounds and 100 timed rounds of one call;
absolute targets (ONNX ≤ 0.4 ms, TFLite ≤ 1.0 ms, JAX ≤ 0.6 ms) are recorded in extra_info, artifact
sizes in extra_info["exact"]. These medians are reported, not timing-gated: taken one runtime after
another, they drift with the machine. ``test_interleaved_timing`` is what the timing gate decides on
(benchmarks/gate.py): in alternating rounds (process CPU time, one CPU; benchmarks/interleave.py) it
times each runtime, the same runtime running the committed regression reference
(benchmarks/references.py), and the twin's TFLite. Two gates per runtime: against its regression
reference (a bound near 1, tight enough to catch a 25% slowdown) and against the twin (bounds under
0.2: a pass also means "at least 5× faster than the paper's toolchain", with confidence).

    .venv/bin/python -m pytest benchmarks/test_bench_export.py --benchmark-enable -m bench
"""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

import references  # noqa: E402
from keras_twin import build_keras_twin, copy_flax_weights, twin_to_tflite  # noqa: E402

from conversion import onnx_native, parity, runtime, tflite  # noqa: E402
from jazbat_jax import kernels  # noqa: E402

pytestmark = pytest.mark.bench

TARGET_MS = {"onnx": 0.4, "tflite": 1.0, "jax": 0.6}


@pytest.fixture(scope="module")
def setup():
    source = references.benchmark_source()
    twin = build_keras_twin(input_dim=1, num_classes=6, reduce_filters=6)
    copy_flax_weights(twin, source.variables)
    artifacts = {
        "tflite": tflite.to_tflite_bytes(source),
        "onnx": onnx_native.to_onnx_bytes(source),
        "keras_twin_tflite": twin_to_tflite(twin),
    }
    x = runtime.windows(source, 1)
    reference = np.asarray(source.probabilities_fn()(x))
    with kernels.pure_jax():  # like its reference, the committed export, which is the pure-JAX program
        jax_pure = runtime.jax_call(source, x)
    calls = {
        "jax": jax_pure,
        "jax_native": runtime.jax_call(source, x),  # the native GRU kernels, JAX's default on one CPU
        "tflite": runtime.tflite_call(artifacts["tflite"], x),
        "onnx": runtime.onnx_call(artifacts["onnx"], x),
        "keras_twin_tflite": runtime.tflite_call(artifacts["keras_twin_tflite"], x),
    }
    calls |= {f"{name}_reference": call for name, call in references.calls(references.load(), x).items()}
    for name, call in calls.items():  # all eight compute the same probabilities
        out = np.asarray(call())
        assert np.max(np.abs(out - reference)) <= parity.FP32_ATOL, name
    return artifacts, calls


@pytest.mark.ci  # part of the short CI benchmark pass
@pytest.mark.parametrize("name", ["keras_twin_tflite", "jax", "jax_native", "tflite", "onnx"])
def test_latency_batch1(benchmark, setup, name):
    artifacts, calls = setup
    benchmark.group = "export latency, batch 1"
    benchmark.extra_info["runtime"] = {"jax": "XLA CPU default threads, pure-JAX GRU",
                                       "jax_native": "XLA CPU default threads, native GRU kernels",
                                       "onnx": "ONNX Runtime, 1 thread"}.get(
        name, "LiteRT XNNPACK, 1 thread")
    if name in ("tflite", "onnx"):  # ours are byte-identical run to run; the twin's TFLite embeds Keras's
        benchmark.extra_info["exact"] = {"artifact_bytes": len(artifacts[name])}  # auto-numbered layer names
    benchmark.pedantic(calls[name], rounds=runtime.RUNS, iterations=1, warmup_rounds=runtime.WARMUP)
    if benchmark.stats is not None:  # None under --benchmark-disable
        median_ms = benchmark.stats.stats.median * 1e3
        if name in TARGET_MS:
            benchmark.extra_info["target_ms"] = TARGET_MS[name]
            benchmark.extra_info["meets_target"] = median_ms <= TARGET_MS[name]


def slowed(call, fraction: float):
    """``call`` doing ``fraction`` more work: one extra call every ``1 / fraction`` calls. A deliberate
    regression that scales with the machine's state like the real work does (a fixed sleep would not)."""
    debt = [0.0]

    def run():
        out = call()
        debt[0] += fraction
        while debt[0] >= 1:
            call()
            debt[0] -= 1
        return out

    return run


@pytest.mark.ci
def test_interleaved_timing(benchmark, setup):
    """The timing gate's measurement: every gated runtime, its references and copies of it slowed by 25% and
    50% here in alternating rounds; the gate must catch the slowed copies in every run."""
    from gate import load_gates, open_names
    from interleave import measure_until_decided

    _, calls = setup
    gates, settings = load_gates()
    timed = {name: calls[name] for name in dict.fromkeys(n for g in gates for n in (g.reference, g.candidate))}
    slowed_info = {}
    for candidate in dict.fromkeys(g.candidate for g in gates):
        for by in settings.slowdowns:
            name = f"{candidate} slowed {by:.0%}"
            timed[name] = slowed(calls[candidate], by)
            slowed_info[name] = {"of": candidate, "by": by}

    holder = {}
    load_before = os.getloadavg()
    benchmark.pedantic(lambda: holder.update(zip(("times", "looks"), measure_until_decided(
        timed, lambda times, looks: open_names(times, slowed_info, gates, settings.alpha_per_look),
        settings.chunk_rounds, settings.max_looks))), rounds=1, iterations=1)
    benchmark.group = "interleaved timing against the regression references and the Keras twin"
    benchmark.extra_info["interleaved"] = {
        "looks": holder["looks"],
        "chunk_rounds": settings.chunk_rounds,
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],  # 1/5/15 min, before and after
        "times": {n: [float(f"{x:.5g}") for x in v] for n, v in holder["times"].items()},  # seconds per call
        "slowed": slowed_info,
    }


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_export_time(benchmark, fmt):
    """Wall time of one export of Jazbat-Net 1D (trace + convert; parity gates are timed separately by `jazbat export`)."""
    source = references.benchmark_source()
    convert = {"tflite": tflite.to_tflite_bytes, "onnx": onnx_native.to_onnx_bytes}[fmt]
    benchmark.group = "export time, Jazbat-Net 1D"
    data = benchmark.pedantic(lambda: convert(source), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["exact"] = {"artifact_bytes": len(data)}
