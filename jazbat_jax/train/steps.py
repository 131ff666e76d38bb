"""Jitted pure train and eval steps, the optimizer and class weights.

A batch is a dict of arrays with a fixed shape: ``x`` (B, T, F) float32, ``y`` (B,) int32 and
``mask`` (B,) float32 (1 for a real window, 0 for padding). The input pipeline pads the last
batch and masks it, so every window counts exactly once and the step never recompiles.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jazbat_jax.train.state import TrainState

SCHEDULES = ("constant", "cosine", "warmup_cosine")


def learning_rate_schedule(
    learning_rate: float = 1e-3, schedule: str = "constant", total_steps: int | None = None, warmup_steps: int = 0
) -> optax.Schedule | float:
    """``constant`` (the paper / Keras), ``cosine`` decay to 0, or ``warmup_cosine`` (linear warm-up, then cosine)."""
    if schedule == "constant":
        return learning_rate
    if total_steps is None or total_steps <= 0:
        raise ValueError(f"schedule {schedule!r} needs total_steps > 0 (epochs × steps per epoch)")
    if schedule == "cosine":
        return optax.cosine_decay_schedule(learning_rate, total_steps)
    if schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, learning_rate, max(warmup_steps, 1), total_steps)
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")


def make_optimizer(
    learning_rate: float = 1e-3,
    eps: float = 1e-7,
    schedule: str = "constant",
    total_steps: int | None = None,
    warmup_steps: int = 0,
) -> optax.GradientTransformation:
    """Adam with Keras defaults (lr 1e-3, β 0.9/0.999, ε 1e-7: optax's own default ε is 1e-8)."""
    lr = learning_rate_schedule(learning_rate, schedule, total_steps, warmup_steps)
    return optax.adam(lr, b1=0.9, b2=0.999, eps=eps)


def class_weights(y: np.ndarray, num_classes: int, mode: str = "none") -> np.ndarray:
    """Per-class loss weights: ``none`` (all 1) or ``balanced`` (N / (C · n_c), sklearn's and Keras' usual choice).

    Classes absent from ``y`` get weight 0 under ``balanced`` (they never appear in a batch anyway).
    """
    if mode == "none":
        return np.ones(num_classes, np.float32)
    if mode == "balanced":
        counts = np.bincount(np.asarray(y), minlength=num_classes).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
        return w.astype(np.float32)
    raise ValueError(f"unknown class weighting {mode!r}; choose 'none' or 'balanced'")


def weighted_cross_entropy(logits: jax.Array, y: jax.Array, mask: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy over the real windows of the batch, each scaled by its class weight
    (Keras ``class_weight`` semantics: weighted sum / number of windows)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return jnp.sum(ce * weights[y] * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def train_step(state: TrainState, batch: dict[str, jax.Array], weights: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimisation step (pure; jit it with ``jit_train_step``). Returns the new state and
    summed metrics for the batch: ``loss_sum``, ``correct``, ``count`` (masked windows excluded)."""
    dropout_key = jax.random.fold_in(jax.random.wrap_key_data(state.dropout_key), state.step)

    def loss_fn(params):
        logits, updates = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats},
            batch["x"],
            train=True,
            mutable=["batch_stats"],
            rngs={"dropout": dropout_key},
        )
        return weighted_cross_entropy(logits, batch["y"], batch["mask"], weights), (logits, updates)

    (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    # A model without BatchNorm (a user's, a baseline) returns no batch_stats collection.
    state = state.apply_gradients(grads=grads, batch_stats=updates.get("batch_stats", state.batch_stats))
    count = jnp.sum(batch["mask"])
    correct = jnp.sum((jnp.argmax(logits, -1) == batch["y"]) * batch["mask"])
    return state, {"loss_sum": loss * count, "correct": correct, "count": count}


def eval_step(state: TrainState, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Inference-mode forward (BatchNorm running averages, no dropout). Returns the summed
    unweighted loss and the per-window predictions and probabilities (padding rows included;
    the caller drops them with the mask)."""
    logits = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats}, batch["x"], train=False)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"])
    return {
        "loss_sum": jnp.sum(ce * batch["mask"]),
        "pred": jnp.argmax(logits, -1).astype(jnp.int32),
        "prob": jax.nn.softmax(logits, -1),
    }


def jit_train_step(state_sharding: Any = None, data_sharding: Any = None, replicated: Any = None):
    """``train_step`` under ``jax.jit`` with the state donated (updated in place).

    With shardings (see ``sharding.py``) the batch is split over the mesh and the state is kept
    replicated; XLA inserts the gradient all-reduce. Without, it runs on the default device.
    """
    if state_sharding is None:
        return jax.jit(train_step, donate_argnums=0)
    return jax.jit(
        train_step,
        in_shardings=(state_sharding, data_sharding, replicated),
        out_shardings=(state_sharding, replicated),
        donate_argnums=0,
    )


def jit_eval_step(state_sharding: Any = None, data_sharding: Any = None, replicated: Any = None):
    """``eval_step`` under ``jax.jit``. With ``replicated`` alone, the inputs stay where they were
    placed and the outputs are gathered onto every device: with several hosts a host can only read
    an array whose every shard it holds, and it needs the predictions of the whole batch."""
    if state_sharding is None:
        return jax.jit(eval_step) if replicated is None else jax.jit(eval_step, out_shardings=replicated)
    return jax.jit(eval_step, in_shardings=(state_sharding, data_sharding), out_shardings=replicated)
