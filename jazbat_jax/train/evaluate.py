"""Inference over whole window sets: used by training (validation, final test), ``evaluate``,
``predict`` and the export gates. Nothing here depends on the training loop."""
from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np
import optax

from jazbat_jax.data.core import Standardizer, WindowSet
from jazbat_jax.files import window_predictions
from jazbat_jax.train.input_pipeline import batches, prefetch
from jazbat_jax.train.metrics import algorithm1_batch_averaged, classification_report
from jazbat_jax.train.sharding import DataParallel
from jazbat_jax.train.state import TrainState, create_train_state
from jazbat_jax.train.steps import jit_eval_step


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


class Evaluator:
    """Jitted whole-set inference over fixed-shape, masked batches."""

    def __init__(self, dp: DataParallel, batch_size: int):
        self.dp = dp
        self.batch_size = _round_up(batch_size, dp.num_devices)
        self._step = None

    def __call__(self, state: TrainState, x: np.ndarray, y: np.ndarray | None, standardizer: Standardizer | None) -> dict:
        if self._step is None:
            # No input shardings: the inputs are already placed (state replicated, batch split),
            # so one jitted function serves train states and inference-only states alike. The
            # outputs are replicated so that every host can read them (see ``jit_eval_step``).
            self._step = jit_eval_step(replicated=self.dp.replicated)
        y = np.zeros(len(x), np.int32) if y is None else y
        outs = []
        for b in prefetch(batches(x, y, self.batch_size, standardizer=standardizer), self.dp.put_batch):
            outs.append(self._step(state, b))
        outs = jax.device_get(outs)
        n = len(x)
        return {
            "loss": float(sum(o["loss_sum"] for o in outs) / max(n, 1)),
            "pred": np.concatenate([o["pred"] for o in outs])[:n],
            "prob": np.concatenate([o["prob"] for o in outs])[:n],
        }


def inference_state(model: nn.Module, variables: dict, dp: DataParallel | None = None) -> TrainState:
    """A state for evaluation only (no optimizer)."""
    state = create_train_state(model, variables, optax.identity())
    return (dp or DataParallel.create()).put_state(state)


def evaluate_windows(state: TrainState, ws: WindowSet, standardizer: Standardizer, evaluator: Evaluator,
                     algorithm1_batch_size: int = 32, per_window: bool = False) -> dict:
    """Whole-set report (the numbers to publish) plus the paper's batch-averaged variant; with
    ``per_window``, also ``"predictions"``: ``files.window_predictions`` of every window."""
    out = evaluator(state, ws.x, ws.y, standardizer)
    report = classification_report(ws.y, out["pred"], list(ws.class_names))
    result = {
        "loss": out["loss"],
        "report": report,
        "algorithm1_batch_averaged": algorithm1_batch_averaged(ws.y, out["pred"], algorithm1_batch_size),
    }
    if per_window:
        result["predictions"] = window_predictions(ws, out["pred"], out["prob"])
    return result


def predict_proba(model: nn.Module, variables: dict, x: np.ndarray, standardizer: Standardizer | None,
                  batch_size: int = 256) -> np.ndarray:
    """Class probabilities of raw windows ``x`` (N, T, F), standardised with ``standardizer``."""
    dp = DataParallel.create()
    return Evaluator(dp, batch_size)(inference_state(model, variables, dp), x, None, standardizer)["prob"]
