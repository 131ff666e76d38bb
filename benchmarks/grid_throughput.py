"""Windows/s of a small experiment grid on a local Ray against the same grid in one process.

    python benchmarks/grid_throughput.py [--workers 2] [--repeats 2] [--epochs 8] [--out runs/grid-throughput]

Each repeat runs the same grid (the bundled sample, 1D, Jazbat-Net from scratch under the subject split,
3 folds, true and permuted labels: 6 training jobs, no forest or trunk) twice from empty results folders,
alternating: once with ``--in-process`` (one process, XLA on every core) and once on a local Ray with
``--workers`` single-threaded workers, each in a fresh Python process. Windows/s is the training windows
the jobs passed through their models (``grid.windows_trained``) over the invocation's wall time, so
start-up, compilation, validation and evaluation count against both. Writes OUT/grid_throughput.json and
prints a table; measure on an idle machine (the load average is recorded before and after).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

GRID = {
    "target": {"window": 256, "step": 32},
    "finetune": {"epochs": 8, "batch_size": 32},
    "grid": {"inputs": ["1d"], "pretraining": ["none"], "protocols": ["subject"], "n_folds": 3, "seeds": [0],
             "labels": ["true", "permuted"], "identity_probes": False},
    "baseline": {"enabled": False},
    "personal": {"enabled": False},
    "latency": {"enabled": False},
}

ONE = """
import json, sys
from jazbat_jax.experiments import config, grid, runner
cfg = config.load_config("quick", sys.argv[1])
workers = int(sys.argv[3])
summary = grid.run_grid(cfg, sys.argv[2], progress=False, log=lambda _: None, in_process=workers == 0,
                        ray_options=runner.RayOptions(workers=workers or None))
results = grid.load_results(sys.argv[2], cfg)
print(json.dumps({"wall_s": summary["wall_s"], "windows": sum(grid.windows_trained(r) for r in results),
                  "jobs": len(results), "load": [summary["load_average_start"], summary["load_average_end"]]}))
"""


def run_once(cfg_file: Path, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as results:
        out = subprocess.run([sys.executable, "-c", ONE, str(cfg_file), results, str(workers)], check=True,
                             capture_output=True, text=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["windows_per_s"] = row["windows"] / row["wall_s"]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="local Ray workers (single-threaded)")
    p.add_argument("--repeats", type=int, default=2, help="alternating pairs of runs")
    p.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs of each job")
    p.add_argument("--out", type=Path, default=Path("runs/grid-throughput"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg_file = args.out / "grid.json"
    cfg_file.write_text(json.dumps({**GRID, "finetune": {**GRID["finetune"], "epochs": args.epochs}}))
    rows = []
    for r in range(args.repeats):
        for mode, workers in (("one process", 0), (f"local Ray, {args.workers} workers", args.workers)):
            row = {"repeat": r + 1, "mode": mode, **run_once(cfg_file, workers)}
            rows.append(row)
            print(f"repeat {row['repeat']}, {mode}: {row['windows_per_s']:.0f} windows/s ({row['wall_s']:.0f} s, "
                  f"load {row['load'][0]} -> {row['load'][1]})", flush=True)
    for r in range(args.repeats):
        one, ray = rows[2 * r], rows[2 * r + 1]
        ray["ratio_to_one_process"] = ray["windows_per_s"] / one["windows_per_s"]
    (args.out / "grid_throughput.json").write_text(json.dumps(rows, indent=2))
    print(tabulate([[x["repeat"], x["mode"], x["jobs"], x["windows"], f"{x['wall_s']:.1f}", f"{x['windows_per_s']:.0f}",
                     f"{x['ratio_to_one_process']:.2f}" if "ratio_to_one_process" in x else ""] for x in rows],
                   headers=["repeat", "mode", "jobs", "windows", "wall s", "windows/s", "× one process"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
