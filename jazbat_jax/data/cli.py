"""The ``jazbat data`` subcommand: ``jazbat data info PATH [--format text|json]``.

``register(subparsers)`` adds it to the main ``jazbat`` parser; each leaf sets ``func``.
"""
from __future__ import annotations

import argparse
import json
import sys

from .info import describe, format_info
from .paths import data_root


def _info(args: argparse.Namespace) -> int:
    path = args.path if args.path is not None else str(data_root())
    info = describe(path, on_bad_line=args.on_bad_line)
    if args.format == "json":
        print(json.dumps(info, indent=1))
    else:
        print(format_info(info))
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
    return p


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m jazbat_jax.data.cli info PATH``."""
    parser = argparse.ArgumentParser(prog="jazbat")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
