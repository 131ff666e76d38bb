"""Published HAR baselines, **re-implemented** from their papers' descriptions as Flax Linen modules.

None of these is the authors' code or weights: each is built from what its paper (and, where the paper
points to it, its authors' published code) describes, with our choices where they are silent. What each
paper states, where it is silent and what we chose is written per class below and in
docs/model.md ("Published baselines"); ``tests/test_baselines.py`` pins every parameter count.

All three follow the package's model contract (``jazbat_jax.architectures``): fields ``num_classes``,
``window``, ``input_dim``; ``__call__(x, train=False)`` maps (B, window, input_dim) to logits.

* ``deepconvlstm`` — Ordóñez & Roggen, "Deep Convolutional and LSTM Recurrent Neural Networks for
  Multimodal Wearable Activity Recognition", Sensors 16(1):115, 2016.
* ``tinyhar`` — Zhou, Zhao, Riedel, Hefenbrock, Beigl, "TinyHAR: A Lightweight Deep Learning Model
  Designed for Human Activity Recognition", ISWC 2022.
* ``resnet1d`` — the 1D ResNet-V2 of Yuan, Chan, Doherty et al., "Self-supervised learning for human
  activity recognition using 700,000 person-days of wearable data", npj Digital Medicine 7:91, 2024
  (evaluated subject-independently on WISDM among its benchmarks).
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jazbat_jax.model import check_input, glorot_uniform, input_width, orthogonal, zeros


# ---------------------------------------------------------------- LSTM
def lstm_step(x_proj: jax.Array, h: jax.Array, c: jax.Array, recurrent_kernel: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One LSTM step (gate order i, f, g, o as in Keras and PyTorch); ``x_proj`` = x·W + biases, precomputed
    for every step. ``complexity.xla_crosscheck`` compiles this body to correct XLA's rolled-loop count."""
    z = x_proj + h @ recurrent_kernel
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


class LSTM(nn.Module):
    """An LSTM layer over (B, T, d) returning every step's state (B, T, h), run with ``lax.scan``.

    Variables: kernel (d, 4h), recurrent_kernel (h, 4h), bias (bias_sets, 4h): one bias vector as in Keras
    and Lasagne, two (input and recurrent, summed) as in PyTorch's ``nn.LSTM``, so that parameter counts
    match the framework each paper used. No peepholes."""

    units: int
    bias_sets: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", glorot_uniform, (x.shape[-1], 4 * self.units))
        recurrent = self.param("recurrent_kernel", orthogonal, (self.units, 4 * self.units))
        bias = self.param("bias", zeros, (self.bias_sets, 4 * self.units))
        x_proj = jnp.swapaxes(x @ kernel + bias.sum(0), 0, 1)  # (T, B, 4h)
        state = jnp.zeros((x.shape[0], self.units), x.dtype)

        def step(carry, xp):
            h, c = lstm_step(xp, *carry, recurrent)
            return (h, c), h

        _, hs = jax.lax.scan(step, (state, state), x_proj)
        return jnp.swapaxes(hs, 0, 1)


# ---------------------------------------------------------------- DeepConvLSTM
class DeepConvLSTM(nn.Module):
    """DeepConvLSTM (Ordóñez & Roggen 2016), a re-implementation.

    The paper states: input D sensor channels × S samples (Opportunity: D = 113, 24-sample windows at
    30 Hz, 18 gesture classes); four convolutional layers of 64 feature maps with 5-sample kernels along
    time, each sensor channel convolved separately with shared weights (kernel 5 × 1), ReLU, no pooling,
    no padding (24 → 8 samples); two recurrent LSTM layers of 128 units; a softmax layer on the last
    time step; dropout 0.5; trained with RMSProp.
    Silent (our choices): the LSTM's exact parameterisation (the authors' Lasagne layer can carry peephole
    weights; we use a Keras-style LSTM with one bias and no peepholes: 4h(d + h + 1) per layer); where
    dropout sits (we put it before each LSTM and before the output layer); initialisation (Keras
    defaults, as for every model here).
    Here: windows of ``window`` samples of ``input_dim`` channels (WISDM |a|: 256 × 1, so 240 steps reach
    the LSTMs and their input is 64 wide instead of 64 × 113)."""

    input_dim: int = 1
    num_classes: int = 18
    window: int = 256
    filters: int = 64
    kernel_size: int = 5
    conv_layers: int = 4
    lstm_units: int = 128
    lstm_layers: int = 2
    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        check_input(x, self.window, self.input_dim, "DeepConvLSTM")
        h = x[..., None]  # (B, T, D, 1): a 2D convolution with a (k, 1) kernel convolves each channel alone
        for i in range(1, self.conv_layers + 1):
            h = nn.relu(nn.Conv(self.filters, (self.kernel_size, 1), padding="VALID", kernel_init=glorot_uniform,
                                name=f"conv_{i}")(h))
        h = h.reshape(h.shape[0], h.shape[1], -1)  # (B, T', D · filters): every channel's maps at each step
        for i in range(1, self.lstm_layers + 1):
            h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
            h = LSTM(self.lstm_units, name=f"lstm_{i}")(h)
        z = nn.Dropout(self.dropout_rate, deterministic=not train)(h[:, -1])
        return nn.Dense(self.num_classes, kernel_init=glorot_uniform, name="head")(z)


# ---------------------------------------------------------------- TinyHAR
class ChannelSelfAttention(nn.Module):
    """TinyHAR's cross-channel interaction ("attn"): self-attention across sensor channels at each step,
    scaled by a learned gamma (initially 0) and added to its input. Query, key, value: F × F, no bias."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # (..., C, F)
        f = x.shape[-1]
        q, k, v = (nn.Dense(f, use_bias=False, kernel_init=glorot_uniform, name=n)(x) for n in ("query", "key", "value"))
        beta = jax.nn.softmax(q @ jnp.swapaxes(k, -1, -2), axis=-2)
        gamma = self.param("gamma", zeros, (1,))
        return gamma * (jnp.swapaxes(beta, -1, -2) @ v) + x


class TemporalWeightedAggregation(nn.Module):
    """TinyHAR's temporal aggregation ("tnaive"): tanh(FC) scores, a softmax over time, the weighted sum
    scaled by a learned gamma (initially 0) added to the last step."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # (B, T, H)
        scores = nn.Dense(1, use_bias=False, kernel_init=glorot_uniform, name="score")(
            jnp.tanh(nn.Dense(x.shape[-1], kernel_init=glorot_uniform, name="fc")(x)))
        context = jnp.sum(jax.nn.softmax(scores, axis=1) * x, axis=1)
        return x[:, -1] + self.param("gamma", zeros, (1,)) * context


class TinyHAR(nn.Module):
    """TinyHAR (Zhou et al. 2022), a re-implementation.

    The paper (and its authors' code, which it links) states: an individual convolutional subnet per
    sensor channel (4 layers, kernel 5 × 1, F filters, ReLU then BatchNorm, stride 2 on the 2nd and 4th
    layer, no padding); cross-channel interaction by self-attention across channels at each step;
    cross-channel fusion by a fully connected layer to 2F; temporal interaction by one LSTM of 2F units;
    temporal aggregation by attention weights over time added to the last step; a linear classifier.
    Silent in the paper (our choices): F (we use 20, the value used with the paper's default
    configuration in its code's published runs as far as we know); the fusion's activation (ReLU) and a
    dropout of 0.2 after it; PyTorch's two LSTM bias vectors (``bias_sets=2``) and linear-layer biases,
    matching the framework the paper used.
    With one input channel (|a|) the cross-channel attention has a single channel to attend to; it is
    kept, so that the model is the paper's model at C = 1."""

    input_dim: int = 1
    num_classes: int = 18
    window: int = 256
    filters: int = 20
    kernel_size: int = 5
    conv_layers: int = 4
    dropout_rate: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        check_input(x, self.window, self.input_dim, "TinyHAR")
        h = x[..., None]  # (B, T, C, 1)
        for i in range(1, self.conv_layers + 1):
            stride = 2 if i % 2 == 0 else 1
            h = nn.relu(nn.Conv(self.filters, (self.kernel_size, 1), strides=(stride, 1), padding="VALID",
                                kernel_init=glorot_uniform, name=f"conv_{i}")(h))
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f"bn_{i}")(h)
        h = ChannelSelfAttention(name="channel_attention")(h)  # (B, T', C, F)
        h = h.reshape(h.shape[0], h.shape[1], -1)
        h = nn.relu(nn.Dense(2 * self.filters, kernel_init=glorot_uniform, name="channel_fusion")(h))
        h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
        h = LSTM(2 * self.filters, bias_sets=2, name="lstm")(h)
        z = TemporalWeightedAggregation(name="temporal_aggregation")(h)
        return nn.Dense(self.num_classes, kernel_init=glorot_uniform, name="head")(z)


# ---------------------------------------------------------------- 1D ResNet
def conv1d_as_matmul(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                     dimension_numbers=None, feature_group_count=1, precision=None):
    """A stride-1, unpadded 1D convolution (B, W, C) * (K, C, O) as one matrix product of the K shifted
    windows stacked side by side (im2col): the same function as ``lax.conv_general_dilated`` to round-off.
    On XLA:CPU its gradient is much faster than the convolution's for the ResNet's wide, short layers
    (docs/model.md), so the ResNet trains with it and keeps the convolution op for inference and export,
    which runtimes fuse. Flax's circular padding is applied before this is called (``padding`` is VALID)."""
    unpadded = padding == "VALID" or all(tuple(p) == (0, 0) for p in padding)
    plain = all(d in (None, 1, (1,)) for d in (lhs_dilation, rhs_dilation))
    if lhs.ndim != 3 or tuple(window_strides) != (1,) or not unpadded or not plain or feature_group_count != 1:
        raise ValueError("conv1d_as_matmul computes only stride-1, unpadded, undilated, ungrouped 1D convolutions")
    k = rhs.shape[0]
    width = lhs.shape[1] - k + 1
    patches = jnp.concatenate([lhs[:, i:i + width] for i in range(k)], axis=-1)  # (B, W', K*C), tap-major
    return jnp.matmul(patches, rhs.reshape(-1, rhs.shape[-1]), precision=precision)


def resnet_conv(features: int, kernel_size: int, train: bool, name: str) -> nn.Conv:
    """The ResNet's convolution: circular padding, no bias; computed as a matrix product in training."""
    return nn.Conv(features, (kernel_size,), padding="CIRCULAR", use_bias=False, kernel_init=glorot_uniform,
                   conv_general_dilated=conv1d_as_matmul if train else None, name=name)


class ResBlock(nn.Module):
    """Pre-activation residual block: BN → ReLU → conv → BN → ReLU → conv, plus the input (no biases)."""

    features: int
    kernel_size: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = x
        for i in (1, 2):
            h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=f"bn_{i}")(h))
            h = resnet_conv(self.features, self.kernel_size, train, f"conv_{i}")(h)
        return h + x


def blur_downsample(x: jax.Array, factor: int) -> jax.Array:
    """Anti-aliased downsampling by ``factor`` (a fixed binomial low-pass per channel, then every
    factor-th sample): the paper's "anti-aliased" downsampling; no trainable variables."""
    if factor == 1:
        return x
    taps = jnp.array([1.0, 2.0, 1.0], x.dtype) / 4.0
    padded = jnp.pad(x, ((0, 0), (1, 1), (0, 0)), mode="edge")
    smoothed = taps[0] * padded[:, :-2] + taps[1] * padded[:, 1:-1] + taps[2] * padded[:, 2:]
    return smoothed[:, ::factor]


class ResNet1D(nn.Module):
    """The 1D ResNet-V2 of Yuan et al. (2024), a re-implementation.

    The paper (and its authors' code) states: a ResNet-V2 with 1D convolutions on 10-s windows of 3-axis
    acceleration at 30 Hz (3 × 300), about 10 million parameters; five stages of (a kernel-5 convolution
    to 64, 128, 256, 512, 1024 channels, then 2, 2, 2, 2, 0 pre-activation residual blocks of two
    kernel-5 convolutions, BatchNorm, ReLU, anti-aliased downsampling by 2, 2, 5, 5, 3), convolutions
    without biases and with circular padding, then a linear classifier on the 1024 features.
    Silent or not applicable here (our choices): for 256-sample windows we downsample by 2, 2, 4, 4, 4
    (256 → 1; the paper's factors assume 300 samples); the blur filter is a 3-tap binomial; the classifier
    is one dense layer (the paper fine-tunes a small head; ``head_hidden`` adds a hidden layer)."""

    input_dim: int = 1
    num_classes: int = 18
    window: int = 256
    widths: Sequence[int] = (64, 128, 256, 512, 1024)
    blocks: Sequence[int] = (2, 2, 2, 2, 0)
    downsample: Sequence[int] = (2, 2, 4, 4, 4)
    kernel_size: int = 5
    head_hidden: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        check_input(x, self.window, self.input_dim, "ResNet1D")
        h = x
        for i, (width, n_blocks, factor) in enumerate(zip(self.widths, self.blocks, self.downsample), start=1):
            h = resnet_conv(width, self.kernel_size, train, f"stage_{i}_conv")(h)
            for b in range(1, n_blocks + 1):
                h = ResBlock(width, self.kernel_size, name=f"stage_{i}_block_{b}")(h, train)
            h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                     name=f"stage_{i}_bn")(h))
            h = blur_downsample(h, factor)
        z = jnp.mean(h, axis=1)  # one step left for the paper's factors; a mean for any other window
        if self.head_hidden:
            z = nn.relu(nn.Dense(self.head_hidden, kernel_init=glorot_uniform, name="head_hidden")(z))
        return nn.Dense(self.num_classes, kernel_init=glorot_uniform, name="head")(z)


# ---------------------------------------------------------------- registry
def _factory(cls):
    def build(input_kind: str = "1d", num_classes: int = 18, **kwargs):
        return cls(input_dim=input_width(input_kind), num_classes=num_classes, **kwargs)

    return build


BASELINES = {
    "deepconvlstm": ("DeepConvLSTM (re-impl.)", _factory(DeepConvLSTM)),
    "tinyhar": ("TinyHAR (re-impl.)", _factory(TinyHAR)),
    "resnet1d": ("1D ResNet (re-impl.)", _factory(ResNet1D)),
}
CLASSES = {"DeepConvLSTM": DeepConvLSTM, "TinyHAR": TinyHAR, "ResNet1D": ResNet1D}
# What `jazbat profile` shows in its "paper" columns: the paper the model re-implements. Parameter totals
# are not shown: the published figures could not be checked against the papers' text (docs/model.md).
PUBLISHED = {
    "deepconvlstm": {"source": "Ordóñez & Roggen 2016 (re-implementation)"},
    "tinyhar": {"source": "Zhou et al. 2022 (re-implementation)"},
    "resnet1d": {"source": "Yuan et al. 2024 (re-implementation)"},
}
