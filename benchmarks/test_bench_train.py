"""Train-step throughput, batch 256: jitted Jazbat-Net (Adam, softmax CE) side by side with the
Keras 3 twin's ``model.fit`` (the paper's toolchain), measured in the same process and run.

Target (issue 4): jazbat-jax ≥ 3× the Keras twin's windows/s on the 2-core CPU machine.
Compilation / tracing and warm-up are outside the timing; every timed JAX step blocks until
its result is ready. Both sides see the same shapes (F=1, K=6, C=6, T=256) and random windows
(throughput does not depend on the values). Run:

    .venv/bin/pytest benchmarks/test_bench_train.py --benchmark-enable -s
"""
from __future__ import annotations

import statistics
import time

import jax
import numpy as np
import pytest

from jazbat_jax.model import init_variables, jazbat_net
from jazbat_jax.train.state import create_train_state
from jazbat_jax.train.steps import jit_train_step, make_optimizer

pytestmark = pytest.mark.bench

BATCH, STEPS, REPEATS = 256, 6, 5  # STEPS batches per timed block; REPEATS blocks per side, median kept


def _data(n: int):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 256, 1)).astype(np.float32), rng.integers(0, 6, n).astype(np.int32)


def jax_block():
    """A callable that runs STEPS jitted train steps of batch 256 (compiled and warmed up here)."""
    model = jazbat_net("1d")
    state = create_train_state(model, init_variables(model, 0), make_optimizer())
    x, y = _data(BATCH * STEPS)
    batches = [{"x": jax.device_put(x[i * BATCH:(i + 1) * BATCH]), "y": jax.device_put(y[i * BATCH:(i + 1) * BATCH]),
                "mask": jax.device_put(np.ones(BATCH, np.float32))} for i in range(STEPS)]
    weights = jax.device_put(np.ones(6, np.float32))
    step = jit_train_step()
    holder = {"state": state}

    def run():
        s = holder["state"]
        for b in batches:
            s, m = step(s, b, weights)
        jax.block_until_ready(s.params)
        holder["state"] = s

    run()  # compile + warm-up
    run()
    return run


def keras_block():
    """A callable that runs one Keras ``fit`` epoch of STEPS batches of 256 (traced and warmed up here)."""
    import keras

    from keras_twin import build_keras_twin  # benchmarks/ is on sys.path (not a package)

    twin = build_keras_twin(input_dim=1, num_classes=6, reduce_filters=6, window=256)
    twin.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7), loss="sparse_categorical_crossentropy")
    x, y = _data(BATCH * STEPS)
    run = lambda: twin.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    run()  # trace + warm-up
    run()
    return run


def _windows_per_s(run) -> list[float]:
    out = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        run()
        out.append(BATCH * STEPS / (time.perf_counter() - t0))
    return out


def test_train_step_throughput_vs_keras(benchmark):
    jax_run, keras_run = jax_block(), keras_block()
    # Interleave the two sides so that both see the same machine load.
    jax_rates, keras_rates = [], []
    for _ in range(REPEATS):
        jax_rates += _windows_per_s(jax_run)[:1]
        keras_rates += _windows_per_s(keras_run)[:1]
    jax_med, keras_med = statistics.median(jax_rates), statistics.median(keras_rates)
    ratio = jax_med / keras_med
    benchmark.group = "train step batch 256"
    benchmark.extra_info.update(
        jax_windows_per_s=round(jax_med, 1),
        keras_fit_windows_per_s=round(keras_med, 1),
        ratio=round(ratio, 2),
        jax_all=[round(r, 1) for r in jax_rates],
        keras_all=[round(r, 1) for r in keras_rates],
    )
    benchmark.pedantic(jax_run, rounds=3, iterations=1)  # pytest-benchmark's own timing of a JAX block
    print(f"\njazbat-jax train step: {jax_med:.0f} windows/s; Keras twin fit: {keras_med:.0f} windows/s; "
          f"ratio {ratio:.2f}× (target ≥ 3×)")
    assert ratio >= 3.0, f"jazbat-jax is {ratio:.2f}× the Keras twin (target ≥ 3×)"
