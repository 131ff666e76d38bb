"""Many runs of one architecture trained together in one jitted program.

At the paper's batch size (32) one run's train step is too small to keep the CPU cores busy. R
independent runs (seeds, folds, pretrainings of the same model shape) can instead take their steps
together: their train states (parameters, optimizer states, BatchNorm statistics, dropout keys, step
counters) are stacked along a leading run axis and ``jax.vmap(train_step)`` updates all of them in one
call. Each run keeps everything that makes it itself: its own split, standardizer, class weights,
epoch order and dropout stream; it sees exactly the batches ``loop.train_epoch`` would give it.

Runs whose training parts differ in size take different numbers of steps per epoch: the program
runs as many steps as its largest member, and a run with no batch left (or one that has stopped, or
one that is further along after a resume) gets a blank batch and an ``active`` flag of 0, so that its
state comes out of the step unchanged. Runs that have ended early are dropped from the program (a
recompilation) once at most half of its members are still training.

Each run is still an ordinary run folder, prepared, committed and finished by ``loop.py``'s own
functions (``prepare``, ``validate``, ``commit_epoch``, ``end``): checkpoints, metrics rows,
resume-after-kill and final evaluation are those of a run trained alone.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jazbat_jax.data.core import Standardizer
from jazbat_jax.train import loop
from jazbat_jax.train.config import RunConfig
from jazbat_jax.train.input_pipeline import batches, epoch_order, num_batches, prefetch
from jazbat_jax.train.steps import train_step


@dataclasses.dataclass
class RunSpec:
    """The arguments of ``loop.fit`` for one run of a program."""

    model: nn.Module
    variables: dict
    parts: loop.Parts
    standardizer: Standardizer
    config: RunConfig
    run_dir: str | Path
    extra_meta: dict | None = None


def multi_train_step(states, batch, weights, active):
    """``train_step`` for R stacked runs; a run whose ``active`` flag is 0 comes out unchanged (and
    counts nothing). ``batch`` arrays and ``weights`` carry the run axis first."""

    def one(state, batch, weights, active):
        new, metrics = train_step(state, batch, weights)
        new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
        return new, jax.tree.map(lambda v: v * active, metrics)

    return jax.vmap(one)(states, batch, weights, active)


# One jitted function for every program: programs of the same R and shapes share its compilation.
jit_multi_train_step = jax.jit(multi_train_step, donate_argnums=0)


def optimizer_key(config: RunConfig, steps_per_epoch: int) -> tuple:
    """What determines a run's optimizer (runs of one program share one). Step counts enter only
    where a schedule or a timed freeze uses them."""
    tc, t = config.train, config.transfer
    key = (tc.learning_rate, tc.adam_eps, tc.schedule)
    if tc.schedule != "constant":
        key += (tc.epochs * steps_per_epoch, tc.warmup_epochs * steps_per_epoch)
    if t is not None and t.freeze != "none":
        key += (t.freeze, t.freeze_epochs * steps_per_epoch, tuple(t.dont_load))
    return key


def program_key(model: nn.Module, parts: loop.Parts, config: RunConfig) -> str:
    """Runs with equal keys can share a program: same model, window shape, batch size and optimizer."""
    from jazbat_jax.model import model_config

    steps = num_batches(len(parts.train), config.train.batch_size)
    return json.dumps([model_config(model), list(parts.train.x.shape[1:]), config.train.batch_size,
                       optimizer_key(config, steps)], sort_keys=True, default=str)


def _stack(states: list) -> object:
    """One state with a leading run axis (the first state's optimizer and apply function, which every
    member shares: ``program_key``)."""
    first = states[0]
    same = [s.replace(tx=first.tx, apply_fn=first.apply_fn) for s in states]
    return jax.tree.map(lambda *a: jnp.stack(a), *same)


def _alive(run: loop.Run, epoch: int) -> bool:
    return loop.last_epoch(run) >= epoch and not loop.early_stopped(run.history, run.config.train.patience)


def train_epoch(runs: list[loop.Run], program: list[int], epoch: int, progress: bool = False) -> dict[int, dict]:
    """One epoch of every member of ``program`` that wants it, in one program; their training metrics rows."""
    active = [i for i in program if loop.wants_epoch(runs[i], epoch)]
    steps = {i: num_batches(len(runs[i].parts.train), runs[i].config.train.batch_size) for i in active}
    its = {}
    for i in active:
        r, train = runs[i], runs[i].parts.train
        its[i] = batches(train.x, train.y, r.config.train.batch_size, epoch_order(len(train), r.config.train.seed, epoch),
                         r.standardizer)
    bs = runs[program[0]].config.train.batch_size
    shape = runs[program[0]].parts.train.x.shape[1:]
    blank = {"x": np.zeros((bs, *shape), np.float32), "y": np.zeros(bs, np.int32), "mask": np.zeros(bs, np.float32)}

    def stacked():
        for s in range(max(steps.values())):
            live = [i in steps and s < steps[i] for i in program]
            parts = [next(its[i]) if on else blank for i, on in zip(program, live)]
            yield {k: np.stack([p[k] for p in parts]) for k in blank}, np.asarray(live)

    t0 = time.perf_counter()
    states = _stack([runs[i].state for i in program])
    weights = jnp.stack([runs[i].weights for i in program])
    bar = tqdm(total=sum(len(runs[i].parts.train) for i in active), unit="win", unit_scale=True, leave=False,
               desc=f"epoch {epoch}, {len(active)}/{len(program)} runs", disable=not progress, dynamic_ncols=True)
    sums = []
    for batch, live in prefetch(stacked(), jax.device_put):
        states, m = jit_multi_train_step(states, batch, weights, live)
        sums.append(m)
        bar.update(int(np.sum(np.asarray(batch["mask"]))) if progress else 0)
    sums = jax.device_get(sums)
    bar.close()
    seconds = time.perf_counter() - t0
    rows = {}
    for j, i in enumerate(program):
        if i not in steps:
            continue
        run = runs[i]
        own_state = jax.tree.map(lambda a, j=j: a[j], states)
        run.state = own_state.replace(tx=run.state.tx, apply_fn=run.state.apply_fn)
        own = [{k: v[j] for k, v in m.items()} for m in sums[:steps[i]]]  # its own steps only, as alone
        rows[i] = loop.epoch_row(run, epoch, own, seconds)
    return rows


def fit_many(specs: list[RunSpec], options: loop.FitOptions | None = None) -> list[dict]:
    """Train every run of ``specs`` (one model shape) together; each run's ``loop.fit`` result, in order.

    Each run folder resumes from its own newest checkpoint, as ``loop.fit`` would."""
    options = options or loop.FitOptions()
    if options.dp is not None and options.dp.num_devices > 1:
        raise ValueError("several runs in one program train on one device; use data parallelism one run at a time")
    keys = {program_key(s.model, s.parts, s.config) for s in specs}
    if len(keys) > 1:
        raise ValueError("these runs cannot share a program (model, window, batch size or optimizer differ): "
                         "group them with multi.program_key")
    runs: list[loop.Run] = []
    try:
        for s in specs:
            runs.append(loop.prepare(s.model, s.variables, s.parts, s.standardizer, s.config, s.run_dir,
                                     s.extra_meta, options))
        program = list(range(len(runs)))
        first = min(r.start_epoch for r in runs) + 1
        for epoch in range(first, max(loop.last_epoch(r) for r in runs) + 1):
            alive = [i for i in program if _alive(runs[i], epoch)]
            if not alive:
                break
            if len(alive) <= len(program) // 2:  # drop the ended runs: a smaller program is faster
                loop.log(f"program: {len(alive)} of {len(program)} runs still training; dropping the others")
                program = alive
            if not any(loop.wants_epoch(runs[i], epoch) for i in program):
                continue  # every member resumed past this epoch
            rows = train_epoch(runs, program, epoch, options.progress)
            for i, row in rows.items():
                row.update(loop.validate(runs[i]))
                loop.commit_epoch(runs[i], row)
    except BaseException:
        for r in runs:
            loop.release(r)
        raise
    out = []
    for k, r in enumerate(runs):
        try:
            out.append(loop.end(r))
        except BaseException:
            for rest in runs[k + 1:]:
                loop.release(rest)
            raise
    return out
