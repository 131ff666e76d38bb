"""Train-step throughput of one side, batch 256, in a process of its own (run by test_bench_train.py).

    python benchmarks/train_throughput.py jax|keras|keras-xla [--steps 6] [--repeats 5]

prints one JSON line: {"side", "windows_per_s": [one rate per block of STEPS batches], ...}.

Each side gets its own process because two frameworks in one process slow each other down on
2 cores: after Keras has run, TensorFlow's idle threads cost the JAX step ~30% (1,751 → 1,180-1,310
windows/s measured in one process). Compilation, tracing and warm-up happen before the timing.

* ``jax``: ``jazbat_jax``'s jitted train step (Adam, softmax cross-entropy); every timed step
  blocks until its result is ready.
* ``keras``: the Keras 3 twin's ``model.fit`` as a Keras user runs it (``jit_compile='auto'``,
  which on a CPU-only machine means no XLA: TensorFlow's own kernels, with oneDNN).
* ``keras-xla``: the same with ``jit_compile=True`` (XLA), the configuration that reproduces the
  ~290 windows/s of shared/spec/engineering-notes.md on this machine kind.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SIDES = ("jax", "keras", "keras-xla")


def _data(n: int, window: int = 256):
    rng = np.random.default_rng(0)  # throughput does not depend on the values
    return rng.normal(size=(n, window, 1)).astype(np.float32), rng.integers(0, 6, n).astype(np.int32)


def jax_block(batch: int, steps: int, arch: str = "jazbat_net"):
    """A callable that runs STEPS jitted train steps of ``arch`` (1D; compiled and warmed up here)."""
    import jax

    from jazbat_jax.model import init_variables, jazbat_net, sota_surrogate
    from jazbat_jax.train.state import create_train_state
    from jazbat_jax.train.steps import jit_train_step, make_optimizer

    model = {"jazbat_net": jazbat_net, "sota_surrogate": sota_surrogate}[arch]("1d")
    state = create_train_state(model, init_variables(model, 0), make_optimizer())
    x, y = _data(batch * steps)
    batches = [{"x": jax.device_put(x[i * batch:(i + 1) * batch]), "y": jax.device_put(y[i * batch:(i + 1) * batch]),
                "mask": jax.device_put(np.ones(batch, np.float32))} for i in range(steps)]
    weights = jax.device_put(np.ones(model.num_classes, np.float32))
    step = jit_train_step()
    holder = {"state": state}

    def run():
        s = holder["state"]
        for b in batches:
            s, _ = step(s, b, weights)
        jax.block_until_ready(s.params)
        holder["state"] = s

    return run


def keras_block(batch: int, steps: int, jit_compile):
    """A callable that runs one ``fit`` epoch of STEPS batches (traced and warmed up here)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    sys.path.insert(0, str(Path(__file__).parent))
    from keras_twin import build_keras_twin

    twin = build_keras_twin(input_dim=1, num_classes=6, reduce_filters=6, window=256)
    twin.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7), loss="sparse_categorical_crossentropy",
                 jit_compile=jit_compile)
    x, y = _data(batch * steps)
    return lambda: twin.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)


def measure(side: str, batch: int, steps: int, repeats: int) -> dict:
    if side == "jax":
        run = jax_block(batch, steps)
    else:
        run = keras_block(batch, steps, "auto" if side == "keras" else True)
    run()  # compile / trace
    run()  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        rates.append(batch * steps / (time.perf_counter() - t0))
    from jazbat_jax.machine import hugepage_malloc_active

    return {"side": side, "batch": batch, "steps": steps, "windows_per_s": rates,
            "malloc_hugepages": hugepage_malloc_active()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6, help="batches per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.side, args.batch, args.steps, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
