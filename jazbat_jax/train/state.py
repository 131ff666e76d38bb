"""The train state: parameters, BatchNorm statistics, optimizer state, step and a dropout key.

Modelled on flax ``examples/imagenet``: a ``TrainState`` subclass that carries ``batch_stats``
so that one pytree holds everything a jitted step needs (and everything a checkpoint saves).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
    """``params``, ``opt_state``, ``step`` and ``apply_fn`` (from flax) plus:

    batch_stats: BatchNorm running statistics (updated by every train step).
    dropout_key: base PRNG key; each step folds in ``step`` so a resumed run draws the same masks.
    """

    batch_stats: Any
    dropout_key: jax.Array


def create_train_state(model: nn.Module, variables: dict, tx: optax.GradientTransformation, seed: int = 0) -> TrainState:
    """A fresh state from ``{'params', 'batch_stats'}`` (optimizer state initialised from ``tx``)."""
    state = TrainState.create(
        apply_fn=model.apply,
        params=variables["params"],
        batch_stats=variables.get("batch_stats", {}),
        tx=tx,
        dropout_key=jax.random.key_data(jax.random.fold_in(jax.random.key(seed), 1)),
    )
    return state.replace(step=jnp.zeros((), jnp.int32))  # an array, so checkpoints store one dtype

