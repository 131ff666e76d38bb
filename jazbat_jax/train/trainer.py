"""One trainer for every command and for the experiment grid: ``RunConfig`` in, run folder out.

``pretrain(config, workdir)`` trains from random initialisation; ``finetune(config, workdir)``
re-heads the pretrained checkpoint named by ``config.transfer`` (or, without one, trains the
no-pretraining baseline). Both load the data of ``config.data`` (or take already loaded windows
of that configuration), split it, fit the standardizer on the training part and call ``loop.fit``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import flax.linen as nn

from jazbat_jax.data.config import ConfigError, load_split, split_of
from jazbat_jax.data.core import Split, Standardizer, WindowSet
from jazbat_jax.model import build as build_model
from jazbat_jax.model import init_variables, input_width
from jazbat_jax.train.checkpoint import load_checkpoint
from jazbat_jax.train.config import RunConfig
from jazbat_jax.train.loop import FitOptions, Parts, fit, log
from jazbat_jax.train.transfer import path_matcher, reheaded_variables, transfer_model


@dataclasses.dataclass
class Prepared:
    """A run's data and starting point, before any training."""

    windows: WindowSet
    split: Split
    parts: Parts
    model: nn.Module
    variables: dict
    extra_meta: dict


def _parts(ws: WindowSet, split: Split) -> Parts:
    return Parts(ws.subset(split.train), ws.subset(split.val), ws.subset(split.test))


def _starting_point(config: RunConfig, num_classes: int) -> tuple[nn.Module, dict, dict]:
    """(model, variables, meta about the source) for a fresh or a transferred run."""
    d = config.data
    if config.transfer is None:
        model = build_model(config.model.arch, d.input_kind, num_classes, config.model.reduce_filters, window=d.window)
        return model, init_variables(model, config.train.seed), {"transfer_source": None}
    t = config.transfer
    source, source_variables, source_meta = load_checkpoint(t.source, t.checkpoint)
    if (source.input_dim, source.window) != (input_width(d.input_kind), d.window):
        raise ConfigError(f"the pretrained model reads windows of {source.window} samples × {source.input_dim} "
                          f"channel(s); the data gives {d.window} × {input_width(d.input_kind)} ({d.input_kind}): "
                          "choose the same input kind and window")
    k = config.model.reduce_filters
    recreated = path_matcher(t.dont_load)("reduce/kernel")
    if k is None and recreated:
        k = num_classes  # a re-created reduction conv gets K = C, the paper's scratch width
    if k is not None and k != source.reduce_filters and not recreated:
        raise ConfigError(f"K = {k} differs from the pretrained K = {source.reduce_filters}: the reduction conv must "
                          "then be re-created (add 'reduce/.*' to dont_load, --recreate-reduce)")
    model = transfer_model(source, num_classes, k)
    variables = reheaded_variables(source_variables, model, config.train.seed, t.dont_load)
    log(f"pretrained: {source_meta['checkpoint']} (epoch {source_meta['epoch']}, "
        f"{len(source_meta['class_names'])} classes); head {source.num_classes}→{num_classes} classes, "
        f"reduction K = {model.reduce_filters}, not loaded: {', '.join(t.dont_load)}, freeze = {t.freeze}; "
        "new optimizer state; the target's standardisation")
    about = {"checkpoint": source_meta["checkpoint"], "epoch": source_meta["epoch"],
             "class_names": source_meta["class_names"], "input": source_meta.get("input"),
             "data": source_meta["run"]["data"]}
    return model, variables, {"transfer_source": about}


def prepare_run(config: RunConfig, windows: WindowSet | None = None) -> Prepared:
    """Load (or take) the windows of ``config.data``, split them, and build the starting model.

    ``windows``: windows already loaded for ``config.data`` (the grid loads each dataset once)."""
    ws, split = split_of(config.data, windows) if windows is not None else load_split(config.data)
    parts = _parts(ws, split)
    log(f"data: {ws.source or 'windows'} {len(ws)} windows × {ws.x.shape[1]} × {ws.x.shape[2]}, "
        f"{len(ws.class_names)} classes; split {split.protocol}: train {len(parts.train)}, "
        f"val {len(parts.val)}, test {len(parts.test)}")
    model, variables, about_source = _starting_point(config, len(ws.class_names))
    return Prepared(ws, split, parts, model, variables, {"split_summary": split.summary, **about_source})


def train(config: RunConfig, workdir: str | Path, windows: WindowSet | None = None,
          options: FitOptions | None = None) -> dict:
    """Train one run of ``config`` in ``workdir`` (resuming it if it has checkpoints)."""
    p = prepare_run(config, windows)
    # The target's own standardisation statistics, from its training part only.
    result = fit(p.model, p.variables, p.parts, Standardizer.fit(p.parts.train.x), config, workdir, p.extra_meta,
                 options)
    result.update(windows=p.windows, split=p.split)
    return result


def train_on_parts(config: RunConfig, parts: Parts, workdir: str | Path, extra_meta: dict | None = None,
                   options: FitOptions | None = None) -> dict:
    """Train one run of ``config`` on parts split by the caller (a split no ``SplitConfig`` describes,
    such as a personal model's folds; ``extra_meta``, stored with every checkpoint, should say how)."""
    model, variables, about_source = _starting_point(config, len(parts.train.class_names))
    return fit(model, variables, parts, Standardizer.fit(parts.train.x), config, workdir,
               {**about_source, **(extra_meta or {})}, options)


def pretrain(config: RunConfig, workdir: str | Path, windows: WindowSet | None = None,
             options: FitOptions | None = None) -> dict:
    """A source-task run from random initialisation (the paper: WISDM, 40 epochs, K = 18)."""
    if config.transfer is not None:
        raise ConfigError("pretrain starts from random initialisation; a transfer belongs to finetune")
    return train(config, workdir, windows, options)


def finetune(config: RunConfig, workdir: str | Path, windows: WindowSet | None = None,
             options: FitOptions | None = None) -> dict:
    """A target-task run: re-headed from ``config.transfer``, or the no-pretraining baseline without one."""
    return train(config, workdir, windows, options)


def train_many(configs: list[RunConfig], workdirs: list[str | Path], windows: list[WindowSet | None] | None = None,
               options: FitOptions | None = None) -> list[dict]:
    """Train several runs, those of one model shape together in one program (``multi.fit_many``);
    each run's result as ``train`` gives it, in order (a run of a shape of its own is a program of one)."""
    from jazbat_jax.train import multi

    windows = windows or [None] * len(configs)
    specs, shapes = [], {}
    for k, (config, workdir, ws) in enumerate(zip(configs, workdirs, windows)):
        p = prepare_run(config, ws)
        specs.append((p, multi.RunSpec(p.model, p.variables, p.parts, Standardizer.fit(p.parts.train.x), config,
                                       workdir, p.extra_meta)))
        shapes.setdefault(multi.program_key(p.model, p.parts, config), []).append(k)
    results: list[dict | None] = [None] * len(configs)
    for members in shapes.values():
        outs = multi.fit_many([specs[k][1] for k in members], options)
        for k, out in zip(members, outs):
            out.update(windows=specs[k][0].windows, split=specs[k][0].split)
            results[k] = out
    return results
