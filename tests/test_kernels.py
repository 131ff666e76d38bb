"""The hand-written gradients in ``jazbat_jax.kernels`` equal autodiff of the plain formulation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jazbat_jax import kernels
from jazbat_jax.kernels import _conv, conv1d_same, gru_scan
from jazbat_jax.model import keras_gru_step


def _plain_gru(x, kernel, bias, recurrent_kernel, reverse):
    """The textbook formulation: hoisted input projection, a plain ``lax.scan`` that JAX differentiates."""
    x_proj = x @ kernel + bias[0]
    params = {"recurrent_kernel": recurrent_kernel, "bias": bias}

    def step(h, xp_t):
        h = keras_gru_step(params, h, xp_t)
        return h, h

    return jax.lax.scan(step, jnp.zeros((x.shape[1], recurrent_kernel.shape[0])), x_proj, reverse=reverse)[1]


def _random(shape, seed, scale=1.0):
    return jnp.asarray(np.random.default_rng(seed).normal(scale=scale, size=shape).astype(np.float32))


def _assert_trees_close(a, b, rtol=2e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=rtol * float(jnp.abs(y).max()))


@pytest.fixture(params=[False, True], ids=["weight grads in the loop", "weight grads after the loop"])
def weight_grads_after_loop(request, monkeypatch):
    """Both places the GRU gradient can sum its weight gradients (after the loop with several processes)."""
    monkeypatch.setattr(kernels, "weight_grads_after_loop", lambda: request.param)
    return request.param


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("unroll", [1, 3])
@pytest.mark.parametrize("d", [1, 6])
def test_gru_scan_values_and_gradients_match_autodiff(weight_grads_after_loop, reverse, unroll, d):
    t, b, h = 12, 5, 4
    args = (_random((t, b, d), 0), _random((d, 3 * h), 1, 0.5), _random((2, 3 * h), 2, 0.1),
            _random((h, 3 * h), 3, 0.5))
    weights = _random((t, b, h), 5)  # a loss that weighs every output differently

    def loss(fn):
        return lambda *a: jnp.sum(fn(*a) * weights)

    ours = gru_scan(*args, reverse, unroll)
    plain = _plain_gru(*args, reverse)
    np.testing.assert_allclose(ours, plain, rtol=1e-6, atol=1e-6)
    grads_ours = jax.grad(loss(lambda *a: gru_scan(*a, reverse, unroll)), argnums=range(4))(*args)
    grads_plain = jax.grad(loss(lambda *a: _plain_gru(*a, reverse)), argnums=range(4))(*args)
    _assert_trees_close(grads_ours, grads_plain)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv1d_same_values_and_gradients_match_autodiff(k):
    x, kernel, bias = _random((3, 16, 7), 0), _random((k, 7, 4), 1), _random((4,), 2)
    weights = _random((3, 16, 4), 3)
    np.testing.assert_allclose(conv1d_same(x, kernel, bias), _conv(x, kernel) + bias, rtol=1e-6, atol=1e-6)
    ours = jax.grad(lambda *a: jnp.sum(conv1d_same(*a) * weights), argnums=(0, 1, 2))(x, kernel, bias)
    plain = jax.grad(lambda x, w, c: jnp.sum((_conv(x, w) + c) * weights), argnums=(0, 1, 2))(x, kernel, bias)
    _assert_trees_close(ours, plain)


def test_conv1d_same_pads_like_keras():
    """'same' padding: output length = input length, and a centred tap reads the same position."""
    x = jnp.arange(1.0, 9.0).reshape(1, 8, 1)
    centre = jnp.zeros((5, 1, 1)).at[2].set(1.0)
    np.testing.assert_array_equal(conv1d_same(x, centre, jnp.zeros(1)), x)
    left = jnp.zeros((5, 1, 1)).at[0].set(1.0)  # reads two steps back, zeros before the start
    np.testing.assert_array_equal(conv1d_same(x, left, jnp.zeros(1))[0, :, 0], [0, 0, 1, 2, 3, 4, 5, 6])


def _per_run(n_runs, *shapes_seeds):
    """Stacked arguments with a leading run axis, each run its own values (as in a multi-run program)."""
    return tuple(jnp.stack([_random(shape, seed + 10 * r, scale) for r in range(n_runs)])
                 for shape, seed, scale in shapes_seeds)


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_scan_gradients_batch_over_runs(reverse):
    """``jax.vmap`` over a run axis (every argument batched: the multi-run train step) of the hand-written
    GRU gradient equals the vmapped autodiff of the plain formulation, and each run's own gradient."""
    t, b, d, h, runs = 10, 4, 1, 4, 3
    args = _per_run(runs, ((t, b, d), 0, 1.0), ((d, 3 * h), 1, 0.5), ((2, 3 * h), 2, 0.1), ((h, 3 * h), 3, 0.5))
    weights = _random((runs, t, b, h), 5)

    def grads(fn):
        g = jax.grad(lambda *a: jnp.sum(fn(*a[:4]) * a[4]), argnums=range(4))
        return jax.vmap(g)(*args, weights)

    ours = grads(lambda *a: gru_scan(*a, reverse, 1))
    plain = grads(lambda *a: _plain_gru(*a, reverse))
    _assert_trees_close(ours, plain)
    one = jax.grad(lambda *a: jnp.sum(gru_scan(*a, reverse, 1) * weights[1]), argnums=range(4))(*(a[1] for a in args))
    _assert_trees_close([g[1] for g in ours], one)


def test_conv1d_same_gradients_batch_over_runs():
    x, kernel, bias = _per_run(3, ((2, 16, 5), 0, 1.0), ((3, 5, 4), 1, 1.0), ((4,), 2, 1.0))
    weights = _random((3, 2, 16, 4), 3)

    def grads(fn):
        return jax.vmap(jax.grad(lambda x, w, c, u: jnp.sum(fn(x, w, c) * u), argnums=(0, 1, 2)))(x, kernel, bias, weights)

    ours = grads(conv1d_same)
    plain = grads(lambda x, w, c: _conv(x, w) + c)
    _assert_trees_close(ours, plain)


@pytest.fixture(params=[True, False], ids=["loop over runs", "jax batching rules"])
def run_loop(request, monkeypatch):
    """Both ways the gradient kernels can batch over runs (``kernels.RUN_LOOP``)."""
    monkeypatch.setattr(kernels, "RUN_LOOP", {"conv": request.param, "gru": request.param})
    return request.param


@pytest.mark.parametrize("d", [1, 12])  # the broadcast input projection and the matmul one
def test_gru_scan_gradients_batch_over_runs_both_ways(run_loop, weight_grads_after_loop, d):
    t, b, h, runs = 9, 3, 4, 3
    args = _per_run(runs, ((t, b, d), 0, 1.0), ((d, 3 * h), 1, 0.5), ((2, 3 * h), 2, 0.1), ((h, 3 * h), 3, 0.5))
    weights = _random((runs, t, b, h), 5)
    g = lambda fn: jax.grad(lambda *a: jnp.sum(fn(*a[:4]) * a[4]), argnums=range(4))
    ours = jax.jit(jax.vmap(g(lambda *a: gru_scan(*a, True, 1))))(*args, weights)
    _assert_trees_close(ours, jax.vmap(g(lambda *a: _plain_gru(*a, True)))(*args, weights))
    # one set of weights shared by every member (only the data batched)
    shared = (0, None, None, None, 0)
    ours = jax.vmap(g(lambda *a: gru_scan(*a, False, 1)), in_axes=shared)(args[0], *(a[0] for a in args[1:]), weights)
    plain = jax.vmap(g(lambda *a: _plain_gru(*a, False)), in_axes=shared)(args[0], *(a[0] for a in args[1:]), weights)
    _assert_trees_close(ours, plain)


@pytest.mark.parametrize("k", [1, 5])
def test_conv1d_same_gradients_batch_over_runs_both_ways(run_loop, k):
    x, kernel, bias = _per_run(3, ((2, 16, 5), 0, 1.0), ((k, 5, 4), 1, 1.0), ((4,), 2, 1.0))
    weights = _random((3, 2, 16, 4), 3)
    g = lambda fn: jax.grad(lambda x, w, c, u: jnp.sum(fn(x, w, c) * u), argnums=(0, 1, 2))
    plain = lambda x, w, c: _conv(x, w) + c
    _assert_trees_close(jax.jit(jax.vmap(g(conv1d_same)))(x, kernel, bias, weights),
                        jax.vmap(g(plain))(x, kernel, bias, weights))
    shared = (0, None, None, 0)  # one kernel for every member
    _assert_trees_close(jax.vmap(g(conv1d_same), in_axes=shared)(x, kernel[0], bias[0], weights),
                        jax.vmap(g(plain), in_axes=shared)(x, kernel[0], bias[0], weights))
