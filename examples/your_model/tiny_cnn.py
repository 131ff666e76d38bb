"""A small model of a user's own, to compare with Jazbat-Net (docs/your-model.md).

Nothing here imports jazbat_jax: the file only has to define a factory that returns a Flax Linen module
whose fields ``num_classes``, ``window`` and ``input_dim`` say what it predicts and the input it takes.
"""
import flax.linen as nn
import jax.numpy as jnp


class TinyCNN(nn.Module):
    """Two 1D convolutions, global average pooling, a dense classifier."""

    num_classes: int
    window: int = 256
    input_dim: int = 1
    width: int = 16

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.relu(nn.Conv(self.width, (7,), name="conv_1")(x))
        h = nn.BatchNorm(use_running_average=not train, name="bn")(h)
        h = nn.relu(nn.Conv(2 * self.width, (5,), strides=(2,), name="conv_2")(h))
        return nn.Dense(self.num_classes, name="head")(jnp.mean(h, axis=1))


def build(num_classes: int, window: int, input_dim: int) -> TinyCNN:
    """The factory `jazbat profile` and `jazbat accuracy-cost` call."""
    return TinyCNN(num_classes=num_classes, window=window, input_dim=input_dim)
