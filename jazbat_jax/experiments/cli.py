"""``jazbat experiments``: run the grid (resumable, cached) and write the report."""
from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

EPILOG = """examples:
  jazbat experiments --quick                         # bundled sample, < 10 min on 2 CPU cores
  jazbat experiments --quick                         # again: every finished job is skipped, report rewritten
  jazbat experiments --full --results runs/full      # the paper's epochs, all data (weeks on 2 CPU cores)
  jazbat experiments --config my_grid.toml           # a profile with your changes (JSON or TOML)
  jazbat experiments --quick --report-only           # rebuild report.md from the results folder
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "experiments", help="the paper's transfer grid on public data, both split protocols, a baseline, a report",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Run the Table VI design (inputs × pretraining on WISDM watch / phone / none) fine-tuned on the "
                    "walking-emotion target (Quiroz 2018, or SEECS-layout data), under the subject split (k-fold by "
                    "participant) and the paper's random split, with several seeds and a random-forest baseline. Every "
                    "job is cached in the results folder: a rerun skips finished jobs, a killed run resumes. Then write "
                    "RESULTS/report.md and RESULTS/figures/. See docs/experiments.md.")
    prof = p.add_mutually_exclusive_group()
    prof.add_argument("--quick", dest="profile", action="store_const", const="quick",
                      help="short profile on the bundled sample (the default)")
    prof.add_argument("--full", dest="profile", action="store_const", const="full",
                      help="the paper's epochs, all inputs / pretrainings, 5 folds × 3 seeds, all data")
    p.add_argument("--config", type=Path, default=None,
                   help="JSON or TOML file merged onto the profile (its 'profile' key picks the base)")
    p.add_argument("--results", type=Path, default=None, help="results folder (default runs/experiments-<profile>)")
    p.add_argument("--report-only", action="store_true", help="do not train: only rebuild the report from the results")
    p.add_argument("--runs-per-program", type=int, default=1, metavar="N",
                   help="train up to N compatible jobs (same input, model shape and batch size) together in one "
                        "program (1, the default: one job at a time; on XLA:CPU a program of several runs was measured "
                        "slower, see docs/training.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_experiments)


def _command_line(args: argparse.Namespace) -> str:
    """The command as a user would type it (recorded in the results and the report)."""
    parts = ["jazbat", "experiments"]
    if args.profile:
        parts.append(f"--{args.profile}")
    if args.config:
        parts += ["--config", str(args.config)]
    if args.results:
        parts += ["--results", str(args.results)]
    if args.report_only:
        parts.append("--report-only")
    if args.runs_per_program != 1:
        parts += ["--runs-per-program", str(args.runs_per_program)]
    return " ".join(shlex.quote(p) for p in parts)


def cmd_experiments(args: argparse.Namespace) -> int:
    from jazbat_jax.experiments import config, grid, report

    cfg = config.load_config(args.profile, args.config)
    results = args.results or Path("runs") / f"experiments-{cfg['profile']}"
    command = _command_line(args)
    t0 = time.perf_counter()
    if not args.report_only:
        grid.run_grid(cfg, results, progress=not args.no_progress, command=command,
                      runs_per_program=args.runs_per_program)
    print("\n=== report: tables and figures from the results folder")
    path = report.build_report(results, cfg, command=command)
    print(f"report: {path} ({time.perf_counter() - t0:.0f} s)")
    return 0
