"""Small real window sets, models and run configurations for the training tests (T = 32, a few dozen
windows): real code paths in seconds. Used through the fixtures of ``conftest.py`` and by the
subprocesses of the kill tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jazbat_jax.data.config import DataConfig
from jazbat_jax.data.core import Standardizer, WindowSet
from jazbat_jax.data.inputs import InputSpec
from jazbat_jax.model import JazbatNet, init_variables
from jazbat_jax.train.config import ModelConfig, RunConfig, TrainConfig
from jazbat_jax.train.loop import FitOptions, Parts, fit

WINDOW = 32
# The exact numbers the tests assert (parameter counts, MACs), kept in one place.
EXPECTED = json.loads((Path(__file__).with_name("expected_counts.json")).read_text())


def tiny_windowset(n: int = 48, num_classes: int = 3, input_dim: int = 1, seed: int = 0, window: int = WINDOW) -> WindowSet:
    """Windows whose class sets the frequency and offset of a noisy sine: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    t = np.arange(window)[None, :, None]
    freq = (1 + y)[:, None, None] * 2 * np.pi / window
    x = np.sin(freq * t + rng.uniform(0, 2 * np.pi, (n, 1, 1))) + 0.5 * y[:, None, None]
    x = x + 0.1 * rng.normal(size=(n, window, input_dim))
    kind = {1: "1d", 3: "3d", 6: "6d"}[input_dim]
    return WindowSet(
        x=x.astype(np.float32),
        y=y.astype(np.int32),
        subject=(np.arange(n) % 4).astype(np.int32),
        recording=(np.arange(n) % 8).astype(np.int32),
        start=(np.arange(n) * 16).astype(np.int64),
        class_names=tuple(f"class_{i}" for i in range(num_classes)),
        channels=tuple(f"c{i}" for i in range(input_dim)),
        source="test",
        input_spec=InputSpec(kind, gravity="removed", magnitude="norm" if kind == "1d" else None),
    )


def tiny_model(num_classes: int = 3, reduce_filters: int = 4, input_dim: int = 1) -> JazbatNet:
    return JazbatNet(input_dim=input_dim, num_classes=num_classes, reduce_filters=reduce_filters, window=WINDOW)


def tiny_config(**train) -> RunConfig:
    """The configuration stored with tiny runs (the data part only describes them: the windows are given)."""
    train = {"epochs": 3, "batch_size": 16, "keep_last": 2, "schedule": "cosine", **train}
    return RunConfig(data=DataConfig(dataset="quiroz", window=WINDOW, step=16), model=ModelConfig("jazbat_net", 4),
                     train=TrainConfig(**train))


def improving_config() -> RunConfig:
    """A tiny run whose validation macro-F1 reaches a new best at epoch 3 of 4 (so that a new best is
    saved late, after an earlier best and before a later epoch that is not best)."""
    return tiny_config(learning_rate=3e-3, epochs=4)


def tiny_parts() -> tuple[Parts, Standardizer]:
    ws = tiny_windowset(60)
    parts = Parts(ws.subset(np.arange(0, 40)), ws.subset(np.arange(40, 50)), ws.subset(np.arange(50, 60)))
    return parts, Standardizer.fit(parts.train.x)


def fit_tiny(run_dir, config: RunConfig | None = None, plots: bool = False, stop_after_epoch: int | None = None) -> dict:
    """Train the tiny model of ``tiny_config()`` on ``tiny_parts()`` in ``run_dir``."""
    parts, std = tiny_parts()
    model = tiny_model()
    return fit(model, init_variables(model, 0), parts, std, config or tiny_config(), run_dir,
               options=FitOptions(progress=False, plots=plots, stop_after_epoch=stop_after_epoch))


# The input definition the export tests give their source (it must travel into every file unchanged).
EXPORT_INPUT_SPEC = {"channels": [{"name": "|a|", "formula": "sqrt(ax^2 + ay^2 + az^2)", "columns": ["ax", "ay", "az"]}]}


def export_source():
    """Jazbat-Net 1D at the paper's window, every variable moved off its initial value (every bias and BatchNorm
    statistic is exercised) and a real-looking standardizer (|a| in m/s²: mean 9.81, std 2.5), so that folding
    it into the exported files is exercised too."""
    import dataclasses

    from conversion.source import fresh_source, perturbed

    std = Standardizer(np.array([9.81], np.float32), np.array([2.5], np.float32))
    return dataclasses.replace(perturbed(fresh_source("jazbat_net", "1d"), seed=3), standardizer=std,
                               input_spec=EXPORT_INPUT_SPEC)
