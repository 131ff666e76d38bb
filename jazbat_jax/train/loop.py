"""The epoch loop in four parts: prepare a run, train one epoch, validate, finish.

``fit`` strings them together; ``trainer.py`` builds its arguments from a ``RunConfig``. A run folder holds::

    config.json         the run configuration, model, class names, standardizer, input definition
    metrics.jsonl       one JSON object per epoch (train and validation loss / accuracy / macro-F1, ...)
    checkpoints/        last N and best (see checkpoint.py)
    final_eval.json     whole-set test metrics of the best checkpoint (+ the paper's batch-averaged variant)
    test_predictions.npz  that checkpoint's prediction for every test window, with participant and recording ids
    curves.png, confusion.png, per_class.png

An epoch is committed by one atomic save, its ``last`` checkpoint, whose meta holds every metrics
row so far. The best checkpoint, ``metrics.jsonl``, ``final_eval.json`` and the plots are derived
from committed epochs, and a resumed run re-derives whatever a kill left half-done: whatever the
instant of a SIGKILL, calling ``fit`` again on the same folder ends with exactly the result of an
uninterrupted run (the epoch order is a function of (seed, epoch), the dropout key of the step).
One process at a time owns a run folder (``files.FolderLock``).
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
from tqdm.auto import tqdm

from jazbat_jax.data.core import Standardizer, WindowSet
from jazbat_jax.files import PREDICTIONS_FILE, FolderLock, write_json, write_json_lines, write_npz
from jazbat_jax.model import model_config
from jazbat_jax.train.checkpoint import CheckpointError, Checkpoints, load_checkpoint
from jazbat_jax.train.config import RunConfig
from jazbat_jax.train.evaluate import Evaluator, evaluate_windows, inference_state
from jazbat_jax.train.input_pipeline import batches, epoch_order, num_batches, prefetch
from jazbat_jax.train.metrics import classification_report, format_report
from jazbat_jax.train.sharding import DataParallel
from jazbat_jax.train.state import TrainState, create_train_state
from jazbat_jax.train.steps import class_weights, jit_train_step, make_optimizer
from jazbat_jax.train.transfer import transfer_optimizer


@dataclasses.dataclass
class Parts:
    """The three parts of a split, as window sets (val and test may be empty)."""

    train: WindowSet
    val: WindowSet | None = None
    test: WindowSet | None = None


@dataclasses.dataclass
class FitOptions:
    resume: bool = True  # continue from the run folder's newest checkpoint
    progress: bool = True  # progress bars
    plots: bool = True  # PNG figures
    stop_after_epoch: int | None = None  # end after that epoch's checkpoint (the resume tests use it)
    dp: DataParallel | None = None


@dataclasses.dataclass
class Run:
    """Everything an epoch needs, made once by ``prepare``."""

    config: RunConfig
    run_dir: Path
    parts: Parts
    standardizer: Standardizer
    state: TrainState
    step_fn: Any
    weights: jax.Array
    evaluator: Evaluator
    checkpoints: Checkpoints
    meta: dict  # what every checkpoint stores besides the arrays
    dp: DataParallel
    options: FitOptions
    lock: FolderLock | None
    start_epoch: int = 0
    best_f1: float = -1.0
    history: list[dict] = dataclasses.field(default_factory=list)

    @property
    def primary(self) -> bool:  # with several hosts, one writes the files and prints
        return jax.process_index() == 0


def log(msg: str) -> None:
    if jax.process_index() == 0:
        print(msg, flush=True)


def best_epoch_of(history: list[dict]) -> int | None:
    """The epoch an uninterrupted run keeps as best: the first with the highest validation macro-F1,
    or the newest when there is no validation part."""
    if not history:
        return None
    if "val_macro_f1" not in history[0]:
        return history[-1]["epoch"]
    return max(history, key=lambda r: (r["val_macro_f1"], -r["epoch"]))["epoch"]


def early_stopped(history: list[dict], patience: int | None) -> bool:
    """Whether early stopping ends the run after the newest epoch of ``history``: validation macro-F1
    has not improved for ``patience`` epochs (never without a patience or a validation part)."""
    if patience is None or not history or "val_macro_f1" not in history[0]:
        return False
    return history[-1]["epoch"] - best_epoch_of(history) >= patience


def last_epoch(run: Run) -> int:
    """The last epoch this call trains: the maximum, or ``stop_after_epoch`` when that comes first."""
    stop = run.options.stop_after_epoch
    return run.config.train.epochs if stop is None else min(stop, run.config.train.epochs)


def wants_epoch(run: Run, epoch: int) -> bool:
    """Whether ``epoch`` is still to be trained by this call (not committed, not past the end, not stopped)."""
    return run.start_epoch < epoch <= last_epoch(run) and not early_stopped(run.history, run.config.train.patience)


def _reconcile(run: Run, saved: dict) -> None:
    """After restoring the newest committed epoch, re-derive what a kill may have left half-done: the
    best checkpoint (saved after the commit) and the metrics rows."""
    run.history = list(saved["history"])
    f1s = [r["val_macro_f1"] for r in run.history if "val_macro_f1" in r]
    run.best_f1 = max(f1s) if f1s else -1.0
    ck = run.checkpoints
    best = best_epoch_of(run.history)
    if ck.best_epoch() == best:
        ck.forget_after(run.start_epoch)
        return
    # The committed rows' best epoch must be saved as the best checkpoint: from the state just restored, or from
    # its `last` checkpoint (e.g. after the newest, best, epoch was removed as a damaged checkpoint's error
    # advises). Only once that source has loaded are the best checkpoints of epochs to be trained again deleted:
    # a resume that cannot go on leaves every intact checkpoint as it was.
    if best == run.start_epoch:
        state, source = run.state, saved
    elif best in ck.last.all_steps():
        state, source = ck.restore_epoch(best, run.state)
    else:
        kept = ", ".join(f"{kind}/{e}" for kind, m in (("best", ck.best), ("last", ck.last)) for e in m.all_steps())
        raise CheckpointError(
            f"cannot resume {run.run_dir} from epoch {run.start_epoch}: the best of its committed epochs, {best}, is "
            f"kept neither in {ck.directory / 'best'} nor in {ck.directory / 'last'}, so the run could not end as an "
            f"uninterrupted one would. Nothing was changed: the intact checkpoints ({kept or 'none'}) still evaluate "
            "and export; to train again, start a new run folder")
    ck.forget_after(run.start_epoch)
    body = {k: v for k, v in source.items() if k not in ("format_version", "epoch", "step", "fingerprint")}
    ck.save_best(best, state, body)


def _check_resumable(run_dir: Path, config: RunConfig) -> None:
    stored = json.loads((run_dir / "config.json").read_text())
    try:
        old = RunConfig.from_dict(stored.get("run"))
    except ValueError as e:
        raise CheckpointError(f"cannot resume {run_dir}: {e}") from None
    diffs = config.changes_from(old)
    if diffs:
        raise CheckpointError(f"cannot resume {run_dir}: it was made with another configuration ({'; '.join(diffs)}); "
                              "use a new --run-dir, or pass the original options")


def prepare(model: nn.Module, variables: dict, parts: Parts, standardizer: Standardizer, config: RunConfig,
            run_dir: str | Path, extra_meta: dict | None = None, options: FitOptions | None = None) -> Run:
    """Make the run folder, the optimizer, the train state and the jitted step; resume if asked."""
    options = options or FitOptions()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(run_dir) if jax.process_index() == 0 else None  # held until finish (or the process dies)
    try:
        return _prepare(model, variables, parts, standardizer, config, run_dir, extra_meta, options, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _prepare(model, variables, parts, standardizer, config, run_dir, extra_meta, options, lock) -> Run:
    dp = options.dp or DataParallel.create()
    tc = config.train
    dp.check_batch_size(tc.batch_size)
    class_names = list(parts.train.class_names)
    if getattr(model, "num_classes", len(class_names)) != len(class_names):
        raise ValueError(f"the model has {model.num_classes} classes, the data {len(class_names)}: {class_names}")
    spec = parts.train.input_spec
    meta = {
        "run": config.to_dict(),
        "model": model_config(model, config.model.arch),
        "class_names": class_names,
        "standardizer": standardizer.to_dict(),
        "input": spec.to_dict() if spec is not None else None,
        **(extra_meta or {}),
    }
    if options.resume and (run_dir / "config.json").exists() and (run_dir / "checkpoints" / "last").exists():
        _check_resumable(run_dir, config)
    if jax.process_index() == 0:
        write_json(run_dir / "config.json", meta)

    steps_per_epoch = num_batches(len(parts.train), tc.batch_size)
    tx = make_optimizer(tc.learning_rate, tc.adam_eps, tc.schedule, tc.epochs * steps_per_epoch,
                        tc.warmup_epochs * steps_per_epoch)
    if config.transfer is not None:
        t = config.transfer
        tx = transfer_optimizer(tx, variables["params"], t.freeze, t.freeze_epochs * steps_per_epoch, t.dont_load)
    state = dp.put_state(create_train_state(model, variables, tx, tc.seed))
    checkpoints = Checkpoints(run_dir / "checkpoints", tc.keep_last)
    run = Run(config=config, run_dir=run_dir, parts=parts, standardizer=standardizer, state=state,
              step_fn=jit_train_step(dp.state_sharding(state), dp.data, dp.replicated),
              weights=jax.device_put(class_weights(parts.train.y, len(class_names), tc.class_weighting), dp.replicated),
              evaluator=Evaluator(dp, tc.eval_batch_size), checkpoints=checkpoints, meta=meta, dp=dp, options=options,
              lock=lock)
    latest = checkpoints.latest_epoch()
    if latest is not None and not options.resume:
        raise CheckpointError(f"{run_dir} already has checkpoints and resume is off: use a new run folder")
    if latest is not None:
        run.state, saved = checkpoints.restore_latest(state)
        run.start_epoch = saved["epoch"]
        _reconcile(run, saved)
        log(f"resumed from {checkpoints.directory / 'last' / str(run.start_epoch)} "
            f"(epoch {run.start_epoch}, step {saved['step']})")
    if run.primary:  # exactly the committed epochs' rows (a kill may have lost or half-written one)
        write_json_lines(run_dir / "metrics.jsonl", run.history)
    return run


def train_epoch(run: Run, epoch: int) -> dict:
    """One pass over the training windows in this epoch's order; the epoch's training metrics."""
    tc, train = run.config.train, run.parts.train
    t0 = time.perf_counter()
    order = epoch_order(len(train), tc.seed, epoch)
    sums = []
    bar = tqdm(total=len(train), unit="win", unit_scale=True, desc=f"epoch {epoch}/{tc.epochs}",
               disable=not (run.options.progress and run.primary), leave=False, dynamic_ncols=True)
    put = lambda b: (run.dp.put_batch(b), int(b["mask"].sum()))  # count real windows before the transfer
    pending = None
    for batch, n_real in prefetch(batches(train.x, train.y, tc.batch_size, order, run.standardizer), put):
        run.state, m = run.step_fn(run.state, batch, run.weights)
        sums.append(m)
        # Count a batch when the step before it has finished, so that the bar's rate is the real one.
        if pending is not None:
            jax.block_until_ready(pending[0])
            bar.update(pending[1])
        pending = (m["count"], n_real)
    if pending is not None:
        bar.update(pending[1])
    bar.close()
    return epoch_row(run, epoch, jax.device_get(sums), time.perf_counter() - t0)


def epoch_row(run: Run, epoch: int, sums: list[dict], seconds: float) -> dict:
    """The training part of an epoch's metrics row, from the per-batch metrics of ``train_step``."""
    totals = jax.tree.map(lambda *v: float(np.sum(v)), *sums)
    return {
        "epoch": epoch,
        "step": int(jax.device_get(run.state.step)),
        "train_loss": totals["loss_sum"] / totals["count"],
        "train_accuracy": totals["correct"] / totals["count"],
        "windows_per_s": len(run.parts.train) / seconds,
        "train_seconds": round(seconds, 3),
    }


def validate(run: Run) -> dict:
    """Validation loss, accuracy and macro-F1 (empty when there is no validation part)."""
    val = run.parts.val
    if val is None or not len(val):
        return {}
    out = run.evaluator(run.state, val.x, val.y, run.standardizer)
    rep = classification_report(val.y, out["pred"], list(val.class_names))
    return {"val_loss": out["loss"], "val_accuracy": rep["accuracy"], "val_macro_f1": rep["macro"]["f1"]}


def commit_epoch(run: Run, row: dict) -> None:
    """Decide whether the epoch is the best so far, save its checkpoints, log its metrics row."""
    is_best = row["val_macro_f1"] > run.best_f1 if "val_macro_f1" in row else True  # no validation: the newest
    if "val_macro_f1" in row:
        run.best_f1 = max(run.best_f1, row["val_macro_f1"])
    row["best"] = bool(is_best)
    run.history.append(row)
    meta = {**run.meta, "metrics": row, "best_val_macro_f1": run.best_f1, "history": run.history}
    run.checkpoints.save_last(row["epoch"], run.state, meta)  # the commit: everything after it is re-derivable
    if is_best:
        run.checkpoints.save_best(row["epoch"], run.state, meta)
    append_metrics(run, row)
    line = f"epoch {row['epoch']:3d}/{run.config.train.epochs}  loss {row['train_loss']:.4f}  acc {row['train_accuracy']:.4f}"
    if "val_loss" in row:
        line += (f"  | val loss {row['val_loss']:.4f}  acc {row['val_accuracy']:.4f}  "
                 f"macro-F1 {row['val_macro_f1']:.4f}{' *' if is_best else ''}")
    log(line + f"  | {row['windows_per_s']:.0f} win/s  {row['train_seconds']:.1f}s")


def append_metrics(run: Run, row: dict) -> None:
    """One line per committed epoch in metrics.jsonl (rewritten from the checkpoints on resume)."""
    if run.primary:
        with open(run.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")


def release(run: Run) -> None:
    run.checkpoints.close()
    if run.lock is not None:
        run.lock.release()


def finish(run: Run) -> dict:
    """Evaluate the best checkpoint (by validation macro-F1, exactly as saved) on the test part; plots."""
    try:
        return _finish(run)
    finally:
        release(run)


def _finish(run: Run) -> dict:
    run.checkpoints.close()
    result: dict[str, Any] = {"run_dir": str(run.run_dir), "history": run.history, "state": run.state}
    if run.start_epoch:  # resumed: where, and the training time earlier sessions spent on the epochs it kept
        result.update(resumed_at_epoch=run.start_epoch, earlier_train_s=round(sum(
            h.get("train_seconds", 0.0) for h in run.history if h["epoch"] <= run.start_epoch), 2))
    test = run.parts.test
    if test is not None and len(test):
        best_model, best_vars, best_meta = load_checkpoint(run.run_dir / "checkpoints", "best")
        final = evaluate_windows(inference_state(best_model, best_vars, run.dp), test, run.standardizer,
                                 run.evaluator, run.config.train.batch_size, per_window=True)
        predictions = final.pop("predictions")
        final.update(checkpoint_epoch=best_meta["epoch"], best_val_macro_f1=best_meta.get("best_val_macro_f1"))
        if run.config.train.patience is not None:  # where early stopping ended the run
            final.update(stopped_epoch=run.history[-1]["epoch"],
                         early_stopped=early_stopped(run.history, run.config.train.patience))
        result["final"] = final
        log(f"test set, best checkpoint (epoch {final['checkpoint_epoch']}):\n" + format_report(final["report"]))
        if run.primary:
            write_npz(run.run_dir / PREDICTIONS_FILE, **predictions)
            write_json(run.run_dir / "final_eval.json", final)
        if run.options.plots and run.primary:
            from jazbat_jax.train import plots

            plots.plot_confusion(final["report"], run.run_dir / "confusion.png")
            plots.plot_per_class(final["report"], run.run_dir / "per_class.png")
    if run.options.plots and run.history and run.primary:
        from jazbat_jax.train import plots

        plots.plot_curves(run.history, run.run_dir / "curves.png", len(run.parts.train.class_names))
    return result


def fit(model: nn.Module, variables: dict, parts: Parts, standardizer: Standardizer, config: RunConfig,
        run_dir: str | Path, extra_meta: dict | None = None, options: FitOptions | None = None) -> dict:
    """Train ``model`` from ``variables`` and return a summary dict (also written to the run folder).

    ``standardizer`` must be fitted on ``parts.train`` (it is stored with every checkpoint).
    """
    run = prepare(model, variables, parts, standardizer, config, run_dir, extra_meta, options)
    try:
        for epoch in range(run.start_epoch + 1, last_epoch(run) + 1):
            if not wants_epoch(run, epoch):  # early stopping
                break
            row = train_epoch(run, epoch)
            row.update(validate(run))
            commit_epoch(run, row)
    except BaseException:
        release(run)
        raise
    return end(run)


def end(run: Run) -> dict:
    """``finish`` a run that is complete (every epoch, or stopped early); release one that was told to
    stop after an epoch (``stop_after_epoch``) and report where it stopped."""
    last = last_epoch(run)
    if last < run.config.train.epochs and not early_stopped(run.history, run.config.train.patience):
        release(run)
        return {"stopped_after_epoch": max(last, run.start_epoch), "run_dir": str(run.run_dir), "state": run.state}
    return finish(run)
