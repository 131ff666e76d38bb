"""Small real WindowSets and models for the training tests (T = 32, a few dozen windows)."""
from __future__ import annotations

import numpy as np

from jazbat_jax.data.core import WindowSet
from jazbat_jax.model import JazbatNet

WINDOW = 32


def tiny_windowset(n: int = 48, num_classes: int = 3, input_dim: int = 1, seed: int = 0, window: int = WINDOW) -> WindowSet:
    """Windows whose class sets the frequency and offset of a noisy sine: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    t = np.arange(window)[None, :, None]
    freq = (1 + y)[:, None, None] * 2 * np.pi / window
    x = np.sin(freq * t + rng.uniform(0, 2 * np.pi, (n, 1, 1))) + 0.5 * y[:, None, None]
    x = x + 0.1 * rng.normal(size=(n, window, input_dim))
    return WindowSet(
        x=x.astype(np.float32),
        y=y.astype(np.int32),
        subject=(np.arange(n) % 4).astype(np.int32),
        recording=(np.arange(n) % 8).astype(np.int32),
        start=(np.arange(n) * 16).astype(np.int64),
        class_names=tuple(f"class_{i}" for i in range(num_classes)),
        channels=tuple(f"c{i}" for i in range(input_dim)),
        source="test",
    )


def tiny_model(num_classes: int = 3, reduce_filters: int = 4, input_dim: int = 1) -> JazbatNet:
    return JazbatNet(input_dim=input_dim, num_classes=num_classes, reduce_filters=reduce_filters, window=WINDOW)
