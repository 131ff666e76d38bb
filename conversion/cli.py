"""`jazbat export` and `jazbat profile`. The main CLI calls ``register(subparsers)``."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from typing import TYPE_CHECKING

from jazbat_jax.cliargs import HelpFormatter, non_negative_int, positive_int

if TYPE_CHECKING:  # importing conversion.source loads JAX: only when a command runs
    from conversion.source import ExportSource


def _source_from_args(args) -> ExportSource:
    from conversion.source import fresh_source, load_source

    if args.fresh == (args.checkpoint is not None):
        raise ValueError("give either a CHECKPOINT path or --fresh (not both)")
    if args.checkpoint is not None:
        return load_source(args.checkpoint, args.prefer)

    return fresh_source(args.arch, args.input, args.classes, args.reduce_filters, args.seed)


def _add_source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="a training run folder, its checkpoints/ folder or one epoch's folder")
    p.add_argument("--fresh", action="store_true", help="export a freshly initialised model instead of a checkpoint")
    p.add_argument("--checkpoint-kind", dest="prefer", default="best", choices=["best", "last"],
                   help="which checkpoint of a run folder: the best by validation macro-F1, or the newest")
    fresh = p.add_argument_group("fresh model (with --fresh)")
    fresh.add_argument("--arch", default="jazbat_net",
                       help="jazbat_net, sota_surrogate (S-754, a complexity-matched surrogate of [9], not [9]), a "
                            "published baseline (deepconvlstm, tinyhar, resnet1d), or your own model: "
                            "package.module:factory or path/to/file.py:factory (docs/your-model.md)")
    fresh.add_argument("--input", default="1d", choices=["1d", "3d", "6d"], help="input channels: |a|, a_xyz, a_xyz+ω_xyz")
    fresh.add_argument("-C", "--classes", type=positive_int, default=6, help="number of classes")
    fresh.add_argument("-K", "--reduce-filters", type=positive_int, default=None,
                       help="Jazbat-Net's reduction width (default: the number of classes)")
    fresh.add_argument("--seed", type=non_negative_int, default=0, help="initialisation seed")


def register(subparsers) -> None:
    from conversion import FORMATS

    p = subparsers.add_parser(
        "export",
        help="export to TFLite / ONNX / SavedModel with parity gates and a manifest",
        description="Convert a checkpoint (or a fresh model) and check every artifact against the JAX model "
        "before keeping it: FP32 probabilities within 1e-5 and identical predicted classes on random and real "
        "windows; quantised TFLite files report agreement instead. Writes manifest.json last.",
        formatter_class=HelpFormatter,
    )
    _add_source_arguments(p)
    p.add_argument("--format", action="append", choices=FORMATS + ("all",), dest="formats",
                   help="repeatable; default 'all' = tflite, tflite-int8 (dynamic-range INT8), onnx, saved_model. "
                   "Only on request: onnx-tf2onnx (the slow generic ONNX path) and tflite-full-int8 (weights and "
                   "activations INT8; on a trained model it agrees with it on few windows: not for deployment, "
                   "see docs/export.md)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--batch-size", type=positive_int, default=1, help="fixed batch of the TFLite / SavedModel files")
    p.add_argument("--gru-unroll", type=positive_int, default=None,
                   help="export-time unroll of the GRU scan (TFLite; default: the measured best)")
    p.add_argument("--bare-model", action="store_true",
                   help="leave the standardizer out of the files: they take standardised windows, not raw "
                   "sensor values (the default folds (x - mean) / std into every file)")
    p.set_defaults(func=run_export)

    q = subparsers.add_parser(
        "profile",
        help="complexity, artifact sizes, activation memory and latency of Jazbat-Net (1D/3D/6D) and the "
        "S-754 surrogate",
        description="Side-by-side report: parameters, MACs (paper convention), XLA flops and memory, artifact "
        "sizes, activation memory per runtime, per-operator time (--ops), and latency (5 warm-up + 100 timed "
        "runs; JAX jit, TFLite XNNPACK 1 thread, ONNX Runtime 1 thread) at batch 1 and a larger batch, next to "
        "the paper's published figures.",
        formatter_class=HelpFormatter,
    )
    q.add_argument("--models", nargs="+", default=["jazbat_net:1d", "jazbat_net:3d", "jazbat_net:6d", "sota_surrogate:1d"],
                   help="ARCH[:INPUT] (INPUT 1d by default; ARCH: jazbat_net, sota_surrogate, deepconvlstm, tinyhar, "
                        "resnet1d, an installed jazbat.architectures entry point, or your own model as "
                        "package.module:factory or path/to/file.py:factory, docs/your-model.md), or checkpoint paths")
    q.add_argument("--batch", type=positive_int, nargs="+", default=[1, 32], help="batch sizes to time")
    q.add_argument("--runs", type=positive_int, default=100, help="timed runs (after the warm-up runs)")
    q.add_argument("--warmup", type=non_negative_int, default=5, help="untimed warm-up runs")
    q.add_argument("--runtimes", nargs="+", default=["jax", "tflite", "onnx"], choices=["jax", "tflite", "onnx"],
                   help="runtimes to time")
    q.add_argument("--ops", action="store_true",
                   help="also profile the batch-1 ONNX file per operator and per layer (ONNX Runtime profiler)")
    q.add_argument("--out", type=Path, default=Path("runs/profile"), help="folder for profile.{md,json,png}")
    q.set_defaults(func=run_profile)


def run_export(args) -> int:
    from conversion import tflite
    from conversion.export import export
    from conversion.parity import ParityError

    source = _source_from_args(args)
    formats = args.formats or ["all"]
    print(f"exporting {source.name} ({', '.join(formats)}) and checking each file against the JAX model...", flush=True)
    unroll = args.gru_unroll or tflite.DEFAULT_TFLITE_UNROLL
    try:
        manifest = export(source, args.out, formats, batch_size=args.batch_size, gru_unroll=unroll,
                          fold_standardizer=not args.bare_model, log=lambda line: print(line, flush=True))
    except ParityError as e:
        raise ParityError(f"{e} Nothing was written to {args.out}.") from None
    print(f"exported {source.name} ({source.origin}) to {args.out}; the files take "
          f"{manifest['model']['input']['values']}:")
    for a in manifest["artifacts"]:
        worst = max(r["max_abs_error"] for r in a["parity"])
        agree = min(r["argmax_agreement"] for r in a["parity"])
        kind = a.get("quantization") or a.get("exporter", a["format"]).split(" ")[0]
        print(f"  {a['file']:<36} {a['bytes']:>10,} B  {kind:<13} max|dp| {worst:.2e}  argmax agree {agree:.1%}")
    print("  manifest.json (sha256, opset, input signature, parity)")
    for a in manifest["artifacts"]:
        agree = min(r["argmax_agreement"] for r in a["parity"])
        if agree < 0.9:  # only quantised files get here: FP32 files failing the gate are never written
            print(f"warning: {a['file']} predicts the JAX model's class on only {agree:.1%} of the gate windows "
                  f"(see docs/export.md, quantisation)", file=sys.stderr)
    return 0


def run_profile(args) -> int:
    from conversion import profile

    specs = [profile.source_of(m) for m in args.models]
    print(f"profiling {len(specs)} model(s): export, then {', '.join(args.runtimes)} at batch "
          f"{', '.join(map(str, args.batch))}{' and per operator' if args.ops else ''}...", flush=True)
    report = profile.build(specs, batches=args.batch, runs=args.runs, warmup=args.warmup, runtimes=args.runtimes,
                           ops=args.ops, command="jazbat " + shlex.join(sys.argv[1:]))
    paths = profile.write(report, args.out)
    print(profile.render_markdown(report))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0

