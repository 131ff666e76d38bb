"""Where a jitted train step's time goes: step time, page faults, XLA temp memory, and the top HLO ops.

    python benchmarks/profile_train_step.py [--input 1d] [--batch 256] [--top 25]
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python benchmarks/profile_train_step.py   # as `jazbat` runs it

Times STEPS steps after warm-up, then traces PROFILED steps with ``jax.profiler`` and sums each HLO
op's time over the threads that ran it (read back with ``jax.profiler.ProfileData``). Ops inside a
``while`` loop (the GRU scans) show their per-step count; a ``while`` op's own time includes them.
Ops that XLA hands to a library thread pool (some convolutions and dots) can show only their dispatch.
"""
from __future__ import annotations

import argparse
import collections
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jazbat_jax.machine import hugepage_malloc_active
from jazbat_jax.model import init_variables, jazbat_net
from jazbat_jax.train.state import create_train_state
from jazbat_jax.train.steps import jit_train_step, make_optimizer

STEPS, PROFILED = 8, 5


def _op_shapes(hlo_text: str) -> dict[str, str]:
    shapes = {}
    for line in hlo_text.splitlines():
        m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+)", line)
        if m:
            shapes[m.group(1)] = m.group(2)
    return shapes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default="1d", choices=["1d", "3d", "6d"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--top", type=int, default=25, help="how many ops to list")
    args = parser.parse_args(argv)

    model = jazbat_net(args.input)
    state = create_train_state(model, init_variables(model, 0), make_optimizer())
    rng = np.random.default_rng(0)
    batch = {"x": jnp.asarray(rng.normal(size=(args.batch, 256, model.input_dim)).astype(np.float32)),
             "y": jnp.asarray(rng.integers(0, 6, args.batch).astype(np.int32)), "mask": jnp.ones(args.batch)}
    weights = jnp.ones(6)
    step = jit_train_step()
    compiled = step.lower(state, batch, weights).compile()
    for _ in range(2):
        state, _ = step(state, batch, weights)
    jax.block_until_ready(state)

    times, faults0 = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(STEPS):
        t0 = time.perf_counter()
        state, _ = step(state, batch, weights)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t0)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / STEPS
    print(f"Jazbat-Net {args.input}, batch {args.batch}: step median {statistics.median(times) * 1e3:.1f} ms "
          f"({args.batch / statistics.median(times):.0f} windows/s); {faults:,.0f} minor page faults per step; "
          f"XLA temp {compiled.memory_analysis().temp_size_in_bytes / 1e6:.0f} MB; "
          f"huge-page malloc: {hugepage_malloc_active()}")

    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(PROFILED):
                state, _ = step(state, batch, weights)
                jax.block_until_ready(state)
        trace = jax.profiler.ProfileData.from_file(str(next(Path(trace_dir).rglob("*.xplane.pb"))))
    total, count = collections.Counter(), collections.Counter()
    for plane in trace.planes:
        for line in plane.lines:
            if "Eigen" not in line.name and "PjRt" not in line.name:  # XLA's worker threads
                continue
            for event in line.events:
                if not event.name.startswith("ThunkExecutor"):
                    total[event.name] += event.duration_ns
                    count[event.name] += 1
    shapes = _op_shapes(compiled.as_text())
    print(f"\nop time summed over threads: {sum(total.values()) / PROFILED / 1e6:.1f} ms per step; top {args.top}:")
    print(f"{'ms/step':>8}  {'calls/step':>10}  op (output shape)")
    for name, ns in total.most_common(args.top):
        print(f"{ns / PROFILED / 1e6:8.2f}  {count[name] / PROFILED:10.0f}  {name} {shapes.get(name, '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
