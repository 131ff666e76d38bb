"""The re-implemented published baselines: exact parameter counts (ours, for WISDM |a| and for each paper's
own input configuration; docs/model.md says how they relate to the published figures), every layer covered by
the analytic MAC rules, the recurrent MACs equal to XLA's count, and the forward pass."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jazbat_jax import architectures, baselines, complexity
from jazbat_jax.model import build, init_variables, model_config, model_from_config

# (architecture, input channels, window, classes) -> (trainable, non-trainable) parameters.
COUNTS = {
    # WISDM watch |a|: 1 channel, 256 samples, 18 activities (what accuracy-cost trains)
    ("deepconvlstm", 1, 256, 18): (294_738, 0),
    ("tinyhar", 1, 256, 18): (23_920, 160),
    ("resnet1d", 1, 256, 18): (10_475_218, 11_648),
    # each paper's own input: Opportunity gestures (113 channels, 24 samples, 18 classes) for DeepConvLSTM;
    # 3-axis acceleration for the ResNet (its 300-sample windows need its own downsampling factors)
    ("deepconvlstm", 113, 24, 18): (3_964_754, 0),
}


def _model(arch, channels, window, classes):
    model = architectures.resolve(arch).factory("1d", classes, window=window)
    return model.clone(input_dim=channels)


@pytest.mark.parametrize("key", sorted(COUNTS))
def test_parameter_counts(key):
    cost = complexity.count(_model(*key))
    assert (cost.trainable, cost.non_trainable) == COUNTS[key]
    assert cost.unknown == ()  # every layer has a MAC rule: the analytic count is complete


def test_resnet_at_the_papers_input_keeps_its_width():
    """Yuan et al.'s own input: 3 axes × 300 samples downsampled by 2, 2, 5, 5, 3 to one step."""
    model = baselines.ResNet1D(input_dim=3, window=300, num_classes=18, downsample=(2, 2, 5, 5, 3))
    cost = complexity.count(model)
    assert cost.trainable == COUNTS[("resnet1d", 1, 256, 18)][0] + 2 * 5 * 64  # two more input channels
    last_stage = next(l for l in cost.layers if l.name == "stage_5_bn")
    assert last_stage.output_shape == (3, 1024)  # 300 / (2·2·5·5) steps, then ÷ 3 to one


# Narrow variants: the same code paths at a fraction of the compile and run time.
NARROW = {"deepconvlstm": {"filters": 8, "lstm_units": 8}, "tinyhar": {"filters": 4},
          "resnet1d": {"widths": (4, 4, 8, 8, 8)}}


@pytest.mark.parametrize("arch", sorted(NARROW))
def test_forward_shapes_and_round_trip(arch):
    model = build(arch, "1d", 18, window=64).clone(**NARROW[arch])
    variables = init_variables(model, seed=0, batch_size=2)
    x = jax.random.normal(jax.random.key(1), (2, 64, 1))
    logits = model.apply(variables, x, train=False)
    assert logits.shape == (2, 18) and bool(jnp.all(jnp.isfinite(logits)))
    rebuilt = model_from_config(model_config(model, arch))
    np.testing.assert_array_equal(rebuilt.apply(variables, x, train=False), logits)


@pytest.mark.parametrize("arch", ["deepconvlstm", "tinyhar"])
def test_lstm_macs_equal_xla(arch):
    model = build(arch, "1d", 18, window=64).clone(**NARROW[arch])
    check = complexity.xla_crosscheck(model, init_variables(model))
    assert check["gru_macs_match"] and check["gru_macs_analytic"] > 0


def test_the_resnet_trains_with_matrix_products_and_infers_with_convolutions():
    """In training the ResNet's convolutions are matrix products over stacked shifted windows: the same
    function and gradient as the convolution to round-off; inference (and so every export) keeps the op."""
    model = build("resnet1d", "1d", 18, window=64).clone(**NARROW["resnet1d"])
    variables = init_variables(model, seed=0, batch_size=2)
    x = jax.random.normal(jax.random.key(1), (8, 64, 1))

    def loss(params, conv_as_matmul):
        with pytest.MonkeyPatch.context() as patch:
            if not conv_as_matmul:  # the convolution op in training too
                patch.setattr(baselines, "conv1d_as_matmul", None)
            logits, _ = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
        return jnp.sum(jax.nn.log_softmax(logits)[:, 0])

    (ours, grad_ours), (conv, grad_conv) = (jax.value_and_grad(loss)(variables["params"], m) for m in (True, False))
    np.testing.assert_allclose(ours, conv, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grad_ours), jax.tree.leaves(grad_conv)):
        assert np.max(np.abs(a - b)) <= 1e-4 * np.max(np.abs(b)), "gradients differ beyond round-off"
    ops = lambda train: str(jax.make_jaxpr(lambda v: model.apply(v, x, train=train, mutable=["batch_stats"]))(variables))
    assert "conv_general_dilated" not in ops(True) and "conv_general_dilated" in ops(False)
    with pytest.raises(ValueError, match="only stride-1"):
        baselines.conv1d_as_matmul(x, jnp.ones((3, 1, 2)), (2,), "VALID")
