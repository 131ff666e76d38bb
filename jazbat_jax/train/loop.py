"""The epoch loop: train, validate, checkpoint, log, resume, evaluate, plot.

``fit`` is the one entry point used by ``pretrain``, ``finetune`` and the tests. A run folder holds::

    config.json         model / train / data configuration, class names, standardizer
    metrics.jsonl       one JSON object per epoch (train and validation loss / accuracy / macro-F1, ...)
    checkpoints/        last N and best (see checkpoint.py)
    final_eval.json     whole-set test metrics of the best checkpoint (+ the paper's batch-averaged variant)
    curves.png, confusion.png, per_class.png

Resume: calling ``fit`` again on the same folder continues from the newest complete checkpoint;
with the same seed the result equals an uninterrupted run (the epoch order is a function of
(seed, epoch) and the dropout key of the step).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax
from tqdm.auto import tqdm

from jazbat_jax.data.core import Standardizer, WindowSet
from jazbat_jax.train import plots
from jazbat_jax.train.checkpoint import CheckpointError, Checkpoints, load_checkpoint, model_config
from jazbat_jax.train.input_pipeline import batches, epoch_order, num_batches, prefetch
from jazbat_jax.train.metrics import algorithm1_batch_averaged, classification_report, format_report
from jazbat_jax.train.sharding import DataParallel
from jazbat_jax.train.state import TrainState, create_train_state
from jazbat_jax.train.steps import class_weights, jit_eval_step, jit_train_step, make_optimizer
from jazbat_jax.train.transfer import transfer_optimizer


@dataclasses.dataclass
class TrainConfig:
    """Everything that shapes a training run. Defaults follow the paper / Keras (spec §3)."""

    epochs: int = 40  # paper: 40 for pretraining, 90 for fine-tuning
    batch_size: int = 32  # Keras fit default (the paper does not state it)
    learning_rate: float = 1e-3
    adam_eps: float = 1e-7  # Keras' Adam epsilon
    schedule: str = "constant"  # constant | cosine | warmup_cosine
    warmup_epochs: int = 0
    class_weighting: str = "none"  # none | balanced
    seed: int = 0
    keep_last: int = 3
    eval_batch_size: int = 256
    # transfer only: which layers are new, and whether the rest is frozen
    freeze: str = "none"  # none | trunk | epochs
    freeze_epochs: int = 0
    new_layers: tuple[str, ...] = ("head",)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# Fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"epochs", "keep_last", "eval_batch_size"}


def log(msg: str) -> None:
    if jax.process_index() == 0:
        print(msg, flush=True)


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
            # No explicit shardings: the inputs are already placed (state replicated, batch split),
            # so one jitted function serves train states and inference-only states alike.
            self._step = jit_eval_step()
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


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)  # atomic: a killed run never leaves half a file


def _read_history(path: Path, up_to_epoch: int) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["epoch"] <= up_to_epoch]


def _check_resumable(old: dict, new: dict) -> None:
    diffs = []
    for section in ("model", "train", "data"):
        a, b = old.get(section, {}), new.get(section, {})
        for k in sorted(set(a) | set(b)):
            if section == "train" and k in RESUMABLE_CHANGES:
                continue
            if a.get(k) != b.get(k):
                diffs.append(f"  {section}.{k}: checkpoint {a.get(k)!r} vs now {b.get(k)!r}")
    if diffs:
        raise CheckpointError(
            "cannot resume: the run folder was made with a different configuration:\n" + "\n".join(diffs)
            + "\nUse a new --run-dir, or pass the original options."
        )


def fit(
    model: nn.Module,
    variables: dict,
    train: WindowSet,
    val: WindowSet | None,
    test: WindowSet | None,
    standardizer: Standardizer,
    config: TrainConfig,
    run_dir: str | Path,
    data_config: dict | None = None,
    extra_meta: dict | None = None,
    resume: bool = True,
    stop_after_epoch: int | None = None,
    progress: bool = True,
    make_plots: bool = True,
    dp: DataParallel | None = None,
) -> dict:
    """Train ``model`` from ``variables`` and return a summary dict (also written to the run folder).

    ``standardizer`` must be fitted on ``train`` (it is stored with every checkpoint).
    ``stop_after_epoch`` ends the call after that epoch's checkpoint (used to test resume).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dp = dp or DataParallel.create()
    dp.check_batch_size(config.batch_size)
    class_names = list(train.class_names)
    num_classes = len(class_names)
    if getattr(model, "num_classes", num_classes) != num_classes:
        raise ValueError(f"model has {model.num_classes} classes, the data {num_classes}: {class_names}")

    run_config = {
        "model": model_config(model),
        "train": config.to_dict(),
        "data": data_config or {},
        "class_names": class_names,
        "standardizer": standardizer.to_dict(),
        **(extra_meta or {}),
    }
    primary = jax.process_index() == 0  # with several hosts, one writes the files and prints
    config_path = run_dir / "config.json"
    if resume and config_path.exists() and (run_dir / "checkpoints" / "last").exists():
        _check_resumable(json.loads(config_path.read_text()), run_config)
    if primary:
        _write_json(config_path, run_config)

    # Optimizer: Adam (Keras defaults), optional schedule, optional frozen trunk.
    steps_per_epoch = num_batches(len(train), config.batch_size)
    tx = make_optimizer(config.learning_rate, config.adam_eps, config.schedule,
                        config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch)
    tx = transfer_optimizer(tx, variables["params"], config.freeze, config.freeze_epochs * steps_per_epoch,
                            config.new_layers)
    state = dp.put_state(create_train_state(model, variables, tx, config.seed))

    ckpts = Checkpoints(run_dir / "checkpoints", config.keep_last)
    start_epoch, best_f1 = 0, -1.0
    if not resume and ckpts.latest_epoch() is not None:
        raise CheckpointError(f"{run_dir} already has checkpoints and resume is off: use a new run folder")
    if resume and ckpts.latest_epoch() is not None:
        state, meta = ckpts.restore_latest(state)
        start_epoch, best_f1 = meta["epoch"], meta.get("best_val_macro_f1", -1.0)
        log(f"resumed from {ckpts.directory / 'last' / str(start_epoch)} (epoch {start_epoch}, step {meta['step']})")
    history = _read_history(run_dir / "metrics.jsonl", start_epoch)
    if primary:
        with open(run_dir / "metrics.jsonl", "w") as f:  # drop epochs logged after the restored checkpoint
            f.writelines(json.dumps(h) + "\n" for h in history)

    weights = jax.device_put(class_weights(train.y, num_classes, config.class_weighting), dp.replicated)
    step_fn = jit_train_step(dp.state_sharding(state), dp.data, dp.replicated)
    evaluator = Evaluator(dp, config.eval_batch_size)
    meta_base = {k: run_config[k] for k in ("model", "data", "class_names", "standardizer")}
    meta_base["train_config"] = run_config["train"]

    for epoch in range(start_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        order = epoch_order(len(train), config.seed, epoch)
        sums = []
        bar = tqdm(total=len(train), unit="win", unit_scale=True, desc=f"epoch {epoch}/{config.epochs}",
                   disable=not (progress and primary), leave=False, dynamic_ncols=True)
        put = lambda b: (dp.put_batch(b), int(b["mask"].sum()))  # count real windows before the transfer
        for batch, n_real in prefetch(batches(train.x, train.y, config.batch_size, order, standardizer), put):
            state, m = step_fn(state, batch, weights)
            sums.append(m)
            bar.update(n_real)
        bar.close()
        totals = jax.tree.map(lambda *v: float(np.sum(v)), *jax.device_get(sums))
        train_time = time.perf_counter() - t0
        row = {
            "epoch": epoch,
            "step": int(jax.device_get(state.step)),
            "train_loss": totals["loss_sum"] / totals["count"],
            "train_accuracy": totals["correct"] / totals["count"],
            "windows_per_s": len(train) / train_time,
            "train_seconds": round(train_time, 3),
        }
        if val is not None and len(val):
            out = evaluator(state, val.x, val.y, standardizer)
            rep = classification_report(val.y, out["pred"], class_names)
            row.update(val_loss=out["loss"], val_accuracy=rep["accuracy"], val_macro_f1=rep["macro"]["f1"])
            is_best = rep["macro"]["f1"] > best_f1
            best_f1 = max(best_f1, rep["macro"]["f1"])
        else:
            is_best = True  # no validation set: the best checkpoint is the newest
        row["best"] = bool(is_best)
        meta = {**meta_base, "metrics": row, "best_val_macro_f1": best_f1}
        ckpts.save(epoch, state, meta, is_best)
        history.append(row)
        if primary:
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        summary = (f"epoch {epoch:3d}/{config.epochs}  loss {row['train_loss']:.4f}  acc {row['train_accuracy']:.4f}")
        if "val_loss" in row:
            summary += (f"  | val loss {row['val_loss']:.4f}  acc {row['val_accuracy']:.4f}  "
                        f"macro-F1 {row['val_macro_f1']:.4f}{' *' if is_best else ''}")
        log(summary + f"  | {row['windows_per_s']:.0f} win/s  {time.perf_counter() - t0:.1f}s")
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            ckpts.close()
            return {"stopped_after_epoch": epoch, "run_dir": str(run_dir), "state": state}

    ckpts.close()
    result = {"run_dir": str(run_dir), "history": history, "state": state}
    if test is not None and len(test):
        # Evaluate the best checkpoint (by validation macro-F1), exactly as saved.
        best_model, best_vars, best_meta = load_checkpoint(run_dir / "checkpoints", prefer="best")
        eval_state = inference_state(best_model, best_vars, dp)
        final = evaluate_windows(eval_state, test, standardizer, evaluator, config.batch_size)
        final.update(checkpoint_epoch=best_meta["epoch"], best_val_macro_f1=best_meta.get("best_val_macro_f1"))
        result["final"] = final
        log(f"test set, best checkpoint (epoch {final['checkpoint_epoch']}):\n" + format_report(final["report"]))
        if primary:
            _write_json(run_dir / "final_eval.json", final)
        if make_plots and primary:
            plots.plot_confusion(final["report"], run_dir / "confusion.png")
            plots.plot_per_class(final["report"], run_dir / "per_class.png")
    if make_plots and history and primary:
        plots.plot_curves(history, run_dir / "curves.png")
    return result


def evaluate_windows(state: TrainState, ws: WindowSet, standardizer: Standardizer, evaluator: Evaluator,
                     algorithm1_batch_size: int = 32) -> dict:
    """Whole-set report (the numbers to publish) plus the paper's batch-averaged variant."""
    out = evaluator(state, ws.x, ws.y, standardizer)
    report = classification_report(ws.y, out["pred"], list(ws.class_names))
    return {
        "loss": out["loss"],
        "report": report,
        "algorithm1_batch_averaged": algorithm1_batch_averaged(ws.y, out["pred"], algorithm1_batch_size),
    }
