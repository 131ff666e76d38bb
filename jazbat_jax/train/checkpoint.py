"""Orbax checkpoints: the last N and the best (by validation macro-F1) of a run.

Layout of a run's ``checkpoints/`` folder::

    last/<epoch>/{variables, train, meta}   the newest ``keep_last`` epochs (for resume)
    best/<epoch>/{variables, train, meta}   the epoch with the best validation macro-F1

``variables`` = {'params', 'batch_stats'}; ``train`` = {'opt_state', 'step', 'dropout_key'};
``meta`` (JSON) = the run configuration, the model's constructor arguments, class names,
standardizer, input definition, epoch, metrics, and SHA-256 fingerprints of every array and of
the meta itself. Evaluation, export and prediction need only ``variables`` + ``meta``
(``load_checkpoint``); resume needs all three.

Saving is atomic (orbax writes a temporary folder and renames it when complete), so a run
killed during a save resumes from the previous complete checkpoint; leftovers are removed when
the manager opens. On load the fingerprint and the shapes are checked: a corrupted or
incompatible checkpoint raises ``CheckpointError`` with the reason, never a partial load.
A checkpoint written in another format version is refused with a message.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp

from jazbat_jax.model import model_from_config
from jazbat_jax.trees import flatten, tree_mismatches

FORMAT_VERSION = 2  # 1: the meta layout before the typed run configuration
ITEMS = ("variables", "train", "meta")
KINDS = ("best", "last")
TMP_MARK = ".orbax-checkpoint-tmp"  # in the name of the folder orbax writes a save to before renaming it


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used as it is (missing, corrupted or incompatible)."""


def build_model(config: dict) -> nn.Module:
    try:
        return model_from_config(config)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"the checkpoint's model configuration cannot be built: {e}") from None


# ---------------------------------------------------------------- integrity
def fingerprint(tree: Any) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes (order-independent of dict order)."""
    h = hashlib.sha256()
    flat = flatten(jax.device_get(tree)) if isinstance(tree, dict) else {"": jax.device_get(tree)}
    for path in sorted(flat):
        leaves, _ = jax.tree_util.tree_flatten_with_path(flat[path])
        for kp, leaf in leaves:
            a = np.ascontiguousarray(np.asarray(leaf))
            h.update(f"{path}{jax.tree_util.keystr(kp)}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def meta_fingerprint(meta: dict) -> str:
    """SHA-256 of the meta's canonical JSON, without its own fingerprint entry."""
    body = {k: v for k, v in meta.items() if k != "fingerprint"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _train_tree(state) -> dict:
    return {"opt_state": state.opt_state, "step": state.step, "dropout_key": state.dropout_key}


def _manager(directory: Path, keep: int, read_only: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=not read_only,
        enable_async_checkpointing=False,  # the state is ~100 KB: a synchronous save is simplest and exact
        cleanup_tmp_directories=not read_only,  # drop half-written saves left by a killed run
    )
    handlers = {
        "variables": ocp.StandardCheckpointHandler(),
        "train": ocp.StandardCheckpointHandler(),
        "meta": ocp.JsonCheckpointHandler(),
    }
    manager = ocp.CheckpointManager(directory.absolute(), options=options, item_handlers=handlers)
    # orbax removes half-written saves in a background thread that its close() does not wait for: a
    # manager closed, or an interpreter ending, before that thread is done makes it print a traceback
    # ("cannot schedule new futures after shutdown", "Event loop is closed"). Wait for it here.
    wait_for_cleanup = getattr(manager, "_maybe_await_cleanup_tmp_directory", None)
    if wait_for_cleanup is not None:
        wait_for_cleanup()
    return manager


# ---------------------------------------------------------------- save / resume
def _variables(state) -> dict:
    """The variables a checkpoint holds: ``batch_stats`` only for a model that has some (orbax cannot
    restore an empty collection, and ``model.init`` of a model without BatchNorm makes none)."""
    return {"params": state.params, **({"batch_stats": state.batch_stats} if state.batch_stats else {})}


class Checkpoints:
    """The ``last`` and ``best`` checkpoint managers of one run."""

    def __init__(self, directory: str | Path, keep_last: int = 3):
        self.directory = Path(directory)
        self.last = _manager(self.directory / "last", keep_last)
        self.best = _manager(self.directory / "best", 1)

    def _args(self, epoch: int, state, meta: dict) -> ocp.args.Composite:
        variables = _variables(state)
        train = _train_tree(state)
        meta = {**meta, "format_version": FORMAT_VERSION, "epoch": int(epoch), "step": int(jax.device_get(state.step))}
        meta = json.loads(json.dumps(meta))  # the JSON the handler stores, so that the fingerprint matches it
        meta["fingerprint"] = {"variables": fingerprint(variables), "train": fingerprint(train),
                               "meta": meta_fingerprint(meta)}
        return ocp.args.Composite(
            variables=ocp.args.StandardSave(variables),
            train=ocp.args.StandardSave(train),
            meta=ocp.args.JsonSave(meta),
        )

    def save_last(self, epoch: int, state, meta: dict) -> None:
        """Commit epoch ``epoch``: once this returns, a resumed run continues after it."""
        self._save(self.last, "last", epoch, state, meta)

    def save_best(self, epoch: int, state, meta: dict) -> None:
        """Keep epoch ``epoch`` as the best (the previous best is dropped)."""
        self._save(self.best, "best", epoch, state, meta)

    def _save(self, manager: ocp.CheckpointManager, kind: str, epoch: int, state, meta: dict) -> None:
        """One save; a full disk becomes one CheckpointError that says where, how much space is free and that
        rerunning resumes, instead of orbax's tracebacks from each of its writer threads."""
        args = self._args(epoch, state, meta)
        held = _HeldStderr()
        try:
            manager.save(epoch, args=args, force=True)
        except Exception as e:
            if not _disk_full(e):
                held.release()
                raise
            time.sleep(0.5)  # let orbax's writer threads finish reporting the failure into the held stderr
            held.drop()
            error = e
        except BaseException:  # Ctrl-C during the save
            held.release()
            raise
        else:
            held.release()
            return
        folder = self.directory / kind
        for tmp in folder.glob(f"{epoch}{TMP_MARK}*"):  # the failed save's partial files: give their space back
            shutil.rmtree(tmp, ignore_errors=True)
        committed = sorted(_epochs(self.directory / "last"))
        resume = (f"rerunning the same command resumes after epoch {committed[-1]}, the newest complete checkpoint"
                  if committed else "rerunning the same command starts the run again")
        size = _folder_bytes(folder / str(committed[-1])) if committed and kind == "last" else None
        raise CheckpointError(
            f"no space left on the device while saving epoch {epoch}'s checkpoint in {folder} "
            f"({_size(shutil.disk_usage(folder).free)} free there"
            + (f"; one checkpoint of this run takes {_size(size)}" if size else "")
            + f"): free some space, then {resume}") from error

    def best_epoch(self) -> int | None:
        return self.best.latest_step()

    def forget_after(self, epoch: int) -> None:
        """Delete best checkpoints newer than ``epoch``: saved after the checkpoint a run resumes from,
        they belong to epochs that will be trained again (and would block their save)."""
        for step in self.best.all_steps():
            if step > epoch:
                self.best.delete(step)

    def latest_epoch(self) -> int | None:
        return self.last.latest_step()

    def restore_latest(self, state_template) -> tuple[Any, dict]:
        """The state and meta of the newest complete checkpoint in ``last``, restored into the
        structure (and shardings) of ``state_template``. Raises ``CheckpointError`` if unusable,
        with the recovery: delete that checkpoint to resume from the epoch before it."""
        epoch = self.latest_epoch()
        if epoch is None:
            raise CheckpointError(f"no complete checkpoint in {self.directory / 'last'}")
        step_dir = self.directory / "last" / str(epoch)
        try:
            return self._restore(epoch, step_dir, state_template)
        except CheckpointError as e:
            if "does not fit the model" in str(e):  # a different model, not a damaged file
                raise
            raise CheckpointError(f"{e}. Delete {step_dir} to resume from the epoch before it") from None

    def restore_epoch(self, epoch: int, state_template) -> tuple[Any, dict]:
        """The state and meta of ``last/<epoch>``, checked like ``restore_latest``'s."""
        return self._restore(epoch, self.directory / "last" / str(epoch), state_template)

    def _restore(self, epoch: int, step_dir: Path, state_template) -> tuple[Any, dict]:
        abstract = lambda tree: jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
        variables_t = _variables(state_template)
        meta = _restore_meta(self.last, epoch, step_dir)
        _check_shapes(self.last, epoch, step_dir, variables_t)
        try:
            restored = self.last.restore(
                epoch,
                args=ocp.args.Composite(
                    variables=ocp.args.StandardRestore(abstract(variables_t)),
                    train=ocp.args.StandardRestore(abstract(_train_tree(state_template))),
                ),
            )
        except Exception as e:  # orbax raises many types; all mean the same to the user
            raise CheckpointError(f"checkpoint {step_dir} is corrupted or incompatible with this run: {_reason(e)}") from e
        _verify(meta, "variables", restored["variables"], step_dir)
        _verify(meta, "train", restored["train"], step_dir)
        state = state_template.replace(
            params=restored["variables"]["params"],
            batch_stats=restored["variables"].get("batch_stats", {}),
            **restored["train"],
        )
        return state, meta

    def close(self) -> None:
        self.last.close()
        self.best.close()


# ---------------------------------------------------------------- a full disk
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How orbax / tensorstore word a full disk in the text of the exceptions they raise and log.
DISK_FULL_TEXT = ("No space left on device", "os_error_code='28'", "Disk quota exceeded")


def _disk_full(e: BaseException | None) -> bool:
    """Whether ``e`` or an exception it was raised from says that the disk (or the quota) is full."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            return True
        if any(t in str(e) for t in DISK_FULL_TEXT):
            return True
        e = e.__cause__ or e.__context__
    return False


class _DropDiskFullNoise(logging.Filter):
    """Drops what orbax (absl) and asyncio log about writes that failed for lack of space, during a save and, after
    a failed one, later (asyncio reports a failed write's future when it is collected): the save's one-line error
    says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        return not any(t in text for t in DISK_FULL_TEXT)


_DISK_FULL_FILTER = _DropDiskFullNoise()
NOISY_LOGGERS = ("absl", "asyncio")


class _HeldStderr:
    """Holds what Python writes to stderr during a save, from its creation: passed on by ``release`` (the save
    succeeded, or failed for another reason), or dropped by ``drop`` when the disk is full (orbax's writer threads
    then print one traceback each, and a closed event loop's, for the failure the save's error states in one
    line). Also filters orbax's and asyncio's log records about a full disk, for the rest of the process (asyncio
    reports a failed write's future when it is collected, after the save)."""

    def __init__(self):
        self.buffer = io.StringIO()
        self.stream = sys.stderr
        for name in NOISY_LOGGERS:
            logging.getLogger(name).addFilter(_DISK_FULL_FILTER)  # a logger keeps one copy of a filter
        sys.stderr = self.buffer

    def release(self) -> None:
        sys.stderr = self.stream
        self.stream.write(self.buffer.getvalue())

    def drop(self) -> None:
        sys.stderr = self.stream


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _reason(e: Exception, limit: int = 160) -> str:
    """The start of an orbax / tensorstore error: enough to say what broke, not a page of spec JSON."""
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _restore_meta(manager: ocp.CheckpointManager, epoch: int, step_dir: Path) -> dict:
    try:
        meta = manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as e:
        raise CheckpointError(f"checkpoint {step_dir} has no readable meta (corrupted?): {_reason(e)}") from e
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise CheckpointError(f"checkpoint {step_dir} has format {found}, this version of jazbat-jax reads format "
                              f"{FORMAT_VERSION}: retrain it with this version")
    if meta.get("fingerprint", {}).get("meta") != meta_fingerprint(meta):
        raise CheckpointError(f"checkpoint {step_dir}: its meta (configuration, standardizer, class names) does not "
                              "match the fingerprint written when it was saved (edited or corrupted file)")
    return meta


def _check_shapes(manager: ocp.CheckpointManager, epoch: int, step_dir: Path, expected: dict) -> None:
    """Compare the saved array shapes with the model's before restoring anything."""
    try:
        saved = manager.item_metadata(epoch)["variables"]
    except Exception as e:
        raise CheckpointError(f"checkpoint {step_dir} has unreadable array metadata (corrupted?): {_reason(e)}") from e
    if saved is None:
        raise CheckpointError(f"checkpoint {step_dir} has no 'variables' item")
    problems = tree_mismatches(flatten(expected), flatten(dict(saved)))
    if problems:
        raise CheckpointError(f"checkpoint {step_dir} does not fit the model: {problems}")


def _verify(meta: dict, item: str, tree: Any, step_dir: Path) -> None:
    expected = meta.get("fingerprint", {}).get(item)
    if expected != fingerprint(tree):
        raise CheckpointError(
            f"checkpoint {step_dir}: the '{item}' arrays do not match the fingerprint written when it was "
            f"saved (corrupted file?)"
        )


# ---------------------------------------------------------------- load for eval / export
def resolve_checkpoint(path: str | Path, kind: str = "best") -> Path:
    """Accept a run folder, its ``checkpoints/`` folder, a ``best``/``last`` folder or one epoch's
    folder, and return the epoch folder. ``kind`` ('best' or 'last') chooses inside a run: the
    other kind is never used instead (choosing it is the caller's explicit option)."""
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind must be one of {KINDS}, got {kind!r}")
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"no checkpoint at {p}: give a run folder or a checkpoint folder")
    if (p / "checkpoints").is_dir():
        p = p / "checkpoints"
    if (p / "best").is_dir() or (p / "last").is_dir():
        p = p / kind
        if not p.is_dir() or not _epochs(p):
            other = "last" if kind == "best" else "best"
            raise CheckpointError(f"{p} holds no complete checkpoint (damaged or never written); "
                                  f"use the '{other}' checkpoint explicitly (--checkpoint-kind {other}) or retrain")
    if TMP_MARK in p.name:
        finished = sorted(_epochs(p.parent))
        raise CheckpointError(
            f"{p} is an unfinished save (orbax writes a checkpoint to such a temporary folder and renames it when "
            f"complete; a run that stopped during the save leaves it behind): "
            + (f"give a finished checkpoint of {p.parent}: epoch{'s' if len(finished) > 1 else ''} "
               f"{', '.join(map(str, finished))} ({p.parent / str(finished[-1])})" if finished
               else f"{p.parent} holds no finished checkpoint"))
    if all((p / item).exists() for item in ITEMS):
        if not p.name.isdigit():
            raise CheckpointError(f"{p} is not an epoch's checkpoint folder (those are named by their epoch, e.g. "
                                  f"best/3): give the run folder or one of its epoch folders")
        return p
    epochs = _epochs(p) if p.is_dir() else []
    if not epochs:
        raise CheckpointError(_results_folder_hint(p) or
                              f"{p} holds no complete checkpoint (expected the folders {', '.join(ITEMS)})")
    return p / str(max(epochs))


# The folders `jazbat experiments` (a grid) and `jazbat accuracy-cost` write, with their run folders.
RESULTS_LAYOUTS = (("an experiment grid's", ("cells/*/run", "pretrain/*/run"),
                    "`jazbat experiments --results {p} --report-only` rebuilds its report"),
                   ("`jazbat accuracy-cost`'s", ("runs/*",), "its report is {p}/report.md"))


def _results_folder_hint(p: Path) -> str | None:
    """For a results folder of many runs given where one run is expected: what it is and how to pick a run."""
    if not p.is_dir():
        return None
    for what, patterns, report in RESULTS_LAYOUTS:
        runs = sorted(r for pattern in patterns for r in p.glob(pattern) if (r / "config.json").is_file())
        if not runs or not (p / "invocations.jsonl").is_file():
            continue
        report = report.format(p=p)
        kept = [r for r in runs if (r / "checkpoints").is_dir()]
        if not kept:  # committed results keep their runs' reports, not their checkpoints
            return (f"{p} is {what} results folder, and none of its {len(runs)} runs kept its checkpoints "
                    f"(e.g. {runs[0]}); {report}")
        shown = ", ".join(str(r.relative_to(p)) for r in kept[:3]) + (f" and {len(kept) - 3} more" if len(kept) > 3 else "")
        return (f"{p} is {what} results folder, not one run: give one of its {len(kept)} run folder{'s' if len(kept) > 1 else ''} "
                f"({shown}), e.g. {kept[0]}; {report}")
    if (p / "run" / "checkpoints").is_dir():  # one job's folder of such a results folder
        return f"{p} holds its run folder in run/: give {p / 'run'}"
    return None


def _epochs(folder: Path) -> list[int]:
    return [int(d.name) for d in folder.iterdir() if d.is_dir() and d.name.isdigit() and all((d / i).exists() for i in ITEMS)]


def load_checkpoint(path: str | Path, kind: str = "best") -> tuple[nn.Module, dict, dict]:
    """``(model, variables, meta)`` from a checkpoint, checked against its fingerprints and the
    model's shapes. ``meta`` holds the run configuration (``run``), class_names, standardizer, the
    input definition (``input``), epoch, step, metrics and ``checkpoint`` (the folder it came from)."""
    step_dir = resolve_checkpoint(path, kind)
    manager = _manager(step_dir.parent, keep=1, read_only=True)
    epoch = int(step_dir.name)
    try:
        meta = _restore_meta(manager, epoch, step_dir)
        model = build_model(meta["model"])
        expected = jax.eval_shape(
            lambda: model.init(jax.random.key(0), np.zeros((1, model.window, model.input_dim), np.float32))
        )
        _check_shapes(manager, epoch, step_dir, dict(expected))
        try:
            restored = manager.restore(
                epoch,
                args=ocp.args.Composite(variables=ocp.args.StandardRestore(jax.tree.map(
                    lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), dict(expected)))),
            )["variables"]
        except Exception as e:
            raise CheckpointError(f"checkpoint {step_dir} is corrupted or incompatible: {_reason(e)}") from e
        _verify(meta, "variables", restored, step_dir)
    finally:
        manager.close()
    meta["checkpoint"] = str(step_dir)
    return model, jax.tree.map(np.asarray, restored), meta
