"""The ``jazbat data`` subcommand: ``jazbat data info PATH [--format text|json]`` and
``jazbat data split PATH --protocol subject|random|time [--out split.json]``.

``register(subparsers)`` adds it to the main ``jazbat`` parser; each leaf sets ``func``.
"""
from __future__ import annotations

import argparse
import json
import sys

from pathlib import Path

from .info import describe, format_info
from .paths import data_root
from .splits import PROTOCOLS, format_split_summary, save_split_summary, split_windows


def _info(args: argparse.Namespace) -> int:
    path = args.path if args.path is not None else str(data_root())
    info = describe(path, on_bad_line=args.on_bad_line)
    if args.format == "json":
        print(json.dumps(info, indent=1))
    else:
        print(format_info(info))
    return 0


def _load(args: argparse.Namespace):
    from . import quiroz, seecs, wisdm

    path = Path(args.path) if args.path is not None else data_root()
    src = args.source
    if src == "auto":
        for name, probe in (("wisdm", wisdm.resolve_wisdm_root), ("quiroz", quiroz.resolve_quiroz_path)):
            try:
                probe(path)
                src = name
                break
            except FileNotFoundError:
                pass
        else:
            src = "seecs"
    kw = dict(input_kind=args.input_kind, window=args.window)
    if args.step:
        kw["step"] = args.step
    if src == "wisdm":
        return wisdm.load_wisdm(path, device=args.device, on_bad_line=args.on_bad_line, **kw)
    if src == "quiroz":
        return quiroz.load_quiroz(path, **kw)
    return seecs.load_seecs(path, **kw)


def _split(args: argparse.Namespace) -> int:
    ws = _load(args)
    sp = split_windows(ws, args.protocol, test_fraction=args.test_fraction, val_fraction=args.val_fraction,
                       seed=args.seed, n_folds=args.n_folds, fold=args.fold)
    print(f"{ws.source}: {len(ws)} windows of {ws.x.shape[1]} x {ws.x.shape[2]}")
    print(format_split_summary(sp.summary))
    if args.out:
        print(f"summary saved to {save_split_summary(sp, args.out)}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``data`` (with ``info``) to an argparse subparsers object; returns the ``data`` parser."""
    p = subparsers.add_parser("data", help="inspect data folders (WISDM raw/packed, Quiroz 2018, SEECS layout)")
    sub = p.add_subparsers(dest="data_command", required=True)
    info = sub.add_parser("info", help="print subjects, classes, rows, rates, windows per class and defects")
    info.add_argument("path", nargs="?", default=None,
                      help="data folder (default: ../shared/data if present, else the bundled sample)")
    info.add_argument("--format", choices=("text", "json"), default="text")
    info.add_argument("--on-bad-line", choices=("raise", "skip"), default="raise",
                      help="raw WISDM files: stop at a malformed line (default) or skip and count them")
    info.set_defaults(func=_info)

    sp = sub.add_parser("split", help="load a source, split it, print the split summary (and save it as JSON)")
    sp.add_argument("path", nargs="?", default=None, help="data folder (default as for info; with a root "
                    "holding several datasets, WISDM is used unless --source says otherwise)")
    sp.add_argument("--source", choices=("auto", "wisdm", "quiroz", "seecs"), default="auto")
    sp.add_argument("--device", choices=("watch", "phone"), default="watch", help="WISDM only")
    sp.add_argument("--input-kind", choices=("1d", "3d", "6d"), default="1d")
    sp.add_argument("--window", type=int, default=256)
    sp.add_argument("--step", type=int, default=None, help="default: 32 for WISDM, 16 for emotions")
    sp.add_argument("--protocol", choices=PROTOCOLS, default="subject")
    sp.add_argument("--test-fraction", type=float, default=0.2)
    sp.add_argument("--val-fraction", type=float, default=0.1)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--n-folds", type=int, default=None)
    sp.add_argument("--fold", type=int, default=None)
    sp.add_argument("--on-bad-line", choices=("raise", "skip"), default="raise")
    sp.add_argument("--out", type=Path, default=None, help="write the summary here as JSON")
    sp.set_defaults(func=_split)
    return p


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m jazbat_jax.data.cli info PATH``."""
    parser = argparse.ArgumentParser(prog="jazbat")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
