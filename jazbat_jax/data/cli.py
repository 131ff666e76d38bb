"""The ``jazbat data`` subcommand: ``jazbat data info PATH [--format text|json]`` and
``jazbat data split PATH --protocol subject|random|time [--out runs/split.json]``.

``register(subparsers)`` adds it to the main ``jazbat`` parser; each leaf sets ``func``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from jazbat_jax.cliargs import HelpFormatter, fraction, non_negative_int, positive_int


def _info(args: argparse.Namespace) -> int:
    from .info import describe, format_info
    from .paths import data_root

    path = args.path if args.path is not None else str(data_root())
    info = describe(path, on_bad_line=args.on_bad_line)
    print(json.dumps(info, indent=1) if args.format == "json" else format_info(info))
    return 0


def _detect_source(path: Path) -> str:
    """'wisdm' or 'quiroz' when the folder holds that dataset, else 'seecs'."""
    from . import quiroz, wisdm

    for name, probe in (("wisdm", wisdm.resolve_wisdm_root), ("quiroz", quiroz.resolve_quiroz_path)):
        try:
            probe(path)
            return name
        except FileNotFoundError:
            pass
    return "seecs"


def _split(args: argparse.Namespace) -> int:
    from .config import DataConfig, SplitConfig, load_split
    from .paths import data_root
    from .splits import format_split_summary, save_split_summary

    path = Path(args.path) if args.path is not None else data_root()
    source = _detect_source(path) if args.source == "auto" else args.source
    config = DataConfig(dataset=source, root=str(path), input_kind=args.input_kind, window=args.window,
                        step=args.step or 0, device=args.device, on_bad_line=args.on_bad_line,
                        split=SplitConfig(args.protocol, args.test_fraction, args.val_fraction, args.seed,
                                          args.n_folds, args.fold))
    ws, sp = load_split(config)
    print(f"{ws.source}: {len(ws)} windows of {ws.x.shape[1]} x {ws.x.shape[2]}")
    print(format_split_summary(sp.summary))
    if args.out:
        print(f"summary saved to {save_split_summary(sp, args.out)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``data`` (with ``info``) to an argparse subparsers object; returns the ``data`` parser."""
    from .splits import PROTOCOLS

    p = subparsers.add_parser("data", help="inspect data folders (WISDM raw/packed, Quiroz 2018, SEECS layout)")
    sub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    info = sub.add_parser("info", help="print subjects, classes, rows, rates, windows per class and defects",
                          formatter_class=HelpFormatter)
    info.add_argument("path", nargs="?", default=None,
                      help="data folder (default: ../shared/data if present, else the bundled sample)")
    info.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    info.add_argument("--on-bad-line", choices=("raise", "skip"), default="raise",
                      help="raw WISDM files: stop at a malformed line (default) or skip and count them")
    info.set_defaults(func=_info)

    sp = sub.add_parser("split", help="load a source, split it, print the split summary (and save it as JSON)",
                        formatter_class=HelpFormatter)
    sp.add_argument("path", nargs="?", default=None, help="data folder (default as for info; with a root "
                    "holding several datasets, WISDM is used unless --source says otherwise)")
    sp.add_argument("--source", choices=("auto", "wisdm", "quiroz", "seecs"), default="auto",
                    help="dataset of the folder (auto: recognised from the files)")
    sp.add_argument("--device", choices=("watch", "phone"), default="watch", help="WISDM only: which device")
    sp.add_argument("--input-kind", choices=("1d", "3d", "6d"), default="1d", help="input channels: |a|, a_xyz, a_xyz+ω_xyz")
    sp.add_argument("--window", type=positive_int, default=256, help="window length in samples")
    sp.add_argument("--step", type=positive_int, default=None, help="stride in samples (default: 32 for WISDM, 16 for emotions)")
    sp.add_argument("--protocol", choices=PROTOCOLS, default="subject",
                    help="subject: no person in two parts; random: the paper's (leaky); time: within-recording blocks")
    sp.add_argument("--test-fraction", type=fraction, default=0.2, help="fraction held out for the test part")
    sp.add_argument("--val-fraction", type=fraction, default=0.1, help="fraction of the rest held out for validation")
    sp.add_argument("--seed", type=non_negative_int, default=0, help="seed of the split")
    sp.add_argument("--n-folds", type=positive_int, default=None, help="k-fold: number of folds (with --fold)")
    sp.add_argument("--fold", type=non_negative_int, default=None, help="k-fold: which fold is the test part")
    sp.add_argument("--on-bad-line", choices=("raise", "skip"), default="raise",
                    help="raw WISDM files: stop at a malformed line or skip and count it")
    sp.add_argument("--out", type=Path, default=None, help="write the summary here as JSON (e.g. runs/split.json)")
    sp.set_defaults(func=_split)
    return p

