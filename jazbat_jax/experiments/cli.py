"""``jazbat experiments``: run the grid (resumable, cached) and write the report; ``jazbat accuracy-cost``:
Jazbat-Net against the S-754 surrogate, accuracy next to complexity and latency."""
from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

from jazbat_jax.cliargs import HelpFormatter, non_negative_int, positive_float, positive_int

EPILOG = """examples:
  jazbat experiments --quick                         # bundled sample, a local Ray, minutes on 2 CPU cores
  jazbat experiments --quick                         # again: every finished job is skipped, report rewritten
  jazbat experiments --full --results runs/full      # the paper's epochs, all data (weeks on 2 CPU cores)
  jazbat experiments --config my_grid.toml           # a profile with your changes (JSON or TOML)
  jazbat experiments --quick --report-only           # rebuild report.md from the results folder
  jazbat experiments --config grid.toml --results /shared/grid --address auto   # on a running Ray cluster
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
    add_ray_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_experiments)
    register_accuracy_cost(subparsers)


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("where the jobs run (Ray; see docs/experiments.md)")
    r.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="a running Ray cluster ('auto': the one this machine belongs to); default: start a local Ray "
                        "on this machine. On a cluster the results folder must be on a file system every node shares")
    r.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="local Ray: train N jobs at a time, each in a single-threaded worker (default: one per core; "
                        "on 2 cores two such workers trained 1.4-1.5x the windows/s of one multi-threaded run, "
                        "docs/training.md)")
    r.add_argument("--gpus-per-job", type=positive_float, default=0.0, metavar="G",
                   help="ask Ray for G GPUs per job (jobs then run on GPU nodes)")
    r.add_argument("--hang-timeout", type=positive_float, default=600.0, metavar="S",
                   help="restart a job whose worker has shown no sign of life for S seconds")
    r.add_argument("--in-process", action="store_true",
                   help="no Ray: run the jobs one after another in this process, XLA on one thread like a Ray worker "
                        "(debugging; the same numbers)")


def ray_options(args: argparse.Namespace):
    import os
    import sys

    from jazbat_jax.experiments.runner import RayOptions, single_thread_xla_flags

    if args.in_process and (args.address or args.workers):
        raise ValueError("--in-process runs the jobs in this process: leave out --address and --workers")
    if args.in_process and not args.report_only and "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = single_thread_xla_flags()  # the numbers of a Ray worker, which runs one thread
    return RayOptions(address=args.address, workers=args.workers, gpus_per_job=args.gpus_per_job,
                      hang_timeout_s=args.hang_timeout, verbose=getattr(args, "verbose", False))


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
    return " ".join(shlex.quote(p) for p in parts + _ray_parts(args))


def _ray_parts(args: argparse.Namespace) -> list[str]:
    """Where the jobs ran, as options (recorded with the command)."""
    parts = ["--address", args.address] if args.address else []
    if args.workers:
        parts += ["--workers", str(args.workers)]
    if args.gpus_per_job:
        parts += ["--gpus-per-job", str(args.gpus_per_job)]
    if args.in_process:
        parts.append("--in-process")
    return parts


def cmd_experiments(args: argparse.Namespace) -> int:
    options = ray_options(args)  # first: --in-process sets XLA's flags, which JAX reads when it loads
    from jazbat_jax.experiments import config, grid, report
    from jazbat_jax.experiments.jobs import results_data_labels

    cfg = config.load_config(args.profile, args.config)
    results = args.results or Path("runs") / f"experiments-{cfg['profile']}"
    command = _command_line(args)
    t0 = time.perf_counter()
    variants = config.input_variants(cfg)
    if args.report_only:
        for name, vcfg in variants:
            _check_results_to_report(results / name if name else results, vcfg, args)
    # grid.input_variants: one grid per variant, each in its own folder with its own report
    for name, vcfg in variants:
        folder = results / name if name else results
        if name:
            print(f"\n=== input variant {name!r}: {folder}")
        if not args.report_only:
            grid.run_grid(vcfg, folder, progress=not args.no_progress, command=command,
                          ray_options=options, in_process=args.in_process)
        print("\n=== report: tables and figures from the results folder")
        path = report.build_report(folder, results_data_labels(vcfg, folder), command=command)
        print(f"report: {path} ({time.perf_counter() - t0:.0f} s)")
    return 0


def _check_results_to_report(folder: Path, cfg: dict, args: argparse.Namespace) -> None:
    """--report-only reports what a results folder holds: a folder that does not exist, or holds no finished
    job of this grid, is a wrong --results or profile, not an empty report to write."""
    from jazbat_jax.experiments import grid
    from jazbat_jax.experiments.jobs import results_data_labels

    cfg = results_data_labels(cfg, folder)
    run_it = " ".join(shlex.quote(p) for p in _command_line(args).split() if p != "--report-only")
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder {folder} to report: give the --results folder the grid ran in, "
                                f"or run the grid first (`{run_it}`)")
    jobs = grid.plan(cfg)
    if not any(job.done(folder) for job in jobs):
        others = len(list(folder.glob("*/*/result.json")))
        found = (f"its {others} finished job(s) belong to another configuration: give the --quick / --full / --config "
                 "it was run with" if others else f"run the grid first (`{run_it}`)")
        raise ValueError(f"{folder} holds no finished job of this grid (0 of {len(jobs)}): {found}")


EPILOG_ACCURACY_COST = """examples:
  jazbat accuracy-cost                                   # 5 models x 3 seeds on WISDM watch, then the report
  jazbat accuracy-cost --archs jazbat_net examples/your_model/tiny_cnn.py:build     # your model beside Jazbat-Net
  jazbat accuracy-cost                                   # again: finished runs are skipped, the report rewritten
  jazbat accuracy-cost --seeds 0 --epochs 5 --out runs/ac-short      # a short look
  jazbat accuracy-cost --profile runs/profile/profile.json           # sizes and latency from `jazbat profile`
  jazbat accuracy-cost --report-only                     # rebuild report.md and pareto.png from OUT

Every run is a job of the experiment pipeline (a Ray task, like `jazbat experiments`): OUT/runs/<arch>-s<seed>-<hash>/
holds its run folder (`run/`, resumable) and, once finished, its result.json. Also OUT/config.json,
OUT/profile/profile.json, OUT/report.md, OUT/pareto.png, OUT/accuracy_cost.json and OUT/invocations.jsonl.
"""


def profile_json(text: str) -> Path:
    """--profile: a `jazbat profile` result, read when the options are parsed, so that a wrong file stops the
    command before its training rather than after it (accuracy_cost reads it again to copy it)."""
    path = Path(text)
    expected = "give the profile.json that `jazbat profile --out DIR` wrote"
    try:
        profile = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot read {path} ({e.strerror}): {expected}") from None
    except UnicodeDecodeError as e:
        raise argparse.ArgumentTypeError(f"{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
                                         f"{e.start}), so not a JSON profile: {expected}") from None
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{path} is not valid JSON ({e}): {expected}") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("models"), list):
        raise argparse.ArgumentTypeError(f"{path} is not a `jazbat profile` result (no 'models' list): {expected}")
    return path


# accuracy_cost.ARCHS, spelled out here so that registering the command imports nothing heavy.
ARCHS = ("jazbat_net", "sota_surrogate", "deepconvlstm", "tinyhar", "resnet1d")


def register_accuracy_cost(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "accuracy-cost", formatter_class=HelpFormatter, epilog=EPILOG_ACCURACY_COST,
        help="Jazbat-Net against the S-754 surrogate, the published baselines and your own model on WISDM: test "
             "accuracy next to parameters, MACs, file size, activation memory and latency",
        description="Train each architecture with each seed on the same WISDM 2019 task (18 activities, watch "
                    "accelerometer |a|, subject-independent split with a fixed split seed), with the same epoch budget "
                    "and early stopping on validation macro-F1; report test accuracy and macro-F1 (mean ± SD over "
                    "seeds, pooled accuracy with a participant-clustered 95% bootstrap interval) next to parameters, "
                    "MACs and the exported files' size, activation memory and batch-1 latency; test each model's "
                    "equivalence with Jazbat-Net (two one-sided tests on the seed-matched, participant-paired "
                    "accuracy difference, --margin); plot accuracy against MACs, latency and file size. S-754 "
                    "(sota_surrogate) is a complexity-matched surrogate of the previous state of the art [9], not "
                    "[9]'s published network; deepconvlstm, tinyhar and resnet1d are re-implementations of published "
                    "baselines.")
    p.add_argument("--out", type=Path, default=Path("runs/accuracy-cost"), help="results folder")
    p.add_argument("--archs", nargs="+", default=list(ARCHS), metavar="ARCH",
                   help=f"architectures to compare (default: {' '.join(ARCHS)}); also an installed jazbat.architectures "
                        "entry point, or your own model as package.module:factory or path/to/file.py:factory "
                        "(docs/your-model.md)")
    p.add_argument("--seeds", nargs="+", type=non_negative_int, default=[0, 1, 2],
                   help="training seeds (initialisation, shuffling, dropout) per architecture")
    d = p.add_argument_group("data (the same for every run)")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--data-root", type=Path, default=None,
                     help="WISDM folder (default: ../shared/data/wisdm2019 or $JAZBAT_DATA_ROOT if present, else the "
                          "bundled sample)")
    src.add_argument("--sample", action="store_true",
                     help="the small WISDM sample bundled with the package (a functional check, not a result)")
    d.add_argument("--window", type=positive_int, default=256, help="window length in samples")
    d.add_argument("--step", type=positive_int, default=128,
                   help="stride between windows (the paper's is 32: 4x the windows and training time)")
    d.add_argument("--max-windows", type=positive_int, default=None,
                   help="keep a seeded random subset of this many windows before splitting")
    d.add_argument("--split-seed", type=non_negative_int, default=0, help="seed of the subject split")
    t = p.add_argument_group("training (the same for every run)")
    t.add_argument("--epochs", type=positive_int, default=100,
                   help="the cap on epochs: early stopping is meant to end every run first (the report names any run "
                        "that reached the cap)")
    stop = t.add_mutually_exclusive_group()
    stop.add_argument("--patience", type=positive_int, default=5,
                      help="stop a run after this many epochs without a better validation macro-F1")
    stop.add_argument("--no-early-stopping", dest="patience", action="store_const", const=None,
                      help="train every run for all --epochs")
    t.add_argument("--batch-size", type=positive_int, default=32, help="batch size")
    t.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    e = p.add_argument_group("equivalence with Jazbat-Net (set before looking at any result)")
    e.add_argument("--margin", type=positive_float, default=2.0, metavar="POINTS",
                   help="the largest accuracy difference, in percentage points, that counts as no practical difference")
    lat = p.add_argument_group("exported files")
    lat.add_argument("--profile", type=profile_json, default=None, metavar="PROFILE_JSON",
                     help="a `jazbat profile` result to report (copied to OUT/profile/); without it, the installed "
                          "latency profiler exports and times each architecture's first-seed model once (cached there)")
    lat.add_argument("--no-latency", action="store_true", help="do not run the latency profiler")
    lat.add_argument("--latency-runs", type=positive_int, default=100, help="timed runs per runtime")
    lat.add_argument("--latency-warmup", type=non_negative_int, default=5, help="untimed warm-up runs")
    p.add_argument("--report-only", action="store_true", help="do not train or profile: rebuild the report from OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_ray_arguments(p)
    p.set_defaults(func=cmd_accuracy_cost)


def _accuracy_cost_command(args: argparse.Namespace) -> str:
    """Every setting of the invocation, spelled out (recorded in the run folders and the report)."""
    parts = ["jazbat", "accuracy-cost", "--out", str(args.out), "--archs", *map(_recorded_arch, args.archs),
             "--seeds", *map(str, args.seeds)]
    if args.sample:
        parts.append("--sample")
    elif args.data_root:
        parts += ["--data-root", str(args.data_root)]
    parts += ["--window", str(args.window), "--step", str(args.step)]
    if args.max_windows:
        parts += ["--max-windows", str(args.max_windows)]
    parts += ["--split-seed", str(args.split_seed), "--epochs", str(args.epochs)]
    parts += ["--patience", str(args.patience)] if args.patience else ["--no-early-stopping"]
    parts += ["--batch-size", str(args.batch_size), "--lr", str(args.lr), "--margin", f"{args.margin:g}"]
    if args.profile:
        parts += ["--profile", str(args.profile)]
    if args.no_latency:
        parts.append("--no-latency")
    if (args.latency_runs, args.latency_warmup) != (100, 5):
        parts += ["--latency-runs", str(args.latency_runs), "--latency-warmup", str(args.latency_warmup)]
    if args.report_only:
        parts.append("--report-only")
    return " ".join(shlex.quote(p) for p in parts + _ray_parts(args))


def _recorded_arch(arch: str) -> str:
    """An architecture as the recorded command shows it: a model file given by an absolute path by its file
    name only (a folder of this machine is never recorded)."""
    path, sep, factory = arch.rpartition(":")
    return f"{Path(path).name}:{factory}" if sep and path.endswith(".py") and Path(path).is_absolute() else arch


def cmd_accuracy_cost(args: argparse.Namespace) -> int:
    options = ray_options(args)  # first: --in-process sets XLA's flags, which JAX reads when it loads
    from jazbat_jax.data.config import BUNDLED
    from jazbat_jax.experiments import accuracy_cost

    root = BUNDLED if args.sample else (str(args.data_root) if args.data_root else None)
    settings = accuracy_cost.Settings(
        archs=tuple(args.archs), seeds=tuple(args.seeds), root=root, window=args.window, step=args.step,
        max_windows=args.max_windows, split_seed=args.split_seed, epochs=args.epochs, patience=args.patience,
        batch_size=args.batch_size, learning_rate=args.lr, margin=args.margin / 100)
    path = accuracy_cost.run(settings, args.out, _accuracy_cost_command(args), progress=not args.no_progress,
                             profile=args.profile, latency=not args.no_latency,
                             latency_runs=args.latency_runs, latency_warmup=args.latency_warmup,
                             report_only=args.report_only, ray_options=options, in_process=args.in_process)
    print(f"report: {path}; figure: {path.with_name('pareto.png')}")
    return 0
