"""Throughput of R runs trained together in one program against the ways of training them one by one.

    python benchmarks/multi_run_throughput.py --runs 15 --batch 32 [--steps 6] [--repeats 3]

prints one JSON line:

* ``single_wps``: one run's jitted train step at ``--batch`` (``train_throughput.py``'s ``jax`` side);
* ``multi_wps``: ``--runs`` runs at ``--batch`` each in one program (``multi.jit_multi_train_step``,
  every run active), windows/s summed over the runs; ``ratio`` = multi / single;
* ``multi_jax_batching_wps``: the same program with JAX's own batching rules in the gradient kernels
  instead of their loop over runs (``kernels.RUN_LOOP``);
* ``batch256_wps``: one run at batch 256 (what the grid trained at before);
* ``keras_wps``: the Keras twin's ``fit`` at ``--batch`` (the paper's toolchain, one run at a time);
* ``two_process_wps``: the simplest alternative, two single-threaded processes each training one run at
  ``--batch``, side by side (summed windows/s over the same timed span);
* ``peak_rss_mb``: each measurement's peak resident memory (its own process);
* ``load_before`` / ``load_after``: ``os.getloadavg()``, because the machine may be shared.

Each rate is the median of ``--repeats`` timed blocks of ``--steps`` steps, after compilation and a
warm-up block; every measurement runs in a process of its own (see ``train_throughput.py`` for why).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# One thread for XLA:CPU's own work (the two-process alternative gives each process one core).
SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def multi_block(runs: int, batch: int, steps: int, run_loop: bool = True):
    """A callable that runs STEPS multi-run steps of RUNS stacked states (compiled here)."""
    import jax
    import numpy as np
    from train_throughput import _data

    from jazbat_jax import kernels
    from jazbat_jax.model import init_variables, jazbat_net
    from jazbat_jax.train.multi import _stack, jit_multi_train_step
    from jazbat_jax.train.state import create_train_state
    from jazbat_jax.train.steps import make_optimizer

    kernels.RUN_LOOP.update(conv=run_loop, gru=run_loop)

    model = jazbat_net("1d")
    tx = make_optimizer()
    states = _stack([create_train_state(model, init_variables(model, r), tx, r) for r in range(runs)])
    x, y = _data(runs * batch * steps)
    x, y = x.reshape(steps, runs, batch, *x.shape[1:]), y.reshape(steps, runs, batch)
    batches = [{"x": jax.device_put(x[s]), "y": jax.device_put(y[s]),
                "mask": jax.device_put(np.ones((runs, batch), np.float32))} for s in range(steps)]
    weights = jax.device_put(np.ones((runs, 6), np.float32))
    active = jax.device_put(np.ones(runs, bool))
    holder = {"states": states}

    def run():
        s = holder["states"]
        for b in batches:
            s, _ = jit_multi_train_step(s, b, weights, active)
        jax.block_until_ready(s.params)
        holder["states"] = s

    return run


def child(side: str, runs: int, batch: int, steps: int, repeats: int) -> dict:
    """One measurement in this process: windows/s per timed block and peak memory."""
    import train_throughput

    if side in ("multi", "multi_jax_batching"):
        run, per_block = multi_block(runs, batch, steps, side == "multi"), runs * batch * steps
        run()
        run()
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            rates.append(per_block / (time.perf_counter() - t0))
        out = {"side": side, "windows_per_s": rates}
    else:
        out = train_throughput.measure(side, batch, steps, repeats)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _spawn(side: str, args, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, **(env_extra or {})}
    cmd = [sys.executable, __file__, "--child", side, "--runs", str(args.runs), "--batch", str(args.batch),
           "--steps", str(args.steps), "--repeats", str(args.repeats)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)


def _result(p: subprocess.Popen) -> dict:
    out, _ = p.communicate()
    if p.returncode:
        raise RuntimeError(f"a measurement process failed (exit {p.returncode}); run it alone to see why")
    return json.loads(out.strip().splitlines()[-1])


def _median(r: dict) -> float:
    return round(statistics.median(r["windows_per_s"]), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras measurement (no TensorFlow)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.runs, args.batch, args.steps, args.repeats)))
        return 0
    load_before = os.getloadavg()
    single, multi = _result(_spawn("jax", args)), _result(_spawn("multi", args))
    multi_jax = _result(_spawn("multi_jax_batching", args))
    b256 = _result(_spawn("jax", argparse.Namespace(**{**vars(args), "batch": 256})))
    keras = None if args.no_keras else _result(_spawn("keras", args))
    # Two single-threaded processes at once: each times its own blocks while the other runs.
    pair = [_spawn("jax", args, {"XLA_FLAGS": SINGLE_THREAD}) for _ in range(2)]
    pair = [_result(p) for p in pair]
    line = {
        "runs": args.runs, "batch": args.batch,
        "single_wps": _median(single), "multi_wps": _median(multi),
        "ratio": round(_median(multi) / _median(single), 2),
        "multi_jax_batching_wps": _median(multi_jax),
        "batch256_wps": _median(b256), "keras_wps": _median(keras) if keras else None,
        "two_process_wps": round(sum(_median(p) for p in pair), 1),
        "spread": {"single": single["windows_per_s"], "multi": multi["windows_per_s"],
                   "multi_jax_batching": multi_jax["windows_per_s"], "batch256": b256["windows_per_s"],
                   "two_process": [p["windows_per_s"] for p in pair]},
        "peak_rss_mb": {"single": single["peak_rss_mb"], "multi": multi["peak_rss_mb"],
                        "multi_jax_batching": multi_jax["peak_rss_mb"], "batch256": b256["peak_rss_mb"],
                        "keras": keras["peak_rss_mb"] if keras else None},
        "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
