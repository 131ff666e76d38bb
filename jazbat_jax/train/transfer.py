"""Transfer learning by parameter-tree surgery (the heart of the paper).

Pretrain on WISDM (C = 18, reduction K = 18), then build the target model with a new head,
initialise it from a seed, and copy every pretrained parameter and BatchNorm statistic into it
except the ones named in ``dont_load`` (the head; optionally the reduction conv when K is
re-created as K = C). The merge fails loudly, listing every parameter that is missing,
unexpected or of the wrong shape, as big_vision's ``merge_params`` does: never a silent
partial load. The optimizer state is always re-created for the target (``create_train_state``).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Mapping

import flax.linen as nn
import jax.numpy as jnp
import optax

from jazbat_jax.model import init_variables
from jazbat_jax.trees import flatten, tree_mismatches, unflatten

FREEZE_MODES = ("none", "trunk", "epochs")
HEAD = ("head/.*",)  # the paper's transfer: only the classification head is new


class ParameterMismatchError(ValueError):
    """Raised when a loaded tree does not fit the target tree; the message lists every problem."""


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """What a fine-tuning run takes from a pretrained checkpoint, in the style of big_vision's ``model_load``.

    ``dont_load`` is a list of regular expressions over parameter paths (``head/kernel``,
    ``module_1/b1_1x1/bias``; BatchNorm statistics use the same paths). Matching parameters are
    freshly initialised instead of loaded: they are the *new* layers, the only ones trained while
    the trunk is frozen. One addressing scheme for both.
    """

    source: str  # pretrained run folder or checkpoint
    checkpoint: str = "best"  # best | last: which checkpoint of the source run
    dont_load: tuple[str, ...] = HEAD
    freeze: str = "none"  # none (the paper: all layers) | trunk (only new layers) | epochs (trunk frozen first)
    freeze_epochs: int = 0

    def __post_init__(self):
        object.__setattr__(self, "dont_load", tuple(self.dont_load))
        if self.checkpoint not in ("best", "last"):
            raise ValueError(f"transfer checkpoint must be 'best' or 'last', got {self.checkpoint!r}")
        if self.freeze not in FREEZE_MODES:
            raise ValueError(f"freeze must be one of {FREEZE_MODES}, got {self.freeze!r}")
        if (self.freeze == "epochs") != (self.freeze_epochs > 0):
            raise ValueError("freeze 'epochs' needs freeze_epochs > 0, and freeze_epochs needs freeze 'epochs'")
        for p in self.dont_load:
            re.compile(p)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "dont_load": list(self.dont_load)}


def path_matcher(patterns: Iterable[str]):
    compiled = [re.compile(p) for p in patterns]
    return lambda path: any(p.fullmatch(path) for p in compiled)


def merge_params(init: Mapping, loaded: Mapping, dont_load: Iterable[str] = (), what: str = "params") -> dict:
    """``init`` with every leaf replaced by ``loaded``'s, except paths matching a ``dont_load`` regex.

    Raises ``ParameterMismatchError`` listing all parameters that are missing from ``loaded``,
    unexpected in ``loaded`` (present there, absent in ``init`` and not in ``dont_load``), or of
    the wrong shape: never a silent partial load.
    """
    dont_load = list(dont_load)
    skip = path_matcher(dont_load)
    want, have = flatten(init), flatten(loaded)
    problems = tree_mismatches(want, have, skip)
    if problems:
        raise ParameterMismatchError(f"cannot load {what}: the pretrained tree does not fit the model ({problems}; "
                                     f"not loaded on purpose: {dont_load or 'nothing'})")
    merged = {k: (v if skip(k) else jnp.asarray(have[k], jnp.result_type(v))) for k, v in want.items()}
    return unflatten(merged)


def transfer_model(source: nn.Module, num_classes: int, reduce_filters: int | None = None) -> nn.Module:
    """The target model: the source's configuration with a ``num_classes`` head. The reduction
    width K stays the source's (the paper: K = 18 kept, Dense 18→C) unless ``reduce_filters`` is
    given (then the reduction conv must be in ``dont_load``: it changes shape)."""
    updates = {"num_classes": num_classes}
    if reduce_filters is not None:
        updates["reduce_filters"] = reduce_filters
    return source.clone(**updates)


def reheaded_variables(source_variables: Mapping, target: nn.Module, seed: int = 0,
                       dont_load: Iterable[str] = HEAD) -> dict:
    """Target variables: the pretrained parameters and BatchNorm statistics, except those matching
    ``dont_load``, which are freshly initialised from ``seed``."""
    init = init_variables(target, seed)
    out = {"params": merge_params(init["params"], source_variables["params"], dont_load, "params")}
    if "batch_stats" in init or "batch_stats" in source_variables:
        out["batch_stats"] = merge_params(
            init.get("batch_stats", {}), source_variables.get("batch_stats", {}), dont_load, "batch_stats"
        )
    return out


def param_labels(params: Mapping, dont_load: Iterable[str] = HEAD) -> dict:
    """A tree like ``params`` with ``'new'`` at paths matching ``dont_load`` and ``'trunk'`` elsewhere."""
    is_new = path_matcher(dont_load)
    return unflatten({k: "new" if is_new(k) else "trunk" for k in flatten(params)})


def transfer_optimizer(
    tx: optax.GradientTransformation,
    params: Mapping,
    freeze: str = "none",
    freeze_steps: int = 0,
    dont_load: Iterable[str] = HEAD,
) -> optax.GradientTransformation:
    """The fine-tuning optimizer.

    freeze='none':   train all layers (the paper).
    freeze='trunk':  only the new layers learn; the trunk's updates are zero for the whole run.
    freeze='epochs': the trunk is frozen for the first ``freeze_steps`` optimizer steps, then
                     trains with everything else (its Adam moments accumulate while frozen, so it
                     restarts with warmed-up statistics rather than a cold start).
    BatchNorm running statistics are not parameters: they keep updating in train mode.
    """
    if freeze == "none":
        return tx
    labels = param_labels(params, dont_load)
    if freeze == "trunk":
        return optax.multi_transform({"new": tx, "trunk": optax.set_to_zero()}, labels)
    if freeze == "epochs":
        if freeze_steps <= 0:
            raise ValueError("freeze='epochs' needs freeze_steps > 0 (freeze epochs × steps per epoch)")
        gate = optax.scale_by_schedule(lambda count: (count >= freeze_steps).astype(jnp.float32))
        return optax.multi_transform({"new": tx, "trunk": optax.chain(tx, gate)}, labels)
    raise ValueError(f"unknown freeze mode {freeze!r}; choose one of {FREEZE_MODES}")
