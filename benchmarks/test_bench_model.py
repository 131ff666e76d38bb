"""Forward-pass benchmarks: jitted Jazbat-Net (1D/3D/6D) and the S-754 surrogate at batch 1 and 256.

Compilation and warm-up happen in the fixture; every timed call blocks until the result is ready.
The deterministic numbers (parameters, MACs) go into extra_info so that they appear in the JSON.
Target (issue 2): Jazbat-Net 1D batch-1 forward ≤ 0.6 ms median on the 2-core CPU machine.
Also the train step at batch 256 for every model (the Keras comparison is in test_bench_train.py).
"""
import jax
import pytest

from jazbat_jax import complexity
from jazbat_jax.model import init_variables, jazbat_net, sota_surrogate

pytestmark = pytest.mark.bench

MODELS = {
    "jazbat_1d": lambda: jazbat_net("1d"),
    "jazbat_3d": lambda: jazbat_net("3d"),
    "jazbat_6d": lambda: jazbat_net("6d"),
    "s754_surrogate_1d": lambda: sota_surrogate("1d"),
}


def compiled_forward(model, batch):
    variables = init_variables(model)
    x = jax.random.normal(jax.random.key(0), (batch, model.window, model.input_dim))
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
    for _ in range(5):  # compile + warm-up, outside the timing
        forward(variables, x).block_until_ready()
    return lambda: forward(variables, x).block_until_ready()


@pytest.mark.parametrize("batch", [pytest.param(1, marks=pytest.mark.ci), 256])
@pytest.mark.parametrize("name", MODELS)
def test_forward(benchmark, name, batch):
    model = MODELS[name]()
    cost = complexity.count(model)
    benchmark.group = f"forward batch {batch}"
    benchmark.extra_info["batch"] = batch
    run = compiled_forward(model, batch)
    if batch == 1:  # deterministic numbers, gated exactly by `python -m benchmarks.gate check`
        xla = complexity.xla_crosscheck(model, init_variables(model))
        benchmark.extra_info["exact"] = {
            "params_total": cost.total,
            "params_trainable": cost.trainable,
            "macs": cost.macs,
            "xla_flops_scan_corrected": xla["xla_flops_scan_corrected"],
            "activation_temp_bytes": xla["memory_temp_bytes"],
        }
    rounds = 100 if batch == 1 else (3 if name.startswith("s754") else 10)
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["windows_per_s_median"] = batch / benchmark.stats.stats.median


@pytest.mark.parametrize("name", MODELS)
def test_train_step(benchmark, name):
    """One jitted Adam step at batch 256 (the training code's own step, BatchNorm and dropout included)."""
    import numpy as np

    from jazbat_jax.train.state import create_train_state
    from jazbat_jax.train.steps import jit_train_step, make_optimizer

    model = MODELS[name]()
    state = create_train_state(model, init_variables(model), make_optimizer())
    rng = np.random.default_rng(0)
    batch = {"x": jax.device_put(rng.normal(size=(256, model.window, model.input_dim)).astype(np.float32)),
             "y": jax.device_put(rng.integers(0, model.num_classes, 256).astype(np.int32)),
             "mask": jax.device_put(np.ones(256, np.float32))}
    weights = jax.device_put(np.ones(model.num_classes, np.float32))
    step = jit_train_step()
    holder = {"state": state}

    def run():
        holder["state"], _ = step(holder["state"], batch, weights)
        jax.block_until_ready(holder["state"].params)

    run()  # compile + warm-up, outside the timing
    benchmark.group = "train step batch 256"
    benchmark.pedantic(run, rounds=3 if name.startswith("s754") else 10, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:
        benchmark.extra_info["windows_per_s_median"] = 256 / benchmark.stats.stats.median
