"""Latency with the paper's protocol: 5 warm-up runs, then 100 timed runs of one call each;
median, mean ± SD, min and max in milliseconds.

Runtimes: the jitted JAX forward (XLA CPU, its default threading), the LiteRT interpreter with the
XNNPACK delegate on 1 thread, ONNX Runtime on 1 intra-op thread. Every timed call includes only the
inference itself (set input, invoke, read output; for JAX the call plus ``block_until_ready``).
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable

import jax
import numpy as np

from conversion.source import ExportSource

WARMUP = 5
RUNS = 100


@dataclasses.dataclass
class Timing:
    runtime: str
    batch: int
    runs: int
    warmup: int
    median_ms: float
    mean_ms: float
    sd_ms: float
    min_ms: float
    max_ms: float
    threads: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        return (f"{self.runtime} batch {self.batch}: median {self.median_ms:.3f} ms, mean {self.mean_ms:.3f} ± "
                f"{self.sd_ms:.3f}, min {self.min_ms:.3f}, max {self.max_ms:.3f} ({self.runs} runs)")


def time_calls(call: Callable[[], Any], runtime: str, batch: int, warmup: int = WARMUP, runs: int = RUNS,
               threads: str = "") -> Timing:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return Timing(runtime, batch, runs, warmup, statistics.median(samples), statistics.fmean(samples),
                  statistics.stdev(samples) if runs > 1 else 0.0, min(samples), max(samples), threads)


def jit_call(fn: Callable[[jax.Array], jax.Array], x: np.ndarray) -> Callable[[], Any]:
    """``fn`` jitted on ``x`` (compiled before returning); each call waits for the result."""
    fn = jax.jit(fn)
    xj = jax.device_put(x)
    fn(xj).block_until_ready()
    return lambda: fn(xj).block_until_ready()


def jax_call(source: ExportSource, x: np.ndarray) -> Callable[[], Any]:
    """The jitted probabilities function on ``x`` (compiled before returning)."""
    return jit_call(source.probabilities_fn(), x)


def tflite_call(flatbuffer: bytes, x: np.ndarray, num_threads: int = 1) -> Callable[[], Any]:
    from conversion.tflite import TFLiteRunner

    runner = TFLiteRunner(flatbuffer, num_threads)
    if runner.batch_size != len(x):
        raise ValueError(f"the TFLite file has batch {runner.batch_size}; timing input has {len(x)}")
    return lambda: runner.invoke(x)


def onnx_call(model_bytes: bytes, x: np.ndarray, num_threads: int = 1) -> Callable[[], Any]:
    from conversion.onnx_native import OnnxRunner

    runner = OnnxRunner(model_bytes, num_threads)
    return lambda: runner.invoke(x)


def windows(source: ExportSource, batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(source.input_shape(batch)).astype(np.float32)


def measure(source: ExportSource, batch: int, runtimes=("jax", "tflite", "onnx"),
            tflite_bytes: bytes | None = None, onnx_bytes: bytes | None = None,
            warmup: int = WARMUP, runs: int = RUNS) -> list[Timing]:
    """Time ``source`` on each runtime at ``batch``; artifacts are converted here when not given
    (the TFLite file must have been exported with that batch size)."""
    from conversion import onnx_native, tflite

    x = windows(source, batch)
    out = []
    for runtime in runtimes:
        if runtime == "jax":
            out.append(time_calls(jax_call(source, x), "jax", batch, warmup, runs, "XLA CPU default"))
        elif runtime == "tflite":
            data = tflite_bytes or tflite.to_tflite_bytes(source, batch_size=batch)
            out.append(time_calls(tflite_call(data, x), "tflite", batch, warmup, runs, "XNNPACK, 1 thread"))
        elif runtime == "onnx":
            data = onnx_bytes or onnx_native.to_onnx_bytes(source)
            out.append(time_calls(onnx_call(data, x), "onnx", batch, warmup, runs, "ONNX Runtime CPU, 1 thread"))
        else:
            raise ValueError(f"unknown runtime {runtime!r}")
    return out
