"""The `jazbat` command line. Each area registers its own subcommands; this file only wires them,
and is the one place where an error becomes a one-line message and a non-zero exit.

Commands of other installed packages join through the ``jazbat.commands`` entry-point group
(``conversion`` adds ``export`` and ``profile`` that way), so this package never imports them.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from jazbat_jax.cliargs import ArgumentParser, HelpFormatter, positive_int

# Each area's module defines `register(subparsers)` for its own subcommands. Registering imports
# nothing heavy (JAX, TensorFlow): `jazbat --help` stays fast.
SUBCOMMAND_MODULES: list[str] = [
    "jazbat_jax.data.cli",  # data info / split
    "jazbat_jax.train.cli",  # pretrain / finetune / evaluate / predict
    "jazbat_jax.experiments.cli",  # experiments (the paper's Table VI grid) / accuracy-cost
]
# Commands that train: they re-execute themselves with huge-page malloc (see machine.py).
TRAINING_COMMANDS = {"pretrain", "finetune", "experiments", "accuracy-cost"}
EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 2, 1, 130
# What rerunning an interrupted command does, for the commands that resume (every epoch is committed by its
# checkpoint; the experiment grids skip finished jobs).
RESUMES = {
    "pretrain": "rerun the same command to resume after the last completed epoch",
    "finetune": "rerun the same command to resume after the last completed epoch",
    "experiments": "rerun the same command to resume: finished jobs are skipped, an interrupted one resumes after "
                   "its last completed epoch",
    "accuracy-cost": "rerun the same command to resume: finished runs are skipped, an interrupted one resumes "
                     "after its last completed epoch",
}


def add_summary(subparsers) -> None:
    p = subparsers.add_parser(
        "summary",
        help="per-layer parameters / MACs / activations and the comparison with the previous SOTA",
        description="Print Jazbat-Net's per-layer complexity table (like a Keras model summary) and a side-by-side "
        "comparison with the previous SOTA [9]: its published figures and our complexity-matched surrogate S-754.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--input", default="1d", choices=["1d", "3d", "6d"], help="input channels: |a|, a_xyz, or a_xyz+ω_xyz")
    p.add_argument("-K", "--reduce-filters", type=positive_int, default=6,
                   help="filters of the 1×1 reduction conv (6 reproduces the paper's tables; 18 for WISDM pretraining)")
    p.add_argument("-C", "--classes", type=positive_int, default=6, help="number of output classes")
    p.add_argument("--format", default="text", choices=["text", "markdown", "json"], help="output format")
    p.add_argument("--xla", action="store_true",
                   help="also compile both models and cross-check the counts with XLA's cost and memory analysis "
                        "(slow: it compiles both models)")
    # The cross-check used to be on by default; old command lines that turned it off still run.
    p.add_argument("--no-xla", dest="xla", action="store_false", help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", type=Path, help="also write the report to this file")
    p.set_defaults(func=run_summary)


def run_summary(args) -> int:
    from jazbat_jax import summary

    if args.classes < 2:
        raise ValueError("--classes must be at least 2")
    report = summary.build(args.input, args.reduce_filters, args.classes, xla=args.xla)
    text = summary.render(report, args.format)
    print(text)
    if args.output:
        from jazbat_jax.files import write_atomically

        write_atomically(args.output, text + "\n")
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
    import importlib

    from jazbat_jax import plugins

    parser = ArgumentParser(
        prog="jazbat",
        description="Jazbat-Net in JAX/Flax: complexity, data, training, transfer, export and profiling.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: environment variable JAZBAT_DEBUG=1)")
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow, absl, orbax and XLA print their log messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    add_summary(subparsers)
    add_machine(subparsers)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for register in plugins.load_all(plugins.COMMANDS):
        register(subparsers)
    return parser


def interrupted_advice(args: argparse.Namespace) -> str:
    """What to do after Ctrl-C: for a command that resumes, that rerunning it does."""
    advice = RESUMES.get(args.command)
    if advice is None:
        return ""
    if getattr(args, "no_resume", False):
        return "; rerun it without --no-resume to resume after the last completed epoch"
    return f"; {advice}"


def error_line(e: BaseException) -> str:
    """One line for an exception: its message's lines joined, without a traceback."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    if isinstance(e, KeyError | AttributeError | TypeError | IndexError | AssertionError | NameError):
        # Not a message written for users: say what it is, so that a bug report can name it.
        text = f"{type(e).__name__}: {text} (an unexpected error: --debug shows where)"
    return text or type(e).__name__


# Lines that native libraries write straight to file descriptor 2 at INFO level, which no logging
# setting reaches (absl's pre-initialisation messages, TensorFlow's oneDNN notice, LiteRT's delegate).
NATIVE_NOISE = (b"All log messages before absl::InitializeLog()", b"oneDNN custom operations are on",
                b"Created TensorFlow Lite XNNPACK delegate", b"TfLiteXNNPackDelegate", b"cpu_feature_guard")


def quiet_library_logs() -> None:
    """Silence the INFO/WARNING chatter of TensorFlow, absl, orbax and XLA (errors still show)."""
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read by TensorFlow and XLA when they load
    for name in ("absl", "orbax", "jax", "tensorflow", "tf2onnx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def filter_native_stderr(noise: tuple[bytes, ...] = NATIVE_NOISE) -> None:
    """Route file descriptor 2 through a pipe that drops the lines in ``noise`` and passes every other
    line on, for the rest of the process (a real command line only: tests keep their own stderr)."""
    import atexit
    import threading

    read_end, write_end = os.pipe()
    original = os.dup(2)
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        # Pass each piece on as soon as it ends, at a newline or at a carriage return: a progress bar
        # redraws itself with "\r" and no newline, and must show while it runs, not when the command ends.
        pending = b""
        while chunk := os.read(read_end, 65536):
            pieces = re.split(rb"(?<=[\r\n])", pending + chunk)
            pending = pieces.pop()  # after the last "\r" or "\n": not ended yet
            for piece in pieces:
                if not any(n in piece for n in noise):
                    os.write(original, piece)
        if pending and not any(n in pending for n in noise):
            os.write(original, pending)
        os.close(read_end)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:  # closing the pipe's last writer ends the pump after the last line
        sys.stderr.flush()
        os.dup2(original, 2)
        thread.join(timeout=2)

    atexit.register(restore)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("JAZBAT_DEBUG", "") not in ("", "0")
    if argv is None and args.command in TRAINING_COMMANDS:  # a real command line that trains: huge-page malloc
        from jazbat_jax.machine import reexec_with_hugepage_malloc

        reexec_with_hugepage_malloc(sys.argv[1:])
    if not args.verbose:
        quiet_library_logs()
        if argv is None:
            filter_native_stderr()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"jazbat {args.command}: interrupted" + interrupted_advice(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - the one place that turns every error into one line
        if debug:
            raise
        print(f"jazbat {args.command}: error: {error_line(e)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
