"""Where a multi-run step's time goes: the two hot spots of Jazbat-Net (``kernels.py``), their gradients
under ``jax.vmap`` over R runs (each run its own weights, as in ``train/multi.py``), batched both ways
(``kernels.RUN_LOOP``: a loop over the runs, or JAX's own batching rules), against R separate calls of the
same jitted single-run gradient.

    python benchmarks/multi_run_kernels.py [--runs 4] [--batch 32] [--repeats 10]

prints one JSON line: milliseconds per call for each, and the load average (the machine may be shared).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jazbat_jax import kernels


def _ms(f, *args, repeats: int) -> float:
    jax.block_until_ready(f(*args))  # compile
    t0 = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(f(*args))
    return round((time.perf_counter() - t0) / repeats * 1e3, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--channels", type=int, default=16, help="conv channels in and out")
    p.add_argument("--units", type=int, default=32, help="GRU units")
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    arr = lambda *s, scale=1.0: jnp.asarray(rng.normal(scale=scale, size=s), jnp.float32)
    r, b, t, c, h = a.runs, a.batch, a.window, a.channels, a.units
    load_before = os.getloadavg()

    def vmapped(f, *args):
        """Milliseconds per call of ``vmap(f)``, batched each way."""
        out = {}
        for name, loop in (("loop_over_runs", True), ("jax_batching", False)):
            kernels.RUN_LOOP.update(conv=loop, gru=loop)
            out[name] = _ms(jax.jit(jax.vmap(f)), *args, repeats=a.repeats)
        return out

    conv = jax.grad(lambda x, k, c_: jnp.sum(kernels.conv1d_same(x, k, c_) ** 2), argnums=(0, 1, 2))
    x, k, bias = arr(r, b, t, c), arr(r, 5, c, c), arr(r, c)
    conv_v = vmapped(conv, x, k, bias)
    conv_1 = _ms(jax.jit(conv), x[0], k[0], bias[0], repeats=a.repeats)

    gru = jax.grad(lambda x, w, bb, u: jnp.sum(kernels.gru_scan(x, w, bb, u) ** 2), argnums=(1, 2, 3))
    xs, w, gb, u = arr(r, t, b, 1), arr(r, 1, 3 * h, scale=0.5), arr(r, 2, 3 * h, scale=0.1), arr(r, h, 3 * h, scale=0.3)
    gru_v = vmapped(gru, xs, w, gb, u)
    gru_1 = _ms(jax.jit(gru), xs[0], w[0], gb[0], u[0], repeats=a.repeats)
    print(json.dumps({
        "runs": r, "batch": b, "window": t,
        "conv_grad_ms": {**conv_v, "separate_calls": round(r * conv_1, 3)},
        "gru_grad_ms": {**gru_v, "separate_calls": round(r * gru_1, 3)},
        "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
