"""`jazbat profile`: complexity, artifact sizes and latency of several models side by side,
with the paper's published figures in their own columns. Output: Markdown, JSON and a PNG plot.

Complexity comes from ``jazbat_jax.complexity`` (analytic MACs in the paper's convention; XLA flops
with the scan body counted T times instead of once; ``memory_analysis`` temp bytes as the peak
activation-memory estimate of a batch-1 forward). Sizes are of the artifacts this package exports;
latency follows the paper's protocol (see ``conversion.runtime``).
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, Sequence

from conversion import onnx_native, runtime, tflite
from conversion.source import ExportSource
from jazbat_jax.machine import machine_info

KIND = {1: "1d", 3: "3d", 6: "6d"}


def published(source: ExportSource) -> dict[str, Any]:
    """The paper's figures for this model and input width (Tables I, III, IV, V; Sec. IV on-device)."""
    from jazbat_jax import paper

    kind = KIND.get(source.input_dim)
    if source.architecture == "sota_surrogate":
        table, device = paper.SOTA_PUBLISHED.get(kind, {}), paper.ON_DEVICE["sota"]
        fp32 = table.get("fp32_mb", 0) * 1e6 if table else None
        who = f"{paper.SOTA} as published (the surrogate is not [9])"
    else:
        table, device = paper.JAZBAT_PUBLISHED.get(kind, {}), paper.ON_DEVICE["jazbat"]
        fp32 = table.get("fp32_kb", 0) * 1e3 if table else None
        who = paper.PAPER
    peak = paper.TABLE_IV["peak_activation_floats"] * 4 if source.architecture == "jazbat_net" and kind == "1d" else None
    return {"source": who, "params": table.get("params"), "macs": table.get("macs"), "fp32_bytes": fp32,
            "peak_activation_bytes": peak,
            "tflite_bytes": device["tflite_mb"] * 1e6 if kind == "1d" else None,
            "device_median_ms": device["median_ms"] if kind == "1d" else None,
            "device_mean_ms": device["mean_ms"] if kind == "1d" else None,
            "device_sd_ms": device["sd_ms"] if kind == "1d" else None,
            "device": "Xiaomi 13T, TFLite FP32 + XNNPACK, 1×256×1" if kind == "1d" else None}


def profile_model(source: ExportSource, batches: Sequence[int] = (1, 32), runtimes=("jax", "tflite", "onnx"),
                  warmup: int = runtime.WARMUP, runs: int = runtime.RUNS) -> dict[str, Any]:
    from jazbat_jax import complexity

    cost = complexity.count(source.model, source.variables)
    xla = complexity.xla_crosscheck(source.model, source.variables, batch=1)
    onnx_bytes = onnx_native.to_onnx_bytes(source)
    tflite_b1 = tflite.to_tflite_bytes(source, batch_size=1)
    tflite_dyn = tflite.to_tflite_bytes(source, batch_size=1, quantization="dynamic_int8")
    latency = []
    for batch in batches:
        tfl = tflite_b1 if batch == 1 else (tflite.to_tflite_bytes(source, batch_size=batch) if "tflite" in runtimes else None)
        latency += [t.to_dict() for t in runtime.measure(source, batch, runtimes, tfl, onnx_bytes, warmup, runs)]
    if "tflite" in runtimes:
        x = runtime.windows(source, 1)
        latency.append(runtime.time_calls(runtime.tflite_call(tflite_dyn, x), "tflite_dynamic_int8", 1, warmup, runs,
                                          "XNNPACK, 1 thread").to_dict())
    return {
        "name": source.name,
        "label": source.sidecar()["label"],
        "origin": source.origin,
        "input_shape": [source.window, source.input_dim],
        "params_trainable": cost.trainable,
        "params_total": cost.total,
        "macs": cost.macs,
        "fp32_weight_bytes": cost.fp32_bytes,
        "layer_output_activations": cost.activations,
        "xla": xla,
        "artifact_bytes": {"tflite_fp32": len(tflite_b1), "tflite_dynamic_int8": len(tflite_dyn), "onnx": len(onnx_bytes)},
        "latency": latency,
        "paper": published(source),
    }


def build(sources: Sequence[ExportSource], batches: Sequence[int] = (1, 32), runs: int = runtime.RUNS,
          warmup: int = runtime.WARMUP, runtimes=("jax", "tflite", "onnx")) -> dict[str, Any]:
    return {
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "protocol": f"{warmup} warm-up + {runs} timed runs per cell; JAX jit (XLA CPU default threads), "
                    "TFLite (LiteRT) XNNPACK 1 thread, ONNX Runtime 1 thread",
        "models": [profile_model(s, batches, runtimes, warmup, runs) for s in sources],
    }


def _k(x: float | None, unit: str = "K", scale: float = 1e3, digits: int = 2) -> str:
    return "–" if x is None else f"{x / scale:.{digits}f}{unit}"


def _mark(ours: float, theirs: float | None, half_unit: float) -> str:
    """'†' where ours does not round to the published figure (``half_unit``: half its last digit)."""
    return "" if theirs is None or abs(ours - theirs) <= half_unit else " †"


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"Machine: {m['host_cpu']}, {m['cpu_count']} cores ({m['system']}). Protocol: {report['protocol']}.", ""]
    lines += ["| model | params trainable / total | paper params | MACs | paper MACs | XLA flops (scan ×T) | "
              "XLA temp mem (B=1) | paper peak act. | FP32 weights | TFLite FP32 | TFLite dyn-INT8 | ONNX | paper TFLite |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["models"]:
        p, a = r["paper"], r["artifact_bytes"]
        # Published precision: Jazbat-Net 28.36K / 6.96M, [9] 754K / 157.88M.
        params_half_unit = 500 if r["name"].startswith("sota") else 5
        lines.append(
            f"| {r['name']} | {r['params_trainable']:,} / {r['params_total']:,} | "
            f"{_k(p['params'])}{_mark(r['params_total'], p['params'], params_half_unit)} | {_k(r['macs'], 'M', 1e6)} | "
            f"{_k(p['macs'], 'M', 1e6)}{_mark(r['macs'], p['macs'], 5e3)} | "
            f"{_k(r['xla']['xla_flops_scan_corrected'], 'M', 1e6)} | {_k(r['xla']['memory_temp_bytes'], ' KB')} | "
            f"{_k(p.get('peak_activation_bytes'), ' KB')} | "
            f"{_k(r['fp32_weight_bytes'], ' KB')} | {_k(a['tflite_fp32'], ' KB')} | {_k(a['tflite_dynamic_int8'], ' KB')} | "
            f"{_k(a['onnx'], ' KB')} | {_k(p['tflite_bytes'], ' KB')} |")
    lines += ["", "| model | runtime | batch | median ms | mean ± SD ms | min / max ms | paper on-device median ms |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in report["models"]:
        for t in r["latency"]:
            paper_ms = r["paper"]["device_median_ms"] if t["runtime"] == "tflite" and t["batch"] == 1 else None
            lines.append(f"| {r['name']} | {t['runtime']} | {t['batch']} | {t['median_ms']:.3f} | "
                         f"{t['mean_ms']:.3f} ± {t['sd_ms']:.3f} | {t['min_ms']:.3f} / {t['max_ms']:.3f} | "
                         f"{'–' if paper_ms is None else f'{paper_ms:.2f}'} |")
    lines += ["",
              "† ours does not round to the published figure. Jazbat-Net: Table V's 3D/6D parameter counts are "
              "those of F = 2 / F = 5, a paper error (shared/spec/architecture.md §1.3). Surrogate: matched to [9]'s "
              "published complexity (+0.1% params, +0.8% MACs), not identical, since [9]'s layers are not public.",
              "sota_surrogate_* is S-754, a complexity-matched surrogate of the previous SOTA [9]; its 'paper' "
              "columns are [9]'s published figures. Paper latencies were measured on a phone, ours on this machine."]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [r["name"] for r in report["models"]]
    runtimes = sorted({t["runtime"] for r in report["models"] for t in r["latency"] if t["batch"] == 1})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(len(runtimes), 1)
    for i, rt in enumerate(runtimes):
        values = [next((t["median_ms"] for t in r["latency"] if t["runtime"] == rt and t["batch"] == 1), 0)
                  for r in report["models"]]
        ax1.bar([j + i * width for j in range(len(models))], values, width, label=rt)
    ax1.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models, rotation=20, ha="right")
    ax1.set_ylabel("median latency, batch 1 (ms)")
    ax1.set_yscale("log")
    ax1.legend()
    kinds = ["tflite_fp32", "tflite_dynamic_int8", "onnx"]
    width = 0.8 / len(kinds)
    for i, k in enumerate(kinds):
        ax2.bar([j + i * width for j in range(len(models))], [r["artifact_bytes"][k] / 1e3 for r in report["models"]],
                width, label=k)
    ax2.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models, rotation=20, ha="right")
    ax2.set_ylabel("artifact size (KB)")
    ax2.set_yscale("log")
    ax2.legend()
    fig.suptitle(f"{report['machine']['host_cpu']} ({report['machine']['cpu_count']} cores)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "profile.md", out_dir / "profile.json"
    md.write_text(render_markdown(report) + "\n")
    js.write_text(json.dumps(report, indent=2) + "\n")
    return [md, js, plot(report, out_dir / "profile.png")]
