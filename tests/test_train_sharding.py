"""Data parallelism: sharded steps on 4 (forced host) devices equal the single-device steps."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jazbat_jax.train.sharding import DataParallel

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import jax, numpy as np, optax
    assert jax.device_count() == 4, jax.devices()
    from jazbat_jax.model import init_variables
    from jazbat_jax.train.input_pipeline import batches
    from jazbat_jax.train.sharding import DataParallel
    from jazbat_jax.train.state import create_train_state
    from jazbat_jax.train.steps import jit_eval_step, jit_train_step, make_optimizer
    from tiny import tiny_model, tiny_windowset

    ws = tiny_windowset(16)
    model = tiny_model()
    variables = init_variables(model, 0)
    batch = next(batches(ws.x, ws.y, 16))
    weights = np.ones(3, np.float32)
    results = {{}}
    for name, devices in (("single", jax.devices()[:1]), ("sharded", jax.devices())):
        dp = DataParallel.create(devices)
        # SGD: the update is linear in the gradient, so the comparison checks the gradient
        # all-reduce itself (Adam's g/sqrt(v) would amplify float reordering of near-zero gradients).
        state = dp.put_state(create_train_state(model, variables, optax.sgd(0.1), seed=0))
        step = jit_train_step(dp.state_sharding(state), dp.data, dp.replicated)
        b = dp.put_batch(batch)
        if name == "sharded":
            assert len(b["x"].sharding.device_set) == 4 and b["x"].addressable_shards[0].data.shape == (4, 32, 1)
        for _ in range(2):
            state, m = step(state, b, jax.device_put(weights, dp.replicated))
        assert state.params["head"]["kernel"].sharding.is_fully_replicated
        results[name] = (jax.device_get(state.params), jax.device_get(state.batch_stats), float(m["loss_sum"]),
                         np.asarray(jit_eval_step()(state, b)["prob"]))
    s, p = results["single"], results["sharded"]
    for a, b in zip(jax.tree.leaves(s[:2]), jax.tree.leaves(p[:2])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s[2], p[2], rtol=1e-5)
    np.testing.assert_allclose(s[3], p[3], rtol=1e-5, atol=1e-6)
    print("OK", max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(s[0]), jax.tree.leaves(p[0]))))
""")


def test_sharded_step_equals_single_device_step():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    code = SCRIPT.format(tests=str(ROOT / "tests"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.strip().startswith("OK"), proc.stdout


def test_batch_size_must_split_evenly():
    dp = DataParallel.create()
    dp.check_batch_size(dp.num_devices * 8)
    if dp.num_devices > 1:
        with pytest.raises(ValueError, match="multiple of"):
            dp.check_batch_size(dp.num_devices * 8 + 1)
