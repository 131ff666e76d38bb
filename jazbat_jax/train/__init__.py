"""Training and transfer for Jazbat-Net: jitted steps, re-heading surgery, metrics, orbax
checkpoints, the epoch loop and the ``pretrain`` / ``finetune`` / ``evaluate`` / ``predict`` commands.

See ``docs/training.md``.
"""
from jazbat_jax.train.checkpoint import CheckpointError, Checkpoints, build_model, load_checkpoint, model_config
from jazbat_jax.train.metrics import algorithm1_batch_averaged, classification_report, confusion_matrix
from jazbat_jax.train.state import TrainState, create_train_state
from jazbat_jax.train.steps import class_weights, eval_step, make_optimizer, train_step
from jazbat_jax.train.transfer import (
    ParameterMismatchError,
    merge_params,
    reheaded_variables,
    transfer_model,
    transfer_optimizer,
)

__all__ = [
    "CheckpointError",
    "Checkpoints",
    "ParameterMismatchError",
    "TrainState",
    "algorithm1_batch_averaged",
    "build_model",
    "class_weights",
    "classification_report",
    "confusion_matrix",
    "create_train_state",
    "eval_step",
    "load_checkpoint",
    "make_optimizer",
    "merge_params",
    "model_config",
    "reheaded_variables",
    "train_step",
    "transfer_model",
    "transfer_optimizer",
]
