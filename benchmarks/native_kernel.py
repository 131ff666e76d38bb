"""The native BiGRU kernels (``JAZBAT_KERNELS=native``) against the pure-JAX ones (``JAZBAT_KERNELS=xla``).

    python benchmarks/native_kernel.py [--rounds 4] [--steps 6] [--repeats 3] [--cases batch32,batch256,batch1]
    python benchmarks/native_kernel.py --bigru     # the BiGRU alone, one core
    python benchmarks/native_kernel.py --arch sota_surrogate --cases batch32,batch1   # S-754 (h = 96)
    python benchmarks/native_kernel.py --arch sota_surrogate --cases batch32 --every-shape   # its GRUs forced native

prints one JSON line per case and a summary line. Three cases, as Jazbat-Net is trained and used:

* ``batch32``: the jitted train step (Adam, cross-entropy; ``train_throughput.py``'s ``jax`` side) at
  batch 32 with XLA:CPU on one thread, as each of the grid's two workers runs it (``--workers 2``);
* ``batch256``: the same step at batch 256 with XLA's default threads (both cores);
* ``batch1``: the jitted forward (``model.apply``) of one window, the latency a deployed JAX model sees.

Each measurement runs in a process of its own (the kernel choice is read when a function is traced,
and a process that has run one side would carry its warm caches into the other). The two sides
alternate over ``--rounds`` rounds, in one order on even rounds and the other on odd ones, so that both
see the same machine; the figure of merit is the median over rounds of the per-round ratio
native / xla (throughput; for ``batch1``, xla latency / native latency: above 1 means native is faster).
Every child runs with huge-page malloc (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``), as the ``jazbat``
command sets it up. ``load_before`` / ``load_after`` are the load averages: on a shared machine the
numbers mean little unless both are low.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
CASES = {  # name -> (batch, XLA_FLAGS of the child, what is timed)
    "batch32": (32, SINGLE_THREAD, "train"),
    "batch256": (256, "", "train"),
    "batch1": (1, "", "forward"),
}


ARCHS = ("jazbat_net", "sota_surrogate")


def forward_block(calls: int, arch: str = "jazbat_net"):
    """A callable that runs CALLS jitted batch-1 forwards of ``arch`` (1D; compiled here)."""
    import jax
    import numpy as np

    from jazbat_jax.model import init_variables, jazbat_net, sota_surrogate

    model = {"jazbat_net": jazbat_net, "sota_surrogate": sota_surrogate}[arch]("1d")
    variables = init_variables(model, 0)
    x = jax.device_put(np.random.default_rng(0).normal(size=(1, 256, 1)).astype(np.float32))
    forward = jax.jit(lambda x: model.apply(variables, x))

    def run():
        for _ in range(calls):
            jax.block_until_ready(forward(x))

    return run


def bigru_only(batches=(1, 32, 256), calls: int = 10) -> list[dict]:
    """The BiGRU alone (T = 256, h = 32, F = 1), both kernel choices in this process: CPU time of the jitted
    forward and of the jitted forward + gradient (its parameters' and input's), minimum over ``calls`` calls.
    CPU time (all threads) leaves out what other processes take from this one on a shared machine; run it
    pinned to one core with XLA on one thread (``--bigru`` does) to compare single-thread work."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jazbat_jax import kernels

    rng = np.random.default_rng(0)
    h, window = 32, 256

    def timed(fn, *args):
        jax.block_until_ready(fn(*args))
        times = []
        for _ in range(calls):
            t0 = time.process_time()
            jax.block_until_ready(fn(*args))
            times.append(time.process_time() - t0)
        return round(min(times) * 1e3, 3)

    rows = []
    for batch in batches:
        x = jnp.asarray(rng.normal(size=(batch, window, 1)).astype(np.float32))
        weights = [{"kernel": jnp.asarray(rng.normal(size=(1, 3 * h)).astype(np.float32)),
                    "bias": jnp.asarray(rng.normal(scale=0.1, size=(2, 3 * h)).astype(np.float32)),
                    "recurrent_kernel": jnp.asarray(rng.normal(scale=h ** -0.5, size=(h, 3 * h)).astype(np.float32))}
                   for _ in range(2)]
        for choice in ("xla", "native"):
            os.environ["JAZBAT_KERNELS"] = choice
            jax.clear_caches()  # retrace with this choice
            forward = jax.jit(lambda x, w: kernels.bigru(x, w[0], w[1]))
            grad = jax.jit(jax.grad(lambda w, x: jnp.sum(kernels.bigru(x, w[0], w[1]) ** 2), argnums=(0, 1)))
            rows.append({"batch": batch, "kernels": choice, "native": kernels.native_selected(),
                         "forward_ms": timed(forward, x, weights), "forward_and_gradient_ms": timed(grad, weights, x)})
    return rows


def child(case: str, steps: int, repeats: int, arch: str = "jazbat_net", every_shape: bool = False) -> dict:
    """One side of one case in this process: a rate per timed block."""
    from jazbat_jax import kernels, native

    if every_shape:  # the native side runs every GRU natively, also the shapes left to XLA by default
        native.FAST_UNITS, native.FAST_MAX_FEATURES = tuple(range(1, 1025)), 1 << 30

    batch, _, what = CASES[case]
    if what == "train":
        from train_throughput import jax_block

        run, per_block = jax_block(batch, steps, arch), batch * steps
    else:
        calls = 50 * steps
        run, per_block = forward_block(calls, arch), calls
    run()  # compile
    run()  # warm up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        rates.append(per_block / (time.perf_counter() - t0))
    return {"case": case, "arch": arch, "kernels": os.environ.get("JAZBAT_KERNELS", "xla"),
            "native": kernels.native_selected(), "per_s": rates}


def _run_child(case: str, kernels: str, args) -> dict:
    _, flags, _ = CASES[case]
    env = {**os.environ, "JAZBAT_KERNELS": kernels,
           "GLIBC_TUNABLES": ":".join(t for t in (os.environ.get("GLIBC_TUNABLES"), HUGEPAGE_TUNABLE) if t)}
    if flags:
        env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    cmd = [sys.executable, __file__, "--child", case, "--steps", str(args.steps), "--repeats", str(args.repeats),
           "--arch", args.arch] + (["--every-shape"] if args.every_shape else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the {case} / {kernels} measurement failed (exit {done.returncode}): {tail}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["native"] != (kernels == "native"):
        raise RuntimeError(f"the {case} / {kernels} measurement did not run the kernels it was asked for "
                           f"(native kernels: {out['native']}); see its stderr")
    return out


def measure_case(case: str, args) -> dict:
    rounds = []
    for r in range(args.rounds):
        order = ("native", "xla") if r % 2 == 0 else ("xla", "native")
        got = {k: statistics.median(_run_child(case, k, args)["per_s"]) for k in order}
        rounds.append(got)
    ratios = [g["native"] / g["xla"] for g in rounds]
    unit = "windows_per_s" if CASES[case][2] == "train" else "forwards_per_s"
    return {"case": case, "arch": args.arch, "every_shape": args.every_shape, "batch": CASES[case][0], "unit": unit,
            "native": [round(g["native"], 1) for g in rounds], "xla": [round(g["xla"], 1) for g in rounds],
            "ratio_median": round(statistics.median(ratios), 3), "ratios": [round(x, 3) for x in ratios]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per case")
    parser.add_argument("--steps", type=int, default=6, help="train steps per timed block (x50 forwards for batch1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per measurement")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES))
    parser.add_argument("--arch", choices=ARCHS, default="jazbat_net",
                        help="the model of the batch32 / batch256 / batch1 cases (sota_surrogate: S-754, GRU h = 96)")
    parser.add_argument("--every-shape", action="store_true",
                        help="the native side runs every GRU natively, also shapes the default leaves to XLA")
    parser.add_argument("--bigru", action="store_true",
                        help="instead: time the BiGRU alone in one process, pinned to one core with XLA on one thread")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bigru and args.child is None:
        env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREAD}".strip(),
               "GLIBC_TUNABLES": ":".join(t for t in (os.environ.get("GLIBC_TUNABLES"), HUGEPAGE_TUNABLE) if t)}
        cpu = str(max(os.sched_getaffinity(0)))
        load_before = os.getloadavg()
        done = subprocess.run(["taskset", "-c", cpu, sys.executable, __file__, "--child", "bigru"], env=env,
                              capture_output=True, text=True)
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"the BiGRU measurement failed (exit {done.returncode}): {tail}")
        print(done.stdout.strip().splitlines()[-1])
        print(json.dumps({"load_before": [round(v, 2) for v in load_before],
                          "load_after": [round(v, 2) for v in os.getloadavg()],
                          "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}))
        return 0
    if args.child == "bigru":
        print(json.dumps(bigru_only()))
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.steps, args.repeats, args.arch, args.every_shape)))
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    load_before = os.getloadavg()
    results = []
    for case in cases:
        results.append(measure_case(case, args))
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"summary": {r["case"]: r["ratio_median"] for r in results},
                      "load_before": [round(v, 2) for v in load_before],
                      "load_after": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count(),
                      "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
