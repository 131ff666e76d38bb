"""The hand-written gradients in ``jazbat_jax.kernels`` equal autodiff of the plain formulation, and the native
GRU kernels (``jazbat_jax.native``, ``JAZBAT_KERNELS=native``) equal both."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from jazbat_jax import kernels, native
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


# ---------------------------------------------------------------- the native kernels (jazbat_jax/native)

needs_compiler = pytest.mark.skipif(native.compiler() is None, reason="no C++ compiler (g++, c++ or $CXX) to build "
                                    "the native GRU kernels; the pure-JAX kernels are used instead")


@pytest.fixture
def native_kernels(monkeypatch):
    """JAZBAT_KERNELS=native, the kernels built and registered (a build failure fails the test)."""
    assert native.available(), native.unavailable_reason()
    monkeypatch.setenv("JAZBAT_KERNELS", "native")
    assert kernels.native_selected()


def _directions(d, h, n_dirs, seed):
    """Random Keras weights of ``n_dirs`` directions, as dicts. Scaled like Keras' initialisers (gain ~1 per
    step): with larger recurrent weights a long recurrence is chaotic, and float32 round-off alone then
    changes its result completely (any two float32 implementations differ, both from float64)."""
    return [{"kernel": _random((d, 3 * h), seed + 3 * i, d ** -0.5), "bias": _random((2, 3 * h), seed + 3 * i + 1, 0.1),
             "recurrent_kernel": _random((h, 3 * h), seed + 3 * i + 2, h ** -0.5)} for i in range(n_dirs)]


def _xla_directions(x, weights, reverses):
    """The pure-JAX kernels: each direction a ``gru_scan_xla`` over time-major x, concatenated like Keras."""
    x_t = jnp.swapaxes(x, 0, 1)
    return jnp.concatenate([jnp.swapaxes(kernels.gru_scan_xla(x_t, w["kernel"], w["bias"], w["recurrent_kernel"], r), 0, 1)
                            for w, r in zip(weights, reverses)], axis=-1)


def _plain_directions(x, weights, reverses):
    x_t = jnp.swapaxes(x, 0, 1)
    return jnp.concatenate([jnp.swapaxes(_plain_gru(x_t, w["kernel"], w["bias"], w["recurrent_kernel"], r), 0, 1)
                            for w, r in zip(weights, reverses)], axis=-1)


def _native_directions(x, weights, reverses):
    stacked = [jnp.stack([w[name] for w in weights]) for name in ("kernel", "bias", "recurrent_kernel")]
    return kernels.native_gru(x, *stacked, sum(int(r) << i for i, r in enumerate(reverses)))


def _values_and_grads(fn, x, weights, reverses, cotangent):
    out, vjp = jax.vjp(lambda x, w: fn(x, w, reverses), x, weights)
    return out, vjp(cotangent)


# The largest deviation each comparison may show, relative to the largest magnitude of the reference
# array: float32 round-off accumulated over up to 300 steps and 300 rows (the largest seen over random
# shapes is in docs/training.md).
NATIVE_TOLERANCE = 1e-5


def _assert_close_to(ours, reference, tol=NATIVE_TOLERANCE):
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape
        scale = max(float(np.abs(b).max()), 1e-30)
        assert float(np.abs(a - b).max()) <= tol * scale, (float(np.abs(a - b).max()) / scale, a.shape)


@needs_compiler
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 300), steps=st.integers(1, 300), width=st.integers(1, 8),
       units=st.one_of(st.sampled_from([16, 32, 64]), st.integers(1, 64)),  # the widths with vector code, and any
       reverses=st.sampled_from([(False,), (True,), (False, True), (True, False)]), seed=st.integers(0, 2**16))
def test_native_gru_equals_the_pure_jax_kernels_and_autodiff(native_kernels, batch, steps, width, units, reverses, seed):
    """Values and all four gradients of the native call equal the pure-JAX kernels' and ``jax.grad`` of the
    plain formulation, for one direction either way and both directions in one call."""
    x = _random((batch, steps, width), seed)
    weights = _directions(width, units, len(reverses), seed + 1)
    cotangent = _random((batch, steps, len(reverses) * units), seed + 99)
    ours = _values_and_grads(_native_directions, x, weights, reverses, cotangent)
    _assert_close_to(ours, _values_and_grads(_xla_directions, x, weights, reverses, cotangent))
    _assert_close_to(ours, _values_and_grads(_plain_directions, x, weights, reverses, cotangent))


@needs_compiler
@pytest.mark.parametrize("reverse", [False, True])
def test_native_gru_scan_and_bigru_are_the_native_calls(native_kernels, reverse):
    """``gru_scan`` and ``bigru`` (what the model calls) run the custom calls when asked, and equal the
    pure-JAX kernels."""
    x = _random((5, 9, 2), 0)
    fwd, bwd = _directions(2, 16, 2, 1)  # a hidden size with vector code
    hlo = jax.jit(lambda x: kernels.bigru(x, fwd, bwd)).lower(x).as_text()
    assert "jazbat_gru_forward" in hlo
    _assert_close_to(kernels.bigru(x, fwd, bwd), _xla_directions(x, [fwd, bwd], (False, True)))
    x_t = jnp.swapaxes(x, 0, 1)
    args = (x_t, fwd["kernel"], fwd["bias"], fwd["recurrent_kernel"])
    _assert_close_to(kernels.gru_scan(*args, reverse), kernels.gru_scan_xla(*args, reverse))
    loss = lambda fn: jax.grad(lambda *a: jnp.sum(fn(*a, reverse) ** 2), argnums=range(4))
    _assert_close_to(loss(kernels.gru_scan)(*args), loss(kernels.gru_scan_xla)(*args))


@needs_compiler
def test_native_gru_loops_over_runs_under_vmap(native_kernels):
    """Batched over runs (every argument batched, or only the data), each run's values and gradients are
    those of its own unbatched call."""
    runs, reverses = 3, (False, True)
    x = jnp.stack([_random((4, 7, 2), r) for r in range(runs)])
    weights = [_directions(2, 5, 2, 10 * r) for r in range(runs)]
    stacked = jax.tree.map(lambda *w: jnp.stack(w), *weights)
    cotangent = jnp.stack([_random((4, 7, 10), 50 + r) for r in range(runs)])
    batched = jax.jit(jax.vmap(lambda x, w, c: _values_and_grads(_native_directions, x, w, reverses, c)))
    ours = batched(x, stacked, cotangent)
    for r in range(runs):
        one = _values_and_grads(_native_directions, x[r], weights[r], reverses, cotangent[r])
        _assert_close_to(jax.tree.map(lambda a: a[r], ours), one, tol=0)
    shared = jax.vmap(lambda x, c: _values_and_grads(_native_directions, x, weights[0], reverses, c))(x, cotangent)
    one = _values_and_grads(_native_directions, x[1], weights[0], reverses, cotangent[1])
    _assert_close_to(jax.tree.map(lambda a: a[1], shared), one, tol=0)


@needs_compiler
def test_export_keeps_the_pure_jax_formulation(native_kernels):
    """``jax.export`` (and so jax2tf) of a model run with the native kernels selected serialises no custom
    call of ours, and the exported function computes the same values."""
    from jazbat_jax.model import jazbat_net, init_variables

    model = jazbat_net("3d")
    variables = init_variables(model, 0)
    x = _random((2, 256, 3), 0)
    fn = jax.jit(lambda x: model.apply(variables, x))
    assert "jazbat_gru" in fn.lower(x).as_text()
    exported = jax.export.export(fn)(jax.ShapeDtypeStruct(x.shape, x.dtype))
    assert "jazbat_gru" not in exported.mlir_module()
    _assert_close_to(exported.call(x), fn(x))


@needs_compiler
def test_an_export_asked_to_keep_the_native_calls_runs_on_a_reference_build(native_kernels):
    """The benchmarks' native regression reference: an export that keeps the custom calls, renamed to the
    reference targets, runs on kernels built from a copy of the source and computes what the model does."""
    from jazbat_jax.model import jazbat_net, init_variables

    model = jazbat_net("1d")
    variables = init_variables(model, 0)
    x = _random((1, 256, 1), 0)
    fn = jax.jit(lambda x: model.apply(variables, x))
    spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
    allow = [jax.export.DisabledSafetyCheck.custom_call(name) for name in native.exported_targets()]
    with native.exporting_custom_calls():
        exported = jax.export.export(fn, disabled_checks=allow)(spec)
    text = exported.mlir_module()
    assert text.count("jazbat_gru_forward_reference") == 2 and "@jazbat_gru_forward(" not in text
    native.load_reference(native.SOURCE.read_bytes())
    _assert_close_to(exported.call(x), fn(x), tol=0)
    assert "jazbat_gru" not in jax.export.export(fn)(spec).mlir_module()  # outside the context: as before


@needs_compiler
def test_a_reference_source_that_does_not_build_is_one_line():
    with pytest.raises(RuntimeError, match=r"^g\+\+ failed to build bigru\.cc: .*error") as error:
        native.load_reference(b"this is not C++\n")
    assert "\n" not in str(error.value)


@needs_compiler
def test_training_with_native_kernels_ends_with_the_same_metrics(native_kernels, monkeypatch, tmp_path):
    """A short real training run (the tiny model and data of the training tests, 3 epochs) ends with the
    same training and validation metrics and the same parameters with the native kernels as with the
    pure-JAX ones, to 1e-4."""
    import tiny

    runs = {}
    for choice in ("xla", "native"):
        monkeypatch.setenv("JAZBAT_KERNELS", choice)
        jax.clear_caches()  # the train step is retraced with the kernel choice
        runs[choice] = tiny.fit_tiny(tmp_path / choice, tiny.tiny_config(epochs=3))
    for a, b in zip(runs["xla"]["history"], runs["native"]["history"]):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1"):
            assert abs(a[key] - b[key]) <= 1e-4, (a["epoch"], key, a[key], b[key])
    params = [jax.tree.leaves(runs[choice]["state"].params) for choice in ("xla", "native")]
    for a, b in zip(*params):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-4)
    # Not bit-identical: the native run did run other arithmetic (the kernel choice reached the train step).
    assert any(not np.array_equal(a, b) for a, b in zip(*params))


@needs_compiler
def test_jax2tf_converts_the_native_path_to_the_pure_jax_formulation(native_kernels):
    """jax2tf of a function that runs the native kernels when jitted converts (no custom call of ours
    reaches TensorFlow), and the TensorFlow function computes the same values."""
    tf = pytest.importorskip("tensorflow")
    from jax.experimental import jax2tf

    x = _random((3, 11, 2), 0)
    fwd, bwd = _directions(2, 16, 2, 1)
    fn = lambda x: kernels.bigru(x, fwd, bwd)
    assert "jazbat_gru_forward" in jax.jit(fn).lower(x).as_text()
    converted = tf.function(jax2tf.convert(fn, with_gradient=False), autograph=False)
    _assert_close_to(np.asarray(converted(np.asarray(x))), fn(x))


@needs_compiler
def test_the_native_kernels_are_the_default_on_one_cpu_and_xla_opts_out(monkeypatch):
    """Unset, JAZBAT_KERNELS means the native kernels (float32, one CPU device); ``xla`` opts out, inside
    ``pure_jax()`` nothing is native, and any other value is refused with what to write instead."""
    monkeypatch.delenv("JAZBAT_KERNELS", raising=False)
    assert kernels.native_selected() == (jax.device_count() == 1)
    assert not kernels.native_selected(jnp.float64)
    with kernels.pure_jax():
        assert not kernels.native_selected()
    monkeypatch.setenv("JAZBAT_KERNELS", "xla")
    assert not kernels.native_selected()
    monkeypatch.setenv("JAZBAT_KERNELS", "fast")
    with pytest.raises(ValueError, match="'xla' .* or 'native'"):
        kernels.native_selected()


@needs_compiler
def test_hidden_sizes_without_vector_code_stay_with_xla(native_kernels):
    """The native kernels' scalar path (hidden sizes other than 16, 32, 64) and their per-step input
    projection of wide inputs are slower than XLA, so such a GRU runs the pure-JAX kernels: Jazbat-Net
    (h = 32 over 1 channel) is native, S-754's stack (h = 96 over 320 features, h = 64 over 192) is not."""
    from jazbat_jax.model import init_variables, jazbat_net, sota_surrogate

    assert kernels.native_selected(units=32, features=6)
    assert not kernels.native_selected(units=96, features=6) and not kernels.native_selected(units=64, features=192)
    x = _random((1, 256, 1), 0)
    for model, native_calls in ((jazbat_net("1d"), True), (sota_surrogate("1d"), False)):
        variables = init_variables(model, 0)
        hlo = jax.jit(lambda x: model.apply(variables, x)).lower(x).as_text()
        assert ("jazbat_gru_forward" in hlo) == native_calls, type(model).__name__
