"""What every exporter works from: the model to export (``ExportSource``), labelled real windows
(``RealWindows``), fresh and perturbed sources, and atomic file writes.

An ``ExportSource`` is (model, variables, class names, standardizer). It comes from a freshly
initialised model or from a training checkpoint; exporters never look further than this.
Every exported artifact computes *probabilities* (softmax of the model's logits). By default the
source's ``Standardizer`` is folded into the graph, ``(x - mean) / std`` on the way in, so an
artifact takes raw sensor values; with ``fold_standardizer=False`` it is the bare model and takes
standardised windows. The statistics and which input the artifact takes travel with it (TFLite
metadata, ONNX metadata_props, SavedModel assets.extra, and the manifest / sidecar JSON).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from jazbat_jax import architectures
from jazbat_jax.data.core import Standardizer
from jazbat_jax.model import ARCHITECTURE_OF_CLASS, init_variables

OUTPUT_SEMANTICS = "probabilities (softmax over classes)"
RAW = "raw sensor values"
STANDARDISED = "standardised windows (x - mean) / std"
MODEL_INPUT = "the model's input as is (no standardizer recorded)"


@dataclasses.dataclass
class RealWindows:
    """Labelled real windows in raw sensor values (not standardised): ``ExportSource.artifact_input``
    turns them into what an artifact takes."""

    raw: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    origin: str


@dataclasses.dataclass
class ExportSource:
    """A model ready to export. ``variables`` is ``{'params': ..., 'batch_stats': ...}``."""

    model: Any  # a flax.linen.Module with fields window, input_dim, num_classes (jazbat_jax.architectures)
    variables: dict
    class_names: tuple[str, ...]
    standardizer: Standardizer | None = None
    name: str = "model"
    origin: str = "fresh"  # "fresh (seed N)" or the checkpoint path
    test_windows: RealWindows | None = None  # a checkpoint's held-out test split, when it can be rebuilt
    # True: artifacts compute (x - mean) / std themselves and take raw sensor values.
    fold_standardizer: bool = True
    # How each model input channel is computed from raw sensor columns (JSON), when known.
    input_spec: dict | None = None
    # The architecture's name (jazbat_jax.architectures); None: this package's class of ``model``.
    arch: str | None = None

    def __post_init__(self) -> None:
        self.class_names = tuple(str(c) for c in self.class_names)
        if len(self.class_names) != self.model.num_classes:
            raise ValueError(
                f"{len(self.class_names)} class names for a model with {self.model.num_classes} outputs: "
                f"{list(self.class_names)}"
            )
        if self.standardizer is not None and np.asarray(self.standardizer.mean).shape != (self.model.input_dim,):
            raise ValueError(
                f"standardizer has {np.asarray(self.standardizer.mean).shape} statistics; "
                f"the model reads {self.model.input_dim} channel(s)"
            )
        if self.input_spec is not None:
            try:
                json.dumps(self.input_spec)
            except (TypeError, ValueError) as e:
                raise ValueError(f"input_spec must be JSON (dicts, lists, strings, numbers): {e}") from None

    @property
    def window(self) -> int:
        return int(self.model.window)

    @property
    def input_dim(self) -> int:
        return int(self.model.input_dim)

    @property
    def architecture(self) -> str:
        return self.arch or ARCHITECTURE_OF_CLASS.get(type(self.model).__name__, type(self.model).__name__)

    def input_shape(self, batch_size: int | None = 1) -> tuple:
        return (batch_size, self.window, self.input_dim)

    @property
    def folded(self) -> bool:
        """Whether artifacts standardise their input themselves (there is a standardizer to fold)."""
        return self.fold_standardizer and self.standardizer is not None

    @property
    def input_values(self) -> str:
        """What an artifact of this source takes: RAW, STANDARDISED or MODEL_INPUT."""
        if self.standardizer is None:
            return MODEL_INPUT
        return RAW if self.fold_standardizer else STANDARDISED

    def artifact_input(self, raw: np.ndarray) -> np.ndarray:
        """Raw sensor windows turned into what an artifact takes (standardised unless folded)."""
        raw = np.asarray(raw, np.float32)
        return self.standardizer(raw) if self.standardizer is not None and not self.folded else raw

    def probabilities_fn(self, gru_unroll: int | None = None) -> Callable[[jax.Array], jax.Array]:
        """x (B, T, F) -> probabilities (B, C), inference mode, for what an artifact takes (raw sensor
        values when the standardizer is folded); ``gru_unroll`` is an export-time setting."""
        model = self.model if gru_unroll is None else self.model.clone(gru_unroll=gru_unroll)
        variables = self.variables
        if self.folded:
            mean = np.asarray(self.standardizer.mean, np.float32)
            std = np.asarray(self.standardizer.std, np.float32)
        else:
            mean = std = None

        def probabilities(x):
            if mean is not None:
                x = (x - mean) / std  # the Standardizer, in the graph
            return jax.nn.softmax(model.apply(variables, x, train=False), axis=-1)

        return probabilities

    def sidecar(self) -> dict[str, Any]:
        """What a consumer of an artifact needs besides the file itself."""
        return {
            "model": self.name,
            "architecture": self.architecture,
            "label": (
                "S-754, a complexity-matched surrogate of the previous SOTA [9] (not [9] itself)"
                if self.architecture == "sota_surrogate"
                else architectures.label(self.architecture)
            ),
            "origin": self.origin,
            "class_names": list(self.class_names),
            "standardizer": None if self.standardizer is None else self.standardizer.to_dict(),
            "input": {"shape": ["batch", self.window, self.input_dim], "dtype": "float32",
                      "values": self.input_values, "standardizer_folded": self.folded},
            "input_spec": self.input_spec,
            "output": {"shape": ["batch", len(self.class_names)], "dtype": "float32", "meaning": OUTPUT_SEMANTICS},
        }


def fresh_source(
    architecture: str = "jazbat_net",
    input_kind: str = "1d",
    num_classes: int = 6,
    reduce_filters: int | None = None,
    seed: int = 0,
    class_names: tuple[str, ...] | None = None,
) -> ExportSource:
    """A freshly initialised model (identity standardizer), for exports before any training exists.
    ``architecture``: any name ``jazbat_jax.architectures`` resolves (a user's model too)."""
    from jazbat_jax.model import build

    name = architectures.canonical(architecture)
    model = build(name, input_kind, num_classes, reduce_filters)
    variables = init_variables(model, seed)
    names = class_names or tuple(f"class_{i}" for i in range(num_classes))
    std = Standardizer(np.zeros(model.input_dim, np.float32), np.ones(model.input_dim, np.float32))
    return ExportSource(model, variables, names, std, name=f"{architectures.slug(name)}_{input_kind.lower()}",
                        origin=f"fresh (seed {seed})", arch=name)


def perturbed(source: ExportSource, seed: int = 0, scale: float = 0.1) -> ExportSource:
    """The same model with every variable moved off its initial value (non-zero biases, non-trivial
    BatchNorm statistics), so that parity checks exercise every parameter, not just the kernels."""
    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree.flatten(source.variables)
    leaves = [np.asarray(l) + scale * rng.standard_normal(np.shape(l)).astype(np.float32) for l in leaves]
    variables = jax.tree.unflatten(treedef, leaves)
    for stats in _find(variables.get("batch_stats", {}), "var"):
        stats["var"] = np.abs(stats["var"]) + 0.5  # a variance stays positive
    return dataclasses.replace(source, variables=variables, origin=source.origin + ", perturbed")


def _find(tree: dict, key: str):
    if isinstance(tree, dict):
        if key in tree:
            yield tree
        for v in tree.values():
            yield from _find(v, key)


# ---------------------------------------------------------------- a trained checkpoint
INPUT_KIND = {1: "1d", 3: "3d", 6: "6d"}


def load_source(path: str | Path, kind: str = "best") -> ExportSource:
    """An ``ExportSource`` from a training checkpoint (run folder, checkpoints/ folder or epoch folder)."""
    from jazbat_jax.train.checkpoint import load_checkpoint

    model, variables, meta = load_checkpoint(path, kind)
    architecture = meta["run"]["model"]["arch"]
    source = ExportSource(
        model=model,
        variables={k: v for k, v in variables.items() if k in ("params", "batch_stats")},
        class_names=tuple(meta["class_names"]),
        standardizer=Standardizer.from_dict(meta["standardizer"]),
        name=f"{architectures.slug(architecture)}_{INPUT_KIND.get(int(model.input_dim), f'{model.input_dim}ch')}",
        origin=f"{meta['checkpoint']} (epoch {meta['epoch']})",
        input_spec=meta.get("input"),
        arch=architecture,
    )
    source.test_windows = checkpoint_test_windows(source, meta)
    return source


def checkpoint_test_windows(source: ExportSource, meta: dict) -> RealWindows | None:
    """The checkpoint's held-out test split (its stored data configuration, rebuilt), in raw sensor
    values; None, with a note, when the data cannot be found on this machine (the gates then use the
    bundled sample)."""
    import sys

    from jazbat_jax.data.config import load_split
    from jazbat_jax.train.config import RunConfig

    data = RunConfig.from_dict(meta["run"]).data
    try:
        ws, split = load_split(data)
    except (OSError, ValueError) as e:
        print(f"note: the checkpoint's test split could not be rebuilt here ({e}); the gates use the bundled sample",
              file=sys.stderr)
        return None
    if tuple(ws.class_names) != source.class_names or len(split.test) == 0:
        return None
    x = np.asarray(ws.x[split.test], np.float32)
    return RealWindows(x, np.asarray(ws.y[split.test]), tuple(ws.class_names),
                       f"checkpoint test split: {data.dataset} ({split.protocol}), {len(x)} windows")
