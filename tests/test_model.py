"""Jazbat-Net and the S-754 surrogate: exact parameter counts, the Keras GRU equations, shapes, BatchNorm modes."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jazbat_jax.model import BiGRU, JazbatNet, KerasGRU, init_variables, jazbat_net, sota_surrogate
from tiny import EXPECTED as COUNTS


def n_params(tree) -> int:
    return sum(x.size for x in jax.tree.leaves(tree))


def variable_shapes(model) -> dict:
    """The tree ``init_variables`` builds, as shapes: traced, not compiled (the counts need no values)."""
    return jax.eval_shape(lambda: init_variables(model))


# (input, K, C) -> (trainable, total)
EXPECTED_PARAMS = {(e["input"], e["K"], e["C"]): (e["trainable"], e["total"]) for e in COUNTS["jazbat_net"][:5]}


@pytest.mark.parametrize("config,expected", EXPECTED_PARAMS.items(), ids=str)
def test_parameter_counts_from_the_real_tree(config, expected):
    kind, K, C = config
    variables = variable_shapes(jazbat_net(kind, C, K))
    trainable = n_params(variables["params"])
    assert (trainable, trainable + n_params(variables["batch_stats"])) == expected


def test_surrogate_parameter_count():
    variables = variable_shapes(sota_surrogate("1d"))
    want = COUNTS["sota_surrogate"][0]
    assert n_params(variables["params"]) == want["trainable"]
    assert n_params(variables["params"]) + n_params(variables["batch_stats"]) == want["total"]


def keras_gru_numpy(x, kernel, recurrent_kernel, bias, reverse=False):
    """The Keras GRU equations (reset_after=True, gates z, r, h̃), written out in NumPy, float64."""
    h_units = recurrent_kernel.shape[0]
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))
    B, T, _ = x.shape
    h = np.zeros((B, h_units))
    out = np.zeros((B, T, h_units))
    steps = range(T - 1, -1, -1) if reverse else range(T)
    Wz, Wr, Wh = np.split(kernel, 3, axis=1)
    Uz, Ur, Uh = np.split(recurrent_kernel, 3, axis=1)
    bz_i, br_i, bh_i = np.split(bias[0], 3)
    bz_r, br_r, bh_r = np.split(bias[1], 3)
    for t in steps:
        xt = x[:, t]
        z = sig(xt @ Wz + bz_i + h @ Uz + bz_r)
        r = sig(xt @ Wr + br_i + h @ Ur + br_r)
        hh = np.tanh(xt @ Wh + bh_i + r * (h @ Uh + bh_r))
        h = z * h + (1 - z) * hh
        out[:, t] = h
    return out


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_matches_keras_equations(reverse):
    rng = np.random.default_rng(0)
    d, h, T, B = 3, 8, 20, 4
    params = {
        "kernel": rng.normal(0, 0.5, (d, 3 * h)),
        "recurrent_kernel": rng.normal(0, 0.5, (h, 3 * h)),
        "bias": rng.normal(0, 0.5, (2, 3 * h)),  # non-zero, so that the two bias rows are exercised
    }
    x = rng.normal(size=(B, T, d))
    got = KerasGRU(h, reverse=reverse).apply({"params": jax.tree.map(jnp.float32, params)}, jnp.float32(x))
    want = keras_gru_numpy(x, **params, reverse=reverse)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)


def test_bigru_concatenates_forward_then_backward():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 12, 1)), jnp.float32)
    model = BiGRU(4)
    variables = model.init(jax.random.key(0), x)
    out = model.apply(variables, x)
    p = jax.tree.map(np.float64, variables["params"])
    np.testing.assert_allclose(out[..., :4], keras_gru_numpy(np.float64(x), **p["forward"]), atol=1e-6)
    np.testing.assert_allclose(out[..., 4:], keras_gru_numpy(np.float64(x), **p["backward"], reverse=True), atol=1e-6)


def test_guard_stock_flax_gru_cell_has_fewer_biases():
    """flax.linen.GRUCell keeps 4h biases per direction: 6,592 instead of Keras's 6,720."""
    x = jnp.zeros((1, 256, 1))
    stock = nn.Bidirectional(nn.RNN(nn.GRUCell(32)), nn.RNN(nn.GRUCell(32)))
    assert n_params(jax.eval_shape(stock.init, jax.random.key(0), x)) == 6_592
    assert n_params(jax.eval_shape(BiGRU(32).init, jax.random.key(0), x)) == 6_720


def test_keras_initialisers():
    params = init_variables(jazbat_net())["params"]
    u = np.asarray(params["bigru"]["forward"]["recurrent_kernel"])  # (32, 96), orthogonal rows
    np.testing.assert_allclose(u @ u.T, np.eye(32), atol=1e-5)
    assert not np.any(np.asarray(params["bigru"]["forward"]["bias"]))
    k = np.asarray(params["module_1"]["project"]["kernel"])  # glorot uniform: |w| <= sqrt(6 / (fan_in + fan_out))
    assert np.abs(k).max() <= np.sqrt(6 / (64 + 64)) and k.std() > 0.5 * np.sqrt(2 / (64 + 64))


@pytest.mark.parametrize("kind,width", [("1d", 1), ("3d", 3), ("6d", 6)])
def test_forward_jits_and_returns_logits(kind, width):
    model = jazbat_net(kind, num_classes=5, reduce_filters=7, window=32)
    variables = init_variables(model)
    x = jax.random.normal(jax.random.key(1), (3, 32, width))
    logits = jax.jit(lambda v, x: model.apply(v, x))(variables, x)
    assert logits.shape == (3, 5) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))


def test_train_mode_updates_batch_stats_and_eval_does_not():
    model = jazbat_net(window=32)
    variables = init_variables(model)
    x = 3.0 + jax.random.normal(jax.random.key(2), (4, 32, 1))
    _, updated = model.apply(variables, x, train=True, mutable=["batch_stats"])
    before, after = variables["batch_stats"]["batchnorm"], updated["batch_stats"]["batchnorm"]
    assert not np.allclose(before["mean"], after["mean"])
    # momentum 0.99: new = 0.99 * old + 0.01 * batch
    h = BiGRU(32).apply({"params": variables["params"]["bigru"]}, x)
    np.testing.assert_allclose(after["mean"], 0.01 * np.asarray(h).mean(axis=(0, 1)), rtol=1e-4, atol=1e-7)
    _, unchanged = model.apply(variables, x, train=False, mutable=["batch_stats"])
    np.testing.assert_array_equal(unchanged["batch_stats"]["batchnorm"]["mean"], before["mean"])


def test_batchnorm_uses_keras_epsilon():
    """Eval-mode BatchNorm with mean 0 and var 0 divides by sqrt(epsilon): Keras's 1e-3, not Flax's 1e-5."""
    model = jazbat_net(window=32)
    variables = init_variables(model)
    variables["batch_stats"]["batchnorm"]["var"] = jnp.zeros(64)
    x = jax.random.normal(jax.random.key(3), (2, 32, 1))
    _, state = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    gru_out = state["intermediates"]["bigru"]["__call__"][0]
    bn_out = state["intermediates"]["batchnorm"]["__call__"][0]
    np.testing.assert_allclose(bn_out, gru_out / np.sqrt(1e-3), rtol=1e-5, atol=1e-6)


def test_surrogate_forward_with_dropout():
    model = sota_surrogate("3d", num_classes=4, window=16)
    variables = init_variables(model)
    x = jnp.ones((2, 16, 3))
    out, _ = model.apply(variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)})
    assert out.shape == (2, 4)


@pytest.mark.parametrize(
    "shape,message",
    [
        ((256, 1), r"expects a batch of windows of shape \(batch, 256, 1\); got rank 2"),
        ((2, 256, 3), r"expects 1 input channel\(s\), shape \(batch, 256, 1\); got 3"),
        ((2, 200, 1), r"expects windows of 256 samples, shape \(batch, 256, 1\); got 200 samples \(shorter than"),
    ],
)
def test_wrong_input_shape_names_the_expected_shape(shape, message):
    model = JazbatNet()
    variables = init_variables(model)
    with pytest.raises(ValueError, match=message):
        model.apply(variables, jnp.zeros(shape))


def test_unknown_input_kind_and_activation():
    with pytest.raises(ValueError, match="unknown input '2d'"):
        jazbat_net("2d")
    with pytest.raises(ValueError, match="unknown activation 'sigmoidal'"):
        init_variables(jazbat_net(window=16, branch_activation="sigmoidal"))
