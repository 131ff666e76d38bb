"""Training cost of an experiment grid: window-passes of every training job, and hours at a given rate.

    python benchmarks/grid_cost.py [--profile full] [--config FILE] [--rate 412.6] [--results DIR]

Counts, for each pretraining and fine-tuning job of ``grid.plan``, the windows of its training part
(loaded from the real data the config names) times its maximum epochs, and prints one JSON line. The
forests and personal models are not counted (they are minutes). Early stopping shortens the real cost
by the fraction of the maximum epochs the runs train: with ``--results``, that fraction is measured on
the grid's finished jobs there (per kind, pretraining or fine-tuning), and the jobs not yet finished are
costed at it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from jazbat_jax.data.config import split_of
    from jazbat_jax.experiments import config as cfgmod
    from jazbat_jax.experiments import grid

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="full", choices=sorted(cfgmod.PROFILES))
    p.add_argument("--config", type=Path, default=None, help="a grid config file merged onto the profile")
    p.add_argument("--rate", type=float, default=None, help="training windows per second, for the hours")
    p.add_argument("--results", type=Path, default=None,
                   help="a results folder of this grid: cost the unfinished jobs at the fraction of the maximum "
                        "epochs its finished jobs trained")
    a = p.parse_args(argv)
    cfg = cfgmod.load_config(a.profile, a.config)
    cache, train_sizes, passes, runs = grid.DataCache(), {}, 0, 0
    todo: dict[str, int] = {"pretrain": 0, "deep": 0}  # window-passes at the maximum epochs, unfinished jobs
    trained: dict[str, list[float]] = {"pretrain": [], "deep": []}  # finished jobs: epochs trained / maximum
    for job in grid.plan(cfg):
        if job.kind not in ("pretrain", "deep"):
            continue
        run = grid.run_config(job, Path("."))
        key = (run.data.without_split(), run.data.split)
        if key not in train_sizes:
            train_sizes[key] = len(split_of(run.data, cache.windows(run.data))[1].train)
        passes += train_sizes[key] * run.train.epochs
        runs += 1
        if a.results is not None:
            if job.done(a.results):
                result = json.loads((job.folder(a.results) / "result.json").read_text())
                trained[job.kind].append((result.get("stopped_epoch") or run.train.epochs) / run.train.epochs)
            else:
                todo[job.kind] += train_sizes[key] * run.train.epochs
    out = {"profile": cfg["profile"], "training_runs": runs, "window_passes": passes}
    if a.rate:
        out.update(rate_windows_per_s=a.rate, hours=round(passes / a.rate / 3600))
    if a.results is not None:
        fraction = {k: sum(v) / len(v) if v else 1.0 for k, v in trained.items()}
        left = sum(todo[k] * fraction[k] for k in todo)  # at the measured fractions, not the printed (rounded) ones
        out.update(finished_training_runs=sum(len(v) for v in trained.values()),
                   epoch_fraction_trained={k: round(f, 3) for k, f in fraction.items()},
                   remaining_window_passes_at_max=sum(todo.values()), remaining_window_passes_expected=round(left))
        if a.rate:
            out["remaining_hours_expected"] = round(left / a.rate / 3600, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
