"""`jazbat summary`: the per-layer complexity table and the side-by-side comparison with the SOTA.

Every number of ours is computed here from the models (``complexity.count`` and, unless
skipped, the XLA cross-checks); the paper's figures come from ``paper.py`` and are labelled
as published.
"""
from __future__ import annotations

import json
from typing import Any

from tabulate import tabulate

from jazbat_jax import complexity, paper
from jazbat_jax.model import JazbatNet, init_variables, input_width, jazbat_net, sota_surrogate


def build(input_kind: str = "1d", reduce_filters: int = 6, num_classes: int = 6, xla: bool = True) -> dict[str, Any]:
    """Everything `jazbat summary` prints, as a JSON-serialisable dict."""
    kind = input_kind.lower()
    model = jazbat_net(kind, num_classes, reduce_filters)
    surrogate = sota_surrogate(kind, num_classes)
    ours, sur = complexity.count(model), complexity.count(surrogate)
    report: dict[str, Any] = {
        "config": {"input": kind, "input_width": input_width(kind), "reduce_filters": reduce_filters,
                   "num_classes": num_classes, "window": model.window},
        "jazbat_net": ours.to_dict(),
        "sota_surrogate": {**sur.to_dict(), "label": "S-754: complexity-matched surrogate of [9], not [9]'s architecture"},
        "published": {
            "source": paper.PAPER,
            "jazbat_net": paper.JAZBAT_PUBLISHED[kind],
            "sota": {**paper.SOTA_PUBLISHED[kind], **paper.ON_DEVICE["sota"], "source": paper.SOTA},
            "jazbat_on_device": paper.ON_DEVICE["jazbat"],
        },
        "notes": notes(kind, reduce_filters, num_classes, ours),
    }
    if xla:
        report["xla"] = {
            "jazbat_net": complexity.xla_crosscheck(model, init_variables(model)),
            "sota_surrogate": complexity.xla_crosscheck(surrogate, init_variables(surrogate)),
        }
    return report


def notes(kind: str, reduce_filters: int, num_classes: int, ours: complexity.ModelCost) -> list[str]:
    """Where the paper's tables are wrong or ambiguous, with our own counts as evidence."""
    out = []
    published = paper.JAZBAT_PUBLISHED[kind]["params"]
    if kind in ("3d", "6d"):
        width = input_width(kind)
        off_by_one = complexity.count(JazbatNet(input_dim=width - 1, num_classes=6, reduce_filters=6)).total
        correct = complexity.count(JazbatNet(input_dim=width, num_classes=6, reduce_filters=6))
        out.append(
            f"Paper Table V gives {published / 1e3:.2f}K parameters for {kind.upper()}; that is our total for an "
            f"input width of {width - 1} ({off_by_one:,}), one channel too few. The correct count for F={width} "
            f"is {correct.total:,} total / {correct.trainable:,} trainable. Table III's MACs use the right width."
        )
    transfer = complexity.count(JazbatNet(input_dim=input_width(kind), num_classes=6, reduce_filters=18))
    out.append(
        "The paper's complexity tables use a reduction conv of K=6 filters, while its text and transfer pipeline "
        f"use K=18 (the WISDM class count): the transfer model (K=18, C=6) has {transfer.trainable:,} trainable / "
        f"{transfer.total:,} total parameters and {transfer.macs:,} MACs."
    )
    out.append("Table IV labels the BiGRU 'L = 3, h = 32'; there is one BiGRU layer (L = 3 is the number of CNN modules).")
    out.append(
        "MACs follow the paper's convention (conv T·k·Cin·Cout, GRU T·3h(d+h) per direction, dense in·out; "
        "biases, BatchNorm, gates and pooling count 0). XLA's own flop count is a separate row (with --xla)."
    )
    out.append(
        f"FP32 weights: every parameter, trainable or not (BatchNorm statistics), × 4 bytes: {ours.fp32_bytes:,} bytes. "
        "KB = 1,000 bytes and MB = 1,000,000 bytes, as in `jazbat profile` (in 1,024-byte units: "
        f"{ours.fp32_bytes / 1024:.1f} KiB)."
    )
    out.append(
        "The SOTA column is [9]'s published figures. S-754 is a surrogate built to match them (the layer list of [9] "
        "is not public); it exists so that the SOTA's size can be timed on the same machine."
    )
    return out


def _layer_rows(cost: dict) -> list[list[Any]]:
    rows = [
        [l["name"], l["kind"], "×".join(map(str, l["output_shape"])), l["trainable"], l["non_trainable"], l["macs"]]
        for l in cost["layers"]
    ]
    rows.append(["total", "", "", cost["trainable_params"], cost["non_trainable_params"], cost["macs"]])
    return rows


def _fmt_int(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def comparison_rows(report: dict) -> list[list[str]]:
    ours, sur = report["jazbat_net"], report["sota_surrogate"]
    pub, sota = report["published"]["jazbat_net"], report["published"]["sota"]
    rows = [
        ["parameters (total)", f"{ours['total_params']:,}", f"{pub['params'] / 1e3:.2f}K",
         f"{sur['total_params']:,}", f"{sota['params'] / 1e3:.0f}K",
         f"{sur['total_params'] / ours['total_params']:.1f}×", f"{sota['params'] / pub['params']:.1f}×"],
        ["parameters (trainable)", f"{ours['trainable_params']:,}", "–", f"{sur['trainable_params']:,}", "–",
         f"{sur['trainable_params'] / ours['trainable_params']:.1f}×", "–"],
        ["MACs", f"{ours['macs']:,}", f"{pub['macs'] / 1e6:.2f}M", f"{sur['macs']:,}", f"{sota['macs'] / 1e6:.2f}M",
         f"{sur['macs'] / ours['macs']:.1f}×", f"{sota['macs'] / pub['macs']:.1f}×"],
        ["FP32 weights (all parameters × 4 B)", f"{ours['fp32_weight_bytes'] / 1e3:.2f} KB", f"{pub['fp32_kb']} KB",
         f"{sur['fp32_weight_bytes'] / 1e6:.2f} MB", f"{sota['fp32_mb']} MB", "", ""],
        ["TFLite file (paper)", "", f"{report['published']['jazbat_on_device']['tflite_mb']} MB", "",
         f"{sota['tflite_mb']} MB", "", ""],
        ["median latency, phone (paper)", "", f"{report['published']['jazbat_on_device']['median_ms']} ms", "",
         f"{sota['median_ms']} ms", "", ""],
    ]
    if "xla" in report:
        xj, xs = report["xla"]["jazbat_net"], report["xla"]["sota_surrogate"]
        rows.append(["XLA flops (scan-corrected)", f"{xj['xla_flops_scan_corrected']:,}", "",
                     f"{xs['xla_flops_scan_corrected']:,}", "", "", ""])
        rows.append(["XLA activation (temp) memory, batch 1", f"{xj['memory_temp_bytes'] / 1e3:.2f} KB", "",
                     f"{xs['memory_temp_bytes'] / 1e3:.2f} KB", "", "", ""])
    return rows


COMPARISON_HEADERS = ["", "Jazbat-Net (ours)", "Jazbat-Net (paper)", "S-754 surrogate (ours)",
                      "SOTA [9] (published)", "ratio (ours)", "ratio (paper)"]
LAYER_HEADERS = ["layer", "kind", "output", "trainable", "non-trainable", "MACs"]


def render(report: dict, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(report, indent=2)
    table_fmt = "github" if fmt == "markdown" else "simple"
    cfg = report["config"]
    title = (f"Jazbat-Net, input {cfg['input'].upper()} (F={cfg['input_width']}), K={cfg['reduce_filters']}, "
             f"C={cfg['num_classes']}, window {cfg['window']}")
    ours = report["jazbat_net"]
    parts = [
        f"## {title}" if fmt == "markdown" else title,
        tabulate(_layer_rows(ours), LAYER_HEADERS, tablefmt=table_fmt, intfmt=","),
        "",
        "By block: " + ", ".join(
            f"{name} {g['trainable'] + g['non_trainable']:,} params / {g['macs']:,} MACs" for name, g in ours["groups"].items()
        ),
        f"Trainable {ours['trainable_params']:,}, total {ours['total_params']:,}, MACs {ours['macs']:,}, "
        f"FP32 weights {ours['fp32_weight_bytes']:,} bytes, layer outputs {ours['layer_output_activations']:,} floats per window.",
    ]
    if "xla" in report:
        x = report["xla"]["jazbat_net"]
        parts.append(
            f"XLA cross-check: GRU MACs from one compiled step × T × {x['gru_directions']} directions = "
            f"{x['gru_macs_xla']:,} (analytic {x['gru_macs_analytic']:,}: {'match' if x['gru_macs_match'] else 'MISMATCH'}); "
            f"forward flops {x['xla_flops_rolled_scan']:,} with each scan body counted once, "
            f"{x['xla_flops_scan_corrected']:,} scan-corrected (2×MACs = {x['analytic_flops_2x_macs']:,}; the rest is gates, "
            f"biases, BatchNorm, activations); activation memory (temp) {x['memory_temp_bytes']:,} bytes at batch 1."
        )
    parts += [
        "",
        "## Against the previous SOTA" if fmt == "markdown" else "Against the previous SOTA",
        tabulate(comparison_rows(report), COMPARISON_HEADERS, tablefmt=table_fmt, disable_numparse=True),
        "",
        "## Notes" if fmt == "markdown" else "Notes",
        *[f"- {n}" for n in report["notes"]],
    ]
    return "\n".join(parts)
