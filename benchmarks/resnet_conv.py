"""The 1D ResNet's training step with its convolutions as matrix products (how it trains) against the same
step with ``lax.conv_general_dilated`` (how it infers and exports).

    python benchmarks/resnet_conv.py [--rounds 5] [--steps 5] [--batch 32]

One single-threaded XLA:CPU process, as a pipeline worker trains (``--workers 2``): both jitted steps
(forward, cross-entropy, gradient; BatchNorm in training mode) at the real size (10.5M parameters, windows of
256), timed alternately over ``--rounds`` rounds so that both see the same machine. Prints one JSON line: the
median step time of each side per round, the median per-round ratio (convolution / matrix product: above 1 means
the matrix product is faster), the largest loss and gradient differences, and the load averages before and after
(on a shared machine the numbers mean little unless both are low).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from jazbat_jax.experiments.runner import single_thread_xla_flags

os.environ["XLA_FLAGS"] = single_thread_xla_flags()  # read when XLA starts: one thread, as a pipeline worker

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jazbat_jax import baselines  # noqa: E402
from jazbat_jax.model import build, init_variables  # noqa: E402


def loss_and_grad(model):
    """The loss-and-gradient of one batch; the ResNet's convolutions are chosen when it is traced."""
    def loss(params, batch_stats, x, y):
        logits, _ = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                                mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return jax.value_and_grad(loss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per side per round")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    load_before = list(os.getloadavg())
    model = build("resnet1d", "1d", 18)
    variables = init_variables(model, seed=0)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(args.batch, 256, 1)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 18, args.batch))
    inputs = (variables["params"], variables["batch_stats"], x, y)
    steps = {}
    for name, as_matmul in (("matmul", True), ("conv", False)):
        saved = baselines.conv1d_as_matmul
        baselines.conv1d_as_matmul = saved if as_matmul else None
        try:
            steps[name] = jax.jit(loss_and_grad(model)).lower(*inputs).compile()
        finally:
            baselines.conv1d_as_matmul = saved
    out = {name: jax.block_until_ready(step(*inputs)) for name, step in steps.items()}
    times = {name: [] for name in steps}
    for r in range(args.rounds):
        for name in (list(steps) if r % 2 == 0 else list(reversed(steps))):
            t = []
            for _ in range(args.steps):
                start = time.perf_counter()
                jax.block_until_ready(steps[name](*inputs))
                t.append(time.perf_counter() - start)
            times[name].append(statistics.median(t))
    grad_diff = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in
                    zip(jax.tree.leaves(out["matmul"][1]), jax.tree.leaves(out["conv"][1])))
    print(json.dumps({
        "batch": args.batch, "rounds": args.rounds, "steps_per_round": args.steps,
        "step_s": {name: [round(t, 4) for t in ts] for name, ts in times.items()},
        "ratio_conv_over_matmul": round(statistics.median(c / m for c, m in zip(times["conv"], times["matmul"])), 3),
        "loss_diff": abs(float(out["matmul"][0] - out["conv"][0])),
        "max_grad_diff_relative_to_leaf_max": grad_diff,
        "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
