"""Train state, jitted steps, optimizer defaults, class weights and the input pipeline."""
import jax
import numpy as np
import pytest

from jazbat_jax.data.core import Standardizer
from jazbat_jax.model import init_variables
from jazbat_jax.train.input_pipeline import batches, epoch_order
from jazbat_jax.train.state import create_train_state
from jazbat_jax.train.steps import class_weights, jit_eval_step, jit_train_step, make_optimizer, weighted_cross_entropy
from tiny import tiny_model, tiny_windowset


def _state(seed=0, **kw):
    model = tiny_model(**kw)
    return model, create_train_state(model, init_variables(model, seed), make_optimizer(), seed)


def test_jitted_train_step_decreases_loss():
    ws = tiny_windowset(24)
    model, state = _state()
    batch = next(batches(ws.x, ws.y, 24, standardizer=Standardizer.fit(ws.x)))
    step = jit_train_step()
    w = np.ones(3, np.float32)
    losses = []
    for _ in range(8):
        state, m = step(state, batch, w)
        losses.append(float(m["loss_sum"] / m["count"]))
    assert losses[-1] < losses[0] - 0.05, losses
    assert int(state.step) == 8


def test_batchnorm_statistics_update_in_train_mode_only():
    ws = tiny_windowset(16)
    model, state = _state()
    before = jax.device_get(state.batch_stats)
    batch = next(batches(ws.x, ws.y, 16))
    jit_eval_step()(state, batch)  # inference must not touch them
    assert np.array_equal(before["batchnorm"]["mean"], jax.device_get(state.batch_stats)["batchnorm"]["mean"])
    state, _ = jit_train_step()(state, batch, np.ones(3, np.float32))
    after = jax.device_get(state.batch_stats)
    assert not np.allclose(before["batchnorm"]["mean"], after["batchnorm"]["mean"])
    assert not np.allclose(before["batchnorm"]["var"], after["batchnorm"]["var"])


def test_adam_uses_keras_epsilon():
    import optax

    params = {"w": np.ones(3, np.float32)}
    grads = {"w": np.full(3, 1e-6, np.float32)}
    ours, _ = make_optimizer().update(grads, make_optimizer().init(params), params)
    ref, _ = optax.adam(1e-3, eps=1e-7).update(grads, optax.adam(1e-3, eps=1e-7).init(params), params)
    np.testing.assert_allclose(ours["w"], ref["w"])


def test_masked_rows_do_not_count_and_class_weights_scale():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]], np.float32)
    y = np.array([0, 0, 1])
    ce = -np.log(np.exp(logits[[0, 1], [0, 0]]) / np.exp(logits[:2]).sum(1))
    got = weighted_cross_entropy(logits, y, np.array([1, 1, 0], np.float32), np.array([1.0, 1.0], np.float32))
    np.testing.assert_allclose(got, ce.mean(), rtol=1e-6)
    got_w = weighted_cross_entropy(logits, y, np.array([1, 1, 0], np.float32), np.array([3.0, 1.0], np.float32))
    np.testing.assert_allclose(got_w, 3 * ce.mean(), rtol=1e-6)
    np.testing.assert_allclose(class_weights(np.array([0, 0, 0, 1]), 3, "balanced"), [4 / 9, 4 / 3, 0.0], rtol=1e-6)


def test_batches_cover_every_window_once_with_fixed_shapes():
    ws = tiny_windowset(10)
    order = epoch_order(10, seed=1, epoch=3)
    got = list(batches(ws.x, ws.y, 4, order))
    assert [b["x"].shape for b in got] == [(4, 32, 1)] * 3
    mask = np.concatenate([b["mask"] for b in got])
    assert mask.tolist() == [1] * 10 + [0] * 2
    ys = np.concatenate([b["y"] for b in got])[:10]
    np.testing.assert_array_equal(ys, ws.y[order])
    np.testing.assert_array_equal(epoch_order(10, 1, 3), order)  # reproducible for resume
    assert not np.array_equal(epoch_order(10, 1, 4), order)


def test_schedule_needs_total_steps():
    with pytest.raises(ValueError, match="total_steps"):
        make_optimizer(schedule="cosine")
    with pytest.raises(ValueError, match="unknown schedule"):
        make_optimizer(schedule="linear", total_steps=10)
