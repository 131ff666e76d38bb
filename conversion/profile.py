"""`jazbat profile`: complexity, artifact sizes, activation memory and latency of several models side
by side, with the paper's published figures in their own columns; with ``ops``, the time per operator
and per layer of the batch-1 ONNX file. Output: Markdown, JSON and a PNG plot.

Complexity comes from ``jazbat_jax.complexity`` (analytic MACs in the paper's convention; XLA flops
with the scan body counted T times instead of once; ``memory_analysis`` temp bytes of a batch-1
forward). Sizes are of the artifacts this package exports (standardizer folded in, the default);
activation memory and per-operator time come from ``conversion.deployment``; latency follows the
paper's protocol (see ``conversion.runtime``).
"""
from __future__ import annotations

import datetime
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from conversion import deployment, onnx_native, runtime, tflite
from conversion.source import ExportSource, fresh_source, load_source, perturbed
from jazbat_jax.machine import machine_info

KIND = {1: "1d", 3: "3d", 6: "6d"}
OP_PROFILE_RUNS = 20  # ONNX Runtime profiled runs per model (after the warm-up runs)
PARITY_WINDOWS = 32  # random (and real, when available) windows per parity gate of a profiled file


def display_name(name: str) -> str:
    """'jazbat_net_1d' -> 'Jazbat-Net 1D', 'sota_surrogate_1d' -> 'S-754 surrogate 1D'."""
    for prefix, label in (("jazbat_net_", "Jazbat-Net"), ("sota_surrogate_", "S-754 surrogate")):
        if name.startswith(prefix):
            return f"{label} {name[len(prefix):].upper()}"
    return name


def published(source: ExportSource) -> dict[str, Any]:
    """The paper's figures for this model and input width (Tables I, III, IV, V; Sec. IV on-device); for
    a published baseline, its paper's parameter count where it states one; nothing for other models."""
    from jazbat_jax import baselines, paper

    kind = KIND.get(source.input_dim)
    none = {"source": None, "params": None, "macs": None, "fp32_bytes": None, "peak_activation_bytes": None,
            "tflite_bytes": None, "device_median_ms": None, "device_mean_ms": None, "device_sd_ms": None,
            "device": None}
    if source.architecture in baselines.PUBLISHED:
        return {**none, **baselines.PUBLISHED[source.architecture]}
    if source.architecture not in ("jazbat_net", "sota_surrogate"):
        return none
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


def _reason(e: BaseException) -> str:
    """One line for a row: why a runtime could not take the model."""
    text = " ".join(str(e).split()) or type(e).__name__
    if "TFL_DYNAMIC_UPDATE_SLICE" in text:  # the known case, said plainly
        return ("ONNX Runtime cannot run the ONNX Loop tf2onnx makes of a rolled lax.scan (a TFLite "
                "DYNAMIC_UPDATE_SLICE inside it); on the generic path only the package's BiGRU is unrolled")
    return f"{type(e).__name__}: {text[:240]}"


def _export(source: ExportSource, make, kind: str) -> tuple[bytes | None, list[dict] | None, str | None]:
    """(file, its parity results, None) or (None, None, the one-line reason it could not be made or failed
    its gate). ``kind``: "exact" (FP32: the parity gate) or "report" (quantised: agreement reported)."""
    from conversion import parity

    try:
        data = make()
        runner = tflite.TFLiteRunner(data) if kind != "onnx" else onnx_native.OnnxRunner(data)
        results = parity.check(source, runner, source.name, exact=kind != "report", n=PARITY_WINDOWS)
        return data, [r.to_dict() for r in results], None
    except Exception as e:  # a converter's or runtime's own error, or the parity gate: a reason in the row
        return None, None, _reason(e)


def onnx_bytes(source: ExportSource) -> bytes:
    """ONNX of a model: built from the parameter tree for Jazbat-Net and S-754 (``onnx_native``), the generic
    jax2tf → TFLite → tf2onnx path for any other model."""
    if source.architecture in onnx_native.ARCHITECTURES:
        return onnx_native.to_onnx_bytes(source)
    from conversion import tf2onnx_path

    return tf2onnx_path.to_onnx_bytes(source)


def profile_model(source: ExportSource, batches: Sequence[int] = (1, 32), runtimes=("jax", "tflite", "onnx"),
                  warmup: int = runtime.WARMUP, runs: int = runtime.RUNS, ops: bool = False) -> dict[str, Any]:
    """One model's row: complexity, sizes, activation memory, latency; with ``ops``, the per-operator
    ONNX Runtime profile of the batch-1 file. Every exported file passes the FP32 parity gate against the
    JAX model first; a runtime that cannot convert the model (or whose file fails the gate) gets a one-line
    reason in ``unavailable`` instead of figures."""
    from jazbat_jax import complexity

    cost = complexity.count(source.model, source.variables)
    xla = complexity.xla_crosscheck(source.model, source.variables, batch=1)
    tflite_b1, parity_fp32, tflite_why = _export(source, lambda: tflite.to_tflite_bytes(source, batch_size=1), "exact")
    tflite_dyn, parity_dyn, dyn_why = _export(
        source, lambda: tflite.to_tflite_bytes(source, batch_size=1, quantization="dynamic_int8"), "report")
    onnx, parity_onnx, onnx_why = _export(source, lambda: onnx_bytes(source), "onnx")
    unavailable = {k: why for k, why in (("tflite", tflite_why), ("tflite_dynamic_int8", dyn_why), ("onnx", onnx_why))
                   if why}
    latency = []
    for batch in batches:
        usable = [rt for rt in runtimes if rt not in unavailable]
        tfl = tflite_b1 if batch == 1 else None
        if batch != 1 and "tflite" in usable:
            tfl, _, why = _export(source, lambda: tflite.to_tflite_bytes(source, batch_size=batch), "exact")
            if why:
                unavailable[f"tflite_batch_{batch}"] = why
                usable.remove("tflite")
        latency += [t.to_dict() for t in runtime.measure(source, batch, usable, tfl, onnx, warmup, runs)]
    if "tflite" in runtimes and tflite_dyn is not None:
        x = runtime.windows(source, 1)
        latency.append(runtime.time_calls(runtime.tflite_call(tflite_dyn, x), "tflite_dynamic_int8", 1, warmup, runs,
                                          "XNNPACK, 1 thread").to_dict())
    # The ONNX profile's arena statistics are the ONNX Runtime memory figure, so it always runs (a few runs
    # without --ops, just for the memory). Its per-layer table needs onnx_native's layer names.
    op_profile = None
    if onnx is not None and source.architecture in onnx_native.ARCHITECTURES:
        op_profile = deployment.onnx_profile(onnx, runtime.windows(source, 1), warmup=warmup,
                                             runs=OP_PROFILE_RUNS if ops else 2)
    return {
        "name": source.name,
        "architecture": source.architecture,
        "display_name": display_name(source.name),
        "label": source.sidecar()["label"],
        "input_values": source.input_values,
        "origin": source.origin,
        "input_shape": [source.window, source.input_dim],
        "params_trainable": cost.trainable,
        "params_total": cost.total,
        "macs": cost.macs,
        "macs_unknown_layers": list(cost.unknown),
        "fp32_weight_bytes": cost.fp32_bytes,
        "layer_output_activations": cost.activations,
        "xla": xla,
        "artifact_bytes": {"tflite_fp32": _len(tflite_b1), "tflite_dynamic_int8": _len(tflite_dyn), "onnx": _len(onnx)},
        "parity": {"tflite_fp32": parity_fp32, "tflite_dynamic_int8": parity_dyn, "onnx": parity_onnx},
        "unavailable": unavailable,
        "latency": latency,
        "memory": deployment.memory_profile(source, tflite_b1, op_profile, xla),
        "ops": {"onnxruntime": op_profile} if ops and op_profile else None,
        "paper": published(source),
    }


def _len(data: bytes | None) -> int | None:
    return None if data is None else len(data)


def build(sources: Sequence[ExportSource], batches: Sequence[int] = (1, 32), runs: int = runtime.RUNS,
          warmup: int = runtime.WARMUP, runtimes=("jax", "tflite", "onnx"), ops: bool = False,
          command: str | None = None) -> dict[str, Any]:
    """The report of ``jazbat profile``; ``command`` is recorded as given (default: this process's argv)."""
    return {
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command or shlex.join(sys.argv),
        "machine": machine_info(),
        "load_average_start": deployment.load_average(),
        "protocol": f"{warmup} warm-up + {runs} timed runs per cell; JAX jit (XLA CPU default threads), "
                    "TFLite (LiteRT) XNNPACK 1 thread, ONNX Runtime 1 thread",
        "models": [profile_model(s, batches, runtimes, warmup, runs, ops) for s in sources],
        "load_average_end": deployment.load_average(),
    }


def source_of(spec: str) -> ExportSource:
    """The model a profile spec names: a checkpoint path (run folder, its checkpoints/ or an epoch's
    folder; the best checkpoint, as trained), or "arch[:input]" (e.g. "jazbat_net:1d", "deepconvlstm",
    "mypkg.models:tiny:3d", "my_model.py:build") freshly initialised."""
    if Path(spec).exists():
        return load_source(spec)
    arch, kind = split_spec(spec)
    # A fresh init has zero biases and identity BatchNorm, which the TFLite converter folds
    # away; perturbed weights give the artifact sizes a trained model will have.
    return perturbed(fresh_source(arch, kind))


def split_spec(spec: str) -> tuple[str, str]:
    """"arch[:input]" -> (arch, input): the architecture may be a user's "package.module:factory" or
    "path/file.py:factory" (jazbat_jax.architectures), the input 1d (default), 3d or 6d."""
    from jazbat_jax.data.inputs import INPUT_WIDTH

    arch, _, last = spec.rpartition(":")
    if arch and last.lower() in INPUT_WIDTH:
        return arch, last.lower()
    return spec, "1d"


def profile_models(models: list[str], out_dir: Path, runs: int, warmup: int) -> Path:
    """Profile models (``source_of`` specs: "arch:input" with perturbed fresh weights, or checkpoint
    paths) at batch 1, operators included; write profile.{json,md,png} to ``out_dir``; return the JSON path."""
    sources = [source_of(spec) for spec in models]
    command = f"conversion.profile.profile_models({list(models)!r}, runs={runs}, warmup={warmup})"
    report = build(sources, batches=(1,), runs=runs, warmup=warmup, ops=True, command=command)
    write(report, out_dir)
    return Path(out_dir) / "profile.json"


def _k(x: float | None, unit: str = "K", scale: float = 1e3, digits: int = 2) -> str:
    return "–" if x is None else f"{x / scale:.{digits}f}{unit}"


def _mark(ours: float, theirs: float | None, half_unit: float) -> str:
    """'†' where ours does not round to the published figure (``half_unit``: half its last digit)."""
    return "" if theirs is None or abs(ours - theirs) <= half_unit else " †"


def _table(rows: list[list[Any]], headers: list[str], align: Sequence[str] | None = None) -> list[str]:
    from tabulate import tabulate

    return tabulate(rows, headers, tablefmt="github", colalign=align, disable_numparse=True).splitlines()


def _kb(x: float | None) -> str:
    return "–" if x is None else f"{x / 1e3:,.1f} KB"


def render_markdown(report: dict[str, Any]) -> str:
    from jazbat_jax.machine import busy

    m = report["machine"]
    load, load_end = report.get("load_average_start"), report.get("load_average_end")
    lines = [f"Machine: {m['host_cpu']}, {m['cpu_count']} cores ({m['system']}); created {report['created_utc']}"
             + (f"; load average (1/5/15 min) {load} at the start, {load_end} at the end" if load else "") + ".",
             *(["**Warning: the machine was busy** (load above the cores' share): other work competed with these "
                "timings; read them as upper bounds and compare only within this report.", ""]
               if load and busy(load, load_end, m.get("cpu_count")) else []),
             *([f"Command: `{report['command']}`."] if report.get("command") else []),
             f"Protocol: {report['protocol']}.", ""]
    rows = []
    for r in report["models"]:
        p, a = r["paper"], r["artifact_bytes"]
        # Published precision: Jazbat-Net 28.36K / 6.96M, [9] 754K / 157.88M.
        params_half_unit = 500 if r["name"].startswith("sota") else 5
        rows.append([
            r["name"], f"{r['params_trainable']:,} / {r['params_total']:,}",
            f"{_k(p['params'])}{_mark(r['params_total'], p['params'], params_half_unit)}", _k(r["macs"], "M", 1e6),
            f"{_k(p['macs'], 'M', 1e6)}{_mark(r['macs'], p['macs'], 5e3)}",
            _k(r["xla"]["xla_flops_scan_corrected"], "M", 1e6), _k(r["xla"]["memory_temp_bytes"], " KB"),
            _k(p.get("peak_activation_bytes"), " KB"), _k(r["fp32_weight_bytes"], " KB"), _k(a["tflite_fp32"], " KB"),
            _k(a["tflite_dynamic_int8"], " KB"), _k(a["onnx"], " KB"), _k(p["tflite_bytes"], " KB")])
    lines += _table(rows, ["model", "params trainable / total", "paper params", "MACs", "paper MACs",
                           "XLA flops (scan ×T)", "XLA temp mem (B=1)", "paper peak act.", "FP32 weights (params × 4 B)",
                           "TFLite FP32", "TFLite dyn-INT8", "ONNX", "paper TFLite"], ["left"] + ["right"] * 12)
    lines += ["", "KB = 1,000 bytes, as in `jazbat summary`; FP32 weights count every parameter, trainable or not "
                  "(BatchNorm statistics), at 4 bytes."]
    lines += ["", *_macs_comparison(report)]
    for r in report["models"]:
        for rt, why in (r.get("unavailable") or {}).items():
            lines.append(f"- **{display_name(r['name'])}, {rt}: not available**: {why}")
    if any(r.get("memory") for r in report["models"]):
        lines += ["", "Activation memory, batch 1 (KB = 1,000 bytes; how each figure is obtained: below the table):", ""]
        rows = []
        for r in report["models"]:
            mem = r.get("memory")
            if not mem:
                continue
            ort = mem["onnxruntime"] or {}
            rows.append([display_name(r["name"]), _kb(mem["analytic"]["largest_layer_output_bytes"]),
                         _kb(mem["analytic"]["sum_layer_outputs_bytes"]), _kb(mem["jax_xla_temp_bytes"]),
                         _kb(ort.get("activation_peak_bytes")), _kb(ort.get("arena_held_bytes")),
                         _kb(mem["tflite_heap_growth_builtin_bytes"]), _kb(mem["tflite_heap_growth_xnnpack_bytes"])])
        lines += _table(rows, ["model", "analytic: largest layer output", "analytic: all layer outputs",
                               "JAX XLA temp", "ONNX Runtime activation peak", "ONNX Runtime arena held",
                               "TFLite heap growth, builtin kernels", "TFLite heap growth, XNNPACK"],
                        ["left"] + ["right"] * 7)
        lines += ["", "Analytic: float32 outputs of every parameterised layer for one window (`jazbat_jax.complexity`), "
                  "the largest one and their sum; a runtime needs at least the largest (plus its input) and at most "
                  "the sum plus scratch. JAX: XLA `memory_analysis()` temp bytes of the compiled forward. ONNX Runtime: "
                  "CPU arena statistics from session profiling, peak in use during a run minus what was in use before "
                  "its first node; 'held' is the arena's reserved size (grows in 1 MB steps). TFLite: the "
                  "ai-edge-litert Python API exposes no arena size; these are the C heap's growth (glibc mallinfo2) "
                  "across `allocate_tensors()`: every subgraph's tensor arena (the GRU loop's body and condition "
                  "have their own) plus kernel scratch; XNNPACK adds its packed copy of the weights."]
    lines += [""]
    rows = []
    for r in report["models"]:
        for t in r["latency"]:
            paper_ms = r["paper"]["device_median_ms"] if t["runtime"] == "tflite" and t["batch"] == 1 else None
            rows.append([r["name"], t["runtime"], t["batch"], f"{t['median_ms']:.3f}",
                         f"{t['mean_ms']:.3f} ± {t['sd_ms']:.3f}", f"{t['min_ms']:.3f} / {t['max_ms']:.3f}",
                         "–" if paper_ms is None else f"{paper_ms:.2f}"])
    lines += _table(rows, ["model", "runtime", "batch", "median ms", "mean ± SD ms", "min / max ms",
                           "paper on-device median ms"], ["left", "left"] + ["right"] * 5)
    lines += _render_ops(report)
    lines += ["",
              "† ours does not round to the published figure. Jazbat-Net: Table V's 3D/6D parameter counts are "
              "those of F = 2 / F = 5, a paper error (docs/model.md, section \"Complexity\"). Surrogate: matched to [9]'s "
              "published complexity (+0.1% params, +0.8% MACs), not identical, since [9]'s layers are not public.",
              "sota_surrogate_* is S-754, a complexity-matched surrogate of the previous SOTA [9]; its 'paper' "
              "columns are [9]'s published figures. Paper latencies were measured on a phone, ours on this machine."]
    inputs = {r["input_values"] for r in report["models"] if "input_values" in r}
    if inputs:  # reports written before the standardizer was folded in do not say
        lines[-1] += (f" The profiled files take {', '.join(sorted(inputs))}; parameters and MACs count the network "
                      "only.")
    return "\n".join(lines)


def _macs_comparison(report: dict[str, Any]) -> list[str]:
    """Analytic MACs beside XLA's count, and what the difference is."""
    rows = []
    for r in report["models"]:
        x = r["xla"]
        xla_macs = x["xla_flops_scan_corrected"] / 2
        unknown = r.get("macs_unknown_layers") or []
        rows.append([display_name(r["name"]), f"{r['macs']:,}" + (" (lower bound)" if unknown else ""),
                     f"{xla_macs:,.0f}", f"{xla_macs - r['macs']:+,.0f} ({xla_macs / max(r['macs'], 1) - 1:+.1%})",
                     "; ".join(unknown) or "–"])
    return [*_table(rows, ["model", "analytic MACs", "XLA flops / 2 (scan-corrected)", "XLA − analytic",
                           "layers without an analytic rule"], ["left", "right", "right", "right", "left"]), "",
            "Analytic MACs follow the paper's convention (`jazbat_jax.complexity`: convolutions, GRU / LSTM and dense "
            "layers; biases, normalisation, activations, gate products, attention's products and pooling count zero). "
            "XLA's `cost_analysis()` counts every floating-point operation of the compiled forward (batch 1) and a "
            "rolled loop's body once; the GRU / LSTM layers the analytic count knows are corrected by their other "
            "T − 1 steps, a loop of another kind is not. So XLA − analytic is the convention's omissions (biases, "
            "normalisation, activations, gates, softmax, pooling: usually a few per cent), plus, for a layer without "
            "an analytic rule, everything it computes, minus, for a loop XLA cannot see through, its other steps."]


def _render_ops(report: dict[str, Any]) -> list[str]:
    """Per-layer and per-operator-type time tables of the ONNX Runtime profile, one pair per model."""
    lines: list[str] = []
    for r in report["models"]:
        prof = (r.get("ops") or {}).get("onnxruntime")
        if not prof:
            continue
        total = sum(prof["by_layer"].values())
        e2e = prof["end_to_end_median_us"]
        lines += ["", f"**{display_name(r['name'])}**, ONNX Runtime (batch 1, {prof['threads']}): time per layer, "
                  f"median over {prof['runs']} profiled runs. The operators sum to {total:,.0f} µs, "
                  f"{total / e2e:.0%} of the median profiled run ({e2e:,.0f} µs). The rest is the session's work between "
                  "kernels and, on a busy machine, time spent waiting for a core: a sum of per-operator medians "
                  "leaves out interruptions that a long run's median contains. Unprofiled times are in the latency "
                  "table.", ""]
        layer_ops: dict[str, list[str]] = {}
        for n in prof["nodes"]:
            layer_ops.setdefault(n["layer"], [])
            if n["op_type"] not in layer_ops[n["layer"]]:
                layer_ops[n["layer"]].append(n["op_type"])
        rows = [[deployment.LAYER_LABELS[layer], ", ".join(layer_ops[layer]), f"{us:,.1f}", f"{us / total:.1%}"]
                for layer, us in prof["by_layer"].items()]
        rows.append(["**sum of operators**", "", f"{total:,.1f}", "100%"])
        lines += _table(rows, ["layer", "operators", "µs", "share"], ["left", "left", "right", "right"])
        lines += [""]
        rows = [[op, sum(1 for n in prof["nodes"] if n["op_type"] == op), f"{us:,.1f}", f"{us / total:.1%}"]
                for op, us in sorted(prof["by_op_type"].items(), key=lambda kv: -kv[1])]
        lines += _table(rows, ["operator type", "nodes", "µs", "share"], ["left", "right", "right", "right"])
    if lines:
        lines += ["", "TFLite has no per-operator column: ai-edge-litert's Python API (Interpreter, CompiledModel) "
                  "exposes no op profiler."]
    return lines


# One colour per layer and per runtime, the same in every figure.
LAYER_COLOURS = dict(zip(deployment.LAYER_LABELS, [
    "#bdbdbd", "#1f77b4", "#9467bd", "#2ca02c", "#98df8a", "#bcbd22", "#ff7f0e", "#7f7f7f",  # Jazbat-Net
    "#17becf", "#9edae5", "#8c564b", "#e377c2", "#393b79", "#6baed6", "#ffbb78", "#d62728",  # S-754
]))
RUNTIMES = {"jax": ("JAX jit", "#4c72b0"), "onnx": ("ONNX Runtime", "#dd8452"),
            "tflite": ("TFLite FP32", "#55a868"), "tflite_dynamic_int8": ("TFLite dyn-INT8", "#b5dfbf")}


def plot(report: dict[str, Any], path: Path) -> list[Path]:
    """profile.png (200 dpi) and profile.svg beside it."""
    from jazbat_jax.figures import save_figure

    return save_figure(figure(report), path)


def figure(report: dict[str, Any]):
    """Latency and file size per model and runtime on linear axes from 0, each bar labelled with its value (a log
    axis had to start somewhere, and where it started decided how small the 98 KB INT8 bar looked), and, with
    --ops, where the time goes per layer."""
    from matplotlib.figure import Figure

    models = [r.get("display_name") or display_name(r["name"]) for r in report["models"]]
    with_ops = [r for r in report["models"] if (r.get("ops") or {}).get("onnxruntime")]
    fig = Figure(figsize=(13, 9.5 if with_ops else 4.8))
    grid = fig.add_gridspec(2 if with_ops else 1, 2, height_ratios=[1, 1.1] if with_ops else [1])
    ax1, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    runtimes = sorted({t["runtime"] for r in report["models"] for t in r["latency"] if t["batch"] == 1})
    width = 0.8 / max(len(runtimes), 1)
    for i, rt in enumerate(runtimes):
        values = [next((t["median_ms"] for t in r["latency"] if t["runtime"] == rt and t["batch"] == 1), 0)
                  for r in report["models"]]
        label, colour = RUNTIMES.get(rt, (rt, None))
        bars = ax1.bar([j + i * width for j in range(len(models))], values, width, label=label, color=colour)
        ax1.bar_label(bars, [f"{v:.2f}" for v in values], fontsize=6, padding=1, rotation=90)
    ax1.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models, rotation=15, ha="right")
    ax1.set_ylabel("median latency, batch 1 (ms)")
    ax1.set_ylim(0, ax1.get_ylim()[1] * 1.15)  # room for the labels
    ax1.set_title("Latency (batch 1)", fontsize=10)
    ax1.legend(fontsize=8, loc="upper left")
    kinds = [("tflite_fp32", "tflite"), ("tflite_dynamic_int8", "tflite_dynamic_int8"), ("onnx", "onnx")]
    width = 0.8 / len(kinds)
    for i, (k, rt) in enumerate(kinds):
        label, colour = RUNTIMES[rt]
        values = [(r["artifact_bytes"][k] or 0) / 1e3 for r in report["models"]]  # 0: not convertible (see the report)
        bars = ax2.bar([j + i * width for j in range(len(models))], values, width,
                       label=label.replace("ONNX Runtime", "ONNX"), color=colour)
        ax2.bar_label(bars, [f"{v:,.0f}" for v in values], fontsize=6, padding=1, rotation=90)
    ax2.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models, rotation=15, ha="right")
    ax2.set_ylabel("file size (KB = 1,000 bytes)")
    ax2.set_ylim(0, ax2.get_ylim()[1] * 1.15)
    ax2.set_title("File size", fontsize=10)
    ax2.legend(fontsize=8, loc="upper left")
    if with_ops:
        _plot_ops(fig.add_subplot(grid[1, :]), with_ops)
    load = report.get("load_average_start")
    fig.suptitle(f"{report['machine']['host_cpu']} ({report['machine']['cpu_count']} cores), {report['created_utc']}"
                 + (f", load average {load[0]:.2f} (shared machine)" if load else ""), fontsize=9)
    fig.tight_layout()
    return fig


def _plot_ops(ax, models: list[dict[str, Any]]) -> None:
    """Stacked horizontal bars, one per model and runtime: each layer's share of the operator time, with
    the absolute total next to the bar (shares, since S-754's run is ~8x Jazbat-Net's)."""
    seen: dict[str, Any] = {}
    labels = []
    for i, r in enumerate(models):
        prof = r["ops"]["onnxruntime"]
        total = sum(prof["by_layer"].values())
        left = 0.0
        for layer, us in prof["by_layer"].items():
            bar = ax.barh(i, 100 * us / total, left=left, color=LAYER_COLOURS.get(layer, "#cccccc"),
                          edgecolor="white", linewidth=0.5)
            seen.setdefault(deployment.LAYER_LABELS[layer], bar)
            left += 100 * us / total
        ax.text(101, i, f"{total:,.0f} µs of operators\n(run {prof['end_to_end_median_us']:,.0f} µs)",
                va="center", fontsize=8)
        labels.append(f"{display_name(r['name'])}\nONNX Runtime")
    ax.set_yticks(range(len(models)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 118)  # room for the totals
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("share of the operator time per run, batch 1 (%; median over the profiled runs)")
    ax.set_title("Where the time goes, per layer (ONNX Runtime session profiler, 1 thread)", fontsize=10)
    ax.legend(list(seen.values()), list(seen.keys()), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)


def write(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "profile.md", out_dir / "profile.json"
    md.write_text(render_markdown(report) + "\n")
    js.write_text(json.dumps(report, indent=2) + "\n")
    return [md, js, *plot(report, out_dir / "profile.png")]

