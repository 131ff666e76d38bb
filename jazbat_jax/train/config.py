"""The typed configuration of one training run: data + model + training + an optional transfer.

A ``RunConfig`` is what ``pretrain`` / ``finetune`` take, what the command line and the experiment
grid build, and what every checkpoint stores (``to_dict`` with its schema). A checkpoint of another
schema is refused with a message, never half-read.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from jazbat_jax.data.config import ConfigError, DataConfig
from jazbat_jax import architectures
from jazbat_jax.train.steps import SCHEDULES
from jazbat_jax.train.transfer import TransferConfig

SCHEMA = 2  # schema 1: the dict layout written before the typed configuration (not readable)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # jazbat_net | sota_surrogate (S-754, a complexity-matched surrogate of [9]) | a published baseline |
    # a user's model ("package.module:factory", "file.py:factory"): jazbat_jax.architectures
    arch: str = "jazbat_net"
    # Jazbat-Net's reduction width K. None: the number of classes when training from scratch (the paper's
    # K = C), the source's K when transferring (the paper keeps K = 18).
    reduce_filters: int | None = None

    def __post_init__(self):
        try:
            architectures.check_name(self.arch)
        except architectures.ArchitectureError as e:
            raise ConfigError(str(e)) from None
        if self.reduce_filters is not None and self.reduce_filters < 1:
            raise ConfigError(f"reduce_filters must be >= 1, got {self.reduce_filters}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes the optimisation. Defaults follow the paper and Keras."""

    epochs: int = 40  # paper: 40 for pretraining, 90 for fine-tuning
    batch_size: int = 32  # Keras fit default (the paper does not state it)
    learning_rate: float = 1e-3
    adam_eps: float = 1e-7  # Keras' Adam epsilon (optax's default is 1e-8)
    schedule: str = "constant"  # constant | cosine | warmup_cosine
    warmup_epochs: int = 0
    class_weighting: str = "none"  # none | balanced
    seed: int = 0  # initialisation, epoch order and dropout
    keep_last: int = 3  # newest checkpoints kept for resume
    eval_batch_size: int = 256
    # Early stopping: end the run when validation macro-F1 has not improved for this many epochs
    # (``epochs`` is then the maximum). None: train all ``epochs`` (the paper's fixed schedule).
    patience: int | None = None

    def __post_init__(self):
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 (or None for a fixed schedule), got {self.patience}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1 or self.keep_last < 1:
            raise ConfigError("epochs, batch_size, eval_batch_size and keep_last must be >= 1")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.class_weighting not in ("none", "balanced"):
            raise ConfigError(f"class_weighting must be 'none' or 'balanced', got {self.class_weighting!r}")


# Train fields that may change between an interrupted run and its resumption (they do not change
# what has been trained so far).
RESUMABLE_CHANGES = frozenset({"epochs", "keep_last", "eval_batch_size"})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    transfer: TransferConfig | None = None  # None: random initialisation

    def __post_init__(self):
        if self.transfer is not None and self.model.arch != "jazbat_net":
            raise ConfigError("transfer is implemented for jazbat_net only")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "data": self.data.to_dict(),
            "model": dataclasses.asdict(self.model),
            "train": _train_dict(self.train),
            "transfer": self.transfer.to_dict() if self.transfer else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            found = d.get("schema") if isinstance(d, dict) else None
            raise ConfigError(f"run configuration of schema {found!r}; this version reads schema {SCHEMA} "
                              "(the run was made by another version of jazbat-jax: retrain it with this one)")
        try:
            return cls(
                data=DataConfig.from_dict(d["data"]),
                model=ModelConfig(**d["model"]),
                train=TrainConfig(**d["train"]),
                transfer=TransferConfig(**d["transfer"]) if d.get("transfer") else None,
            )
        except (KeyError, TypeError) as e:
            raise ConfigError(f"malformed run configuration ({e}); the file was edited or damaged") from None

    def changes_from(self, other: "RunConfig") -> list[str]:
        """What differs from ``other`` in a way that forbids resuming ``other``'s run folder."""
        mine, theirs = _flat(self.to_dict()), _flat(other.to_dict())
        return [f"{k}: {theirs.get(k)!r} in the run folder vs {mine.get(k)!r} now"
                for k in sorted(set(mine) | set(theirs))
                if mine.get(k) != theirs.get(k) and k.removeprefix("train.") not in RESUMABLE_CHANGES]


def _train_dict(train: TrainConfig) -> dict[str, Any]:
    """The train settings; ``patience`` only when set, so that a fixed-schedule run is stored (and its
    grid job named) exactly as before early stopping existed."""
    d = dataclasses.asdict(train)
    if d["patience"] is None:
        del d["patience"]
    return d


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "split":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
