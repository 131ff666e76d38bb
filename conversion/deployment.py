"""What an exported file costs on a device besides its size: activation memory and time per operator.

Activation memory, one figure per runtime, each from the runtime itself:

* ONNX Runtime: the CPU arena's statistics that session profiling attaches to every node
  (``mem_in_use_peak``, ``mem_arena_held``); the activation peak is the peak in use during a run
  minus what was in use before its first node (the input and any pre-packed weights).
* TFLite (LiteRT): ai-edge-litert's Python interpreter exposes no arena size (its wrapper has no such
  method and its C++ symbols are not exported), so this is the process heap's growth (glibc
  ``mallinfo2``: in-use chunks plus mmapped blocks) across ``allocate_tensors()``: the tensor
  arenas of every subgraph (the GRU loop's body and condition have their own) plus kernel scratch
  buffers, measured with the builtin kernels and with XNNPACK (which also packs a copy of the weights).
* JAX: XLA's ``memory_analysis()`` temp bytes of the compiled batch-1 forward (``jazbat_jax.complexity``).

Time per operator: ONNX Runtime's session profiler on the batch-1 file: per node, the median of its
kernel time over the profiled runs; nodes map to model layers by their names (``<layer>/<Op>_<n>``,
set by ``conversion.onnx_native``). TFLite's op profiler is not reachable from ai-edge-litert's Python
API (neither ``Interpreter`` nor ``CompiledModel`` exposes a profiler), so TFLite has no per-op column.
"""
from __future__ import annotations

import ctypes
import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from conversion.source import ExportSource
from jazbat_jax.machine import load_average  # noqa: F401 - profile.py reads it from here

# Layer groups of each architecture, in forward order (node-name prefixes from onnx_native), with the
# names a reader knows them by.
LAYER_LABELS = {
    "standardize": "standardizer (x - mean) / std",
    "bigru": "BiGRU",
    "batchnorm": "BatchNorm",
    "module_1": "multi-scale module 1",
    "module_2": "multi-scale module 2",
    "module_3": "multi-scale module 3",
    "reduce": "reduction (1x1 conv + mean)",
    "head": "head (dense + softmax)",
    "block_1": "Inception block 1",
    "block_2": "Inception block 2",
    "block_3": "Inception block 3",
    "raw_dense_1x1": "raw 1x1 conv branch",
    "bigru_1": "BiGRU 1",
    "bigru_2": "BiGRU 2",
    "gap": "global mean over time",
    "fc1": "dense fc1",
}


def layer_of(node_name: str) -> str:
    """The model layer of an ONNX Runtime node: the prefix before '/', without the optimiser's
    'fused ' prefix (Gemm + Relu becomes 'fused fc1/Gemm_n'). KeyError for a name no layer claims."""
    prefix = node_name.split("/", 1)[0]
    prefix = prefix.removeprefix("fused ").strip()
    if prefix not in LAYER_LABELS:
        raise KeyError(f"ONNX node {node_name!r} belongs to no known layer; name it '<layer>/<op>' in onnx_native")
    return prefix


def onnx_profile(model_bytes: bytes, x: np.ndarray, warmup: int = 5, runs: int = 20) -> dict[str, Any]:
    """Run ONNX Runtime (1 thread, sequential) with its session profiler; per-node median kernel time
    over the last ``runs`` runs, grouped by layer and by operator type, and the arena statistics."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: np.asarray(x, np.float32)}
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    model_runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][warmup:]
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_node: dict[str, list[float]] = defaultdict(list)
    op_type: dict[str, str] = {}
    peaks, held, before = [], [], []
    for run in model_runs:
        inside = [e for e in kernels if run["ts"] <= e["ts"] <= run["ts"] + run["dur"]]
        for e in inside:
            name = e["name"].removesuffix("_kernel_time")
            per_node[name].append(float(e["dur"]))
            op_type[name] = e["args"]["op_name"]
        peaks.append(max(int(e["args"]["mem_in_use_peak"]) for e in inside))
        held.append(max(int(e["args"]["mem_arena_held"]) for e in inside))
        first = inside[0]["args"]
        before.append(int(first["mem_bytes_in_use"]) - int(first["mem_in_use_delta"]))
    nodes = [{"node": n, "op_type": op_type[n], "layer": layer_of(n), "median_us": statistics.median(d)}
             for n, d in per_node.items()]
    return {
        "runtime": "onnxruntime",
        "threads": "1 intra-op thread, sequential",
        "runs": len(model_runs),
        "end_to_end_median_us": statistics.median(float(r["dur"]) for r in model_runs),
        "nodes": nodes,
        "by_layer": _sum_by(nodes, "layer"),
        "by_op_type": _sum_by(nodes, "op_type"),
        "memory": {"peak_in_use_bytes": max(peaks), "in_use_before_first_node_bytes": min(before),
                   "activation_peak_bytes": max(peaks) - min(before), "arena_held_bytes": max(held),
                   "how": "ONNX Runtime CPU arena statistics from session profiling (mem_in_use_peak)"},
    }


def _sum_by(nodes: list[dict], key: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for n in nodes:
        out[n[key]] += n["median_us"]
    return dict(out)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _heap_in_use() -> int | None:
    """Bytes the C heap has handed out (glibc: in-use chunks + mmapped blocks); None off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def tflite_allocation_bytes(flatbuffer: bytes, xnnpack: bool = False) -> int | None:
    """Heap growth across ``allocate_tensors()`` of a fresh LiteRT interpreter (1 thread), with the
    builtin kernels or with the XNNPACK delegate; None where glibc's mallinfo2 is not available."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_content=flatbuffer, num_threads=1, experimental_op_resolver_type=resolver)
    before = _heap_in_use()
    interpreter.allocate_tensors()
    after = _heap_in_use()
    return None if before is None else after - before


def analytic_activations(source: ExportSource) -> dict[str, int]:
    """From ``jazbat_jax.complexity``: float32 bytes of every parameterised layer's output for one window,
    summed, and of the largest one (the network only; the standardizer adds nothing it counts)."""
    from jazbat_jax import complexity

    cost = complexity.count(source.model, source.variables)
    return {"sum_layer_outputs_bytes": cost.activations * complexity.FP32_BYTES,
            "largest_layer_output_bytes": max(l.activations for l in cost.layers) * complexity.FP32_BYTES}


def memory_profile(source: ExportSource, tflite_bytes: bytes | None, onnx_report: dict[str, Any] | None,
                   xla: dict[str, Any]) -> dict[str, Any]:
    """Activation memory of one model at batch 1, per runtime, next to the analytic sizes."""
    return {
        "analytic": analytic_activations(source),
        "jax_xla_temp_bytes": xla["memory_temp_bytes"],
        "onnxruntime": None if onnx_report is None else onnx_report["memory"],
        # None where the model has no TFLite file (the profile says why)
        "tflite_heap_growth_builtin_bytes": tflite_bytes and tflite_allocation_bytes(tflite_bytes, xnnpack=False),
        "tflite_heap_growth_xnnpack_bytes": tflite_bytes and tflite_allocation_bytes(tflite_bytes, xnnpack=True),
    }


