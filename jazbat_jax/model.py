"""Jazbat-Net and the complexity-matched surrogate of the previous SOTA, as Flax Linen modules.

Everything here is a pure function of a variable tree: ``model.init`` builds
``{'params': ..., 'batch_stats': ...}`` and ``model.apply`` runs it. Layer names are
stable because transfer learning (re-heading) and complexity accounting address
parameters by path: ``bigru/forward``, ``module_1/b1_1x1``, ``reduce``, ``head`` ...

The architecture and the numbers it reproduces are summarised in the README ("The model",
"Complexity"); ``tests/test_complexity.py`` pins every count.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jazbat_jax.data.inputs import INPUT_WIDTH as INPUT_WIDTHS  # the one table of input kinds
from jazbat_jax.kernels import conv1d_same, gru_gates, gru_scan

# Keras defaults, so that training behaves like the paper's Keras model.
glorot_uniform = nn.initializers.glorot_uniform()
orthogonal = nn.initializers.orthogonal()
zeros = nn.initializers.zeros

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "linear": lambda x: x,
    "gelu": nn.gelu,
    "swish": nn.swish,
    "elu": nn.elu,
    "tanh": jnp.tanh,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def check_input(x: jax.Array, window: int, input_dim: int, model_name: str) -> None:
    """Shape check with a message that names the expected shape (shapes are static under jit)."""
    expected = f"(batch, {window}, {input_dim})"
    if x.ndim != 3:
        raise ValueError(
            f"{model_name} expects a batch of windows of shape {expected}; got rank {x.ndim} "
            f"with shape {tuple(x.shape)}. Add a batch axis for a single window: x[None]."
        )
    if x.shape[2] != input_dim:
        raise ValueError(
            f"{model_name} expects {input_dim} input channel(s), shape {expected}; "
            f"got {x.shape[2]} channel(s), shape {tuple(x.shape)}."
        )
    if x.shape[1] != window:
        hint = "shorter than" if x.shape[1] < window else "longer than"
        raise ValueError(
            f"{model_name} expects windows of {window} samples, shape {expected}; got {x.shape[1]} "
            f"samples ({hint} the model's window), shape {tuple(x.shape)}."
        )


def keras_gru_step(params: dict, h: jax.Array, x_proj: jax.Array) -> jax.Array:
    """One step of a Keras GRU with ``reset_after=True`` (gate order z, r, h̃).

    ``x_proj`` is the precomputed input projection ``x @ kernel + bias[0]`` (shape (..., 3h));
    the input side has no recurrence, so it is computed for all time steps at once.
    """
    units = h.shape[-1]
    xz, xr, xh = x_proj[..., :units], x_proj[..., units : 2 * units], x_proj[..., 2 * units :]
    return gru_gates(h, xz, xr, xh, params["recurrent_kernel"], params["bias"][1])[0]


class KerasGRU(nn.Module):
    """One direction of a Keras-compatible GRU layer (``reset_after=True``), run with ``lax.scan``.

    Parameters per direction: kernel (d, 3h), recurrent_kernel (h, 3h), bias (2, 3h), i.e.
    3h(d + h) + 6h. (``flax.linen.GRUCell`` has only 4h biases and would give 128 fewer
    parameters for Jazbat-Net's BiGRU.)
    """

    units: int
    reverse: bool = False
    unroll: int = 1  # an export/inference setting; 1 is fastest for training on CPU

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        d = x.shape[-1]
        params = {
            "kernel": self.param("kernel", glorot_uniform, (d, 3 * self.units)),
            "recurrent_kernel": self.param("recurrent_kernel", orthogonal, (self.units, 3 * self.units)),
            "bias": self.param("bias", zeros, (2, 3 * self.units)),
        }
        hs = gru_scan(jnp.swapaxes(x, 0, 1), params["kernel"], params["bias"], params["recurrent_kernel"],
                      self.reverse, self.unroll)
        return jnp.swapaxes(hs, 0, 1)  # (B, T, h); outputs stay time-aligned for reverse=True too


class BiGRU(nn.Module):
    """Keras ``Bidirectional(GRU(units, return_sequences=True), merge_mode='concat')``."""

    units: int
    unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fwd = KerasGRU(self.units, reverse=False, unroll=self.unroll, name="forward")(x)
        bwd = KerasGRU(self.units, reverse=True, unroll=self.unroll, name="backward")(x)
        return jnp.concatenate([fwd, bwd], axis=-1)


class Conv1D(nn.Module):
    """Keras ``Conv1D(features, kernel_size, padding='same')`` on (B, T, C), with the variables of
    ``nn.Conv`` (kernel (k, C_in, C_out), bias) and a weight gradient that XLA:CPU runs fast."""

    features: int
    kernel_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", glorot_uniform, (self.kernel_size, x.shape[-1], self.features))
        bias = self.param("bias", zeros, (self.features,))
        return conv1d_same(x, kernel, bias)


def conv1d(features: int, kernel_size: int, name: str) -> Conv1D:
    return Conv1D(features, kernel_size, name=name)


class MultiScaleModule(nn.Module):
    """Jazbat-Net's multi-scale module: two 1×1 → k branches summed, 1×1 aggregation, 1×1 residual projection."""

    branch_width: int = 10
    module_width: int = 64
    kernel_sizes: Sequence[int] = (5, 3)
    branch_activation: str = "relu"
    residual_activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation(self.branch_activation)
        merged = 0.0
        for i, k in enumerate(self.kernel_sizes, start=1):
            b = act(conv1d(self.branch_width, 1, f"b{i}_1x1")(x))
            b = act(conv1d(self.branch_width, k, f"b{i}_1x{k}")(b))
            merged = merged + b  # element-wise sum, not concat (forced by the paper's parameter counts)
        aggregated = conv1d(self.module_width, 1, "aggregate")(merged)
        projected = conv1d(self.module_width, 1, "project")(x)
        return activation(self.residual_activation)(aggregated + projected)


class JazbatNet(nn.Module):
    """Jazbat-Net: BiGRU(32) → BatchNorm → 3 multi-scale modules → 1×1 reduction (K) → GAP → Dense(C).

    Returns logits (B, C); apply a softmax for probabilities. With ``train=True`` call
    ``apply(..., mutable=['batch_stats'])`` so that the BatchNorm statistics update.
    Other widths of the same family are this class with other arguments.
    """

    input_dim: int = 1
    num_classes: int = 6
    reduce_filters: int = 6
    window: int = 256
    gru_units: int = 32
    branch_width: int = 10
    module_width: int = 64
    kernel_sizes: Sequence[int] = (5, 3)
    num_modules: int = 3
    branch_activation: str = "relu"
    residual_activation: str = "relu"
    reduce_activation: str = "linear"
    gru_unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        check_input(x, self.window, self.input_dim, "JazbatNet")
        h = BiGRU(self.gru_units, unroll=self.gru_unroll, name="bigru")(x)
        # Keras BatchNormalization defaults: momentum 0.99, epsilon 1e-3 (Flax's default epsilon is 1e-5).
        h = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3, name="batchnorm")(h)
        for i in range(1, self.num_modules + 1):
            h = MultiScaleModule(
                self.branch_width,
                self.module_width,
                tuple(self.kernel_sizes),
                self.branch_activation,
                self.residual_activation,
                name=f"module_{i}",
            )(h)
        h = activation(self.reduce_activation)(conv1d(self.reduce_filters, 1, "reduce")(h))
        z = jnp.mean(h, axis=1)  # global average pooling over time
        return nn.Dense(self.num_classes, kernel_init=glorot_uniform, name="head")(z)


class InceptionResBlock(nn.Module):
    """One Inception-ResNet-style block of the S-754 surrogate (1×1 / 1×1→3 / 1×1→5, concat, 1×1 up, add, ReLU, BN)."""

    branch_width: int = 64
    out_width: int = 192

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        a = nn.relu(conv1d(self.branch_width, 1, "a_1x1")(x))
        b = nn.relu(conv1d(self.branch_width, 1, "b_1x1")(x))
        b = nn.relu(conv1d(self.branch_width, 3, "b_1x3")(b))
        c = nn.relu(conv1d(self.branch_width, 1, "c_1x1")(x))
        c = nn.relu(conv1d(self.branch_width, 5, "c_1x5")(c))
        up = conv1d(self.out_width, 1, "up_1x1")(jnp.concatenate([a, b, c], axis=-1))
        shortcut = x if x.shape[-1] == self.out_width else conv1d(self.out_width, 1, "proj_1x1")(x)
        h = nn.relu(up + shortcut)
        return nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3, name="batchnorm")(h)


class SotaSurrogate(nn.Module):
    """S-754: a *complexity-matched surrogate* of the previous SOTA [9] (Imran et al., Appl. Sci. 2023).

    [9]'s layer list is not public. This network is built to match its published complexity
    (754K parameters, 157.88M MACs for 1D input) and every textual clue (Inception-ResNet-style
    CNN blocks first, dense 1×1 connections from the raw input into a deeper BiGRU, wider CNN),
    so that the SOTA can be timed and measured on the same machine. It is not [9].
    """

    input_dim: int = 1
    num_classes: int = 6
    window: int = 256
    num_blocks: int = 3
    branch_width: int = 64
    block_width: int = 192
    raw_width: int = 128
    gru_units: Sequence[int] = (96, 64)
    dense_width: int = 944
    dropout_rate: float = 0.5
    gru_unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        check_input(x, self.window, self.input_dim, "SotaSurrogate (S-754)")
        h = x
        for i in range(1, self.num_blocks + 1):
            h = InceptionResBlock(self.branch_width, self.block_width, name=f"block_{i}")(h, train)
        raw = nn.relu(conv1d(self.raw_width, 1, "raw_dense_1x1")(x))
        h = jnp.concatenate([h, raw], axis=-1)
        for i, units in enumerate(self.gru_units, start=1):
            h = BiGRU(units, unroll=self.gru_unroll, name=f"bigru_{i}")(h)
        z = jnp.mean(h, axis=1)
        z = nn.relu(nn.Dense(self.dense_width, kernel_init=glorot_uniform, name="fc1")(z))
        z = nn.Dropout(self.dropout_rate, deterministic=not train)(z)
        return nn.Dense(self.num_classes, kernel_init=glorot_uniform, name="head")(z)


def jazbat_net(input_kind: str = "1d", num_classes: int = 6, reduce_filters: int | None = None, **kwargs) -> JazbatNet:
    """Jazbat-Net for input '1d' | '3d' | '6d'. ``reduce_filters`` defaults to ``num_classes``
    (K = 6 reproduces the paper's tables; use K = 18 for WISDM pretraining and the transfer model)."""
    return JazbatNet(
        input_dim=input_width(input_kind),
        num_classes=num_classes,
        reduce_filters=num_classes if reduce_filters is None else reduce_filters,
        **kwargs,
    )


def sota_surrogate(input_kind: str = "1d", num_classes: int = 6, **kwargs) -> SotaSurrogate:
    return SotaSurrogate(input_dim=input_width(input_kind), num_classes=num_classes, **kwargs)


def input_width(input_kind: str) -> int:
    try:
        return INPUT_WIDTHS[input_kind.lower()]
    except KeyError:
        raise ValueError(f"unknown input {input_kind!r}; choose one of {sorted(INPUT_WIDTHS)}") from None


def init_variables(model: nn.Module, seed: int = 0, batch_size: int = 1) -> dict:
    """Initialise ``{'params', 'batch_stats'}`` for ``model`` from a seed (jitted: fast on CPU)."""
    x = jnp.zeros((batch_size, model.window, model.input_dim), jnp.float32)
    return jax.jit(lambda key: model.init({"params": key, "dropout": key}, x, train=False))(jax.random.key(seed))


# ---------------------------------------------------------------- registry
# This package's architectures by class (checkpoints store the class name); names, the published
# baselines and users' own models are resolved by ``jazbat_jax.architectures``.
MODEL_CLASSES = {"JazbatNet": JazbatNet, "SotaSurrogate": SotaSurrogate}
ARCHITECTURE_OF_CLASS = {"JazbatNet": "jazbat_net", "SotaSurrogate": "sota_surrogate"}


def build(arch: str, input_kind: str, num_classes: int, reduce_filters: int | None = None, window: int = 256) -> nn.Module:
    """A model by architecture name (``architectures.resolve``). ``reduce_filters`` is Jazbat-Net's K
    (default: ``num_classes``)."""
    from jazbat_jax import architectures

    options = {"reduce_filters": reduce_filters} if arch == "jazbat_net" else {}
    return architectures.resolve(arch).build(num_classes, window, input_width(input_kind), **options)


def model_config(model: nn.Module, arch: str | None = None) -> dict:
    """The constructor arguments of a model, JSON-serialisable, plus its class name. A model of a class
    this module does not define is rebuilt from its architecture name ``arch`` (required for it)."""
    from jazbat_jax import architectures

    config = {"class": type(model).__name__, **architectures.fields(model)}
    if type(model).__name__ not in architectures.model_classes():
        config["arch"] = arch
    return config


def model_from_config(config: dict) -> nn.Module:
    """The inverse of ``model_config``."""
    from jazbat_jax import architectures

    config = dict(config)
    name = config.pop("class", None)
    classes = architectures.model_classes()
    if name in classes:
        return classes[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
    if not config.get("arch"):
        raise ValueError(f"unknown model class {name!r} and no architecture name to build it from")
    return architectures.resolve(config["arch"]).build(config["num_classes"], config["window"], config["input_dim"])
