"""The `jazbat` command line. Each area registers its own subcommands; this file only wires them."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# Each area's module defines `register(subparsers)` for its own subcommands.
SUBCOMMAND_MODULES: list[str] = [
    "jazbat_jax.data.cli",  # data info / split
    "jazbat_jax.train.cli",  # pretrain / finetune / evaluate / predict
    "conversion.cli",  # export / profile
    "jazbat_jax.experiments.cli",  # experiments (the paper's Table VI grid)
]


def add_summary(subparsers) -> None:
    p = subparsers.add_parser(
        "summary",
        help="per-layer parameters / MACs / activations and the comparison with the previous SOTA",
        description="Print Jazbat-Net's per-layer complexity table (like a Keras model summary) and a side-by-side "
        "comparison with the previous SOTA [9]: its published figures and our complexity-matched surrogate S-754.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--input", default="1d", choices=["1d", "3d", "6d"], help="input channels: |a|, a_xyz, or a_xyz+ω_xyz")
    p.add_argument("-K", "--reduce-filters", type=int, default=6,
                   help="filters of the 1×1 reduction conv (6 reproduces the paper's tables; 18 for WISDM pretraining)")
    p.add_argument("-C", "--classes", type=int, default=6, help="number of output classes")
    p.add_argument("--format", default="text", choices=["text", "markdown", "json"])
    p.add_argument("--no-xla", action="store_true", help="skip the XLA cost/memory cross-checks (no compilation)")
    p.add_argument("-o", "--output", type=Path, help="also write the report to this file")
    p.set_defaults(func=run_summary)


def run_summary(args) -> int:
    from jazbat_jax import summary

    if args.reduce_filters < 1 or args.classes < 2:
        raise SystemExit("jazbat summary: --reduce-filters must be ≥ 1 and --classes ≥ 2")
    report = summary.build(args.input, args.reduce_filters, args.classes, xla=not args.no_xla)
    text = summary.render(report, args.format)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


def add_machine(subparsers) -> None:
    p = subparsers.add_parser(
        "machine",
        help="print the machine facts recorded next to every report (JSON)",
        description="Print what jazbat records about this machine next to every measured number: CPU, cores, "
        "JAX backend and devices, versions, and whether malloc uses transparent huge pages (see docs/training.md).",
    )
    p.set_defaults(func=run_machine)


def run_machine(args) -> int:
    import json

    from jazbat_jax.machine import machine_info

    print(json.dumps(machine_info(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jazbat",
        description="Jazbat-Net in JAX/Flax: complexity, data, training, transfer, export and profiling.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_summary(subparsers)
    add_machine(subparsers)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # a real command line (not a call from Python): huge-page malloc, see machine.py
        from jazbat_jax.machine import reexec_with_hugepage_malloc

        reexec_with_hugepage_malloc(sys.argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
