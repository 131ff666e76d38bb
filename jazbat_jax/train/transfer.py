"""Transfer learning by parameter-tree surgery (the heart of the paper).

Pretrain on WISDM (C = 18, reduction K = 18), then build the target model with a new head,
initialise it from a seed, and copy every pretrained parameter and BatchNorm statistic into it
except the ones named in ``dont_load`` (the head; optionally the reduction conv when K is
re-created as K = C). The merge fails loudly, listing every parameter that is missing,
unexpected or of the wrong shape, as big_vision's ``merge_params`` does: never a silent
partial load. The optimizer state is always re-created for the target (``create_train_state``).
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from jazbat_jax.model import init_variables

# Layers that are new in the target model; everything else is the pretrained trunk.
HEAD = ("head",)
FREEZE_MODES = ("none", "trunk", "epochs")


class ParameterMismatchError(ValueError):
    """Raised when a loaded tree does not fit the target tree; the message lists every problem."""


def flatten(tree: Mapping) -> dict[str, jax.Array]:
    return traverse_util.flatten_dict(dict(tree), sep="/") if tree else {}


def unflatten(flat: Mapping[str, jax.Array]) -> dict:
    return traverse_util.unflatten_dict(dict(flat), sep="/")


def _shape(v) -> tuple[int, ...]:
    return tuple(v.shape) if hasattr(v, "shape") else tuple(np.shape(v))


def tree_mismatches(want: Mapping, have: Mapping, skip=lambda k: False) -> str:
    """Every missing / unexpected / wrong-shape path between two flat trees, as text ('' if they fit)."""
    missing = sorted(k for k in want if not skip(k) and k not in have)
    unexpected = sorted(k for k in have if not skip(k) and k not in want)
    wrong_shape = sorted(
        f"{k}: checkpoint {_shape(have[k])} vs model {_shape(want[k])}"
        for k in want
        if not skip(k) and k in have and _shape(have[k]) != _shape(want[k])
    )
    lines = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if items:
            lines.append(f"  {title} ({len(items)}):")
            lines += [f"    {item}" for item in items]
    return "\n".join(lines)


def merge_params(init: Mapping, loaded: Mapping, dont_load: Iterable[str] = (), what: str = "params") -> dict:
    """``init`` with every leaf replaced by ``loaded``'s, except paths matching a ``dont_load`` regex.

    Raises ``ParameterMismatchError`` listing all parameters that are missing from ``loaded``,
    unexpected in ``loaded`` (present there, absent in ``init`` and not in ``dont_load``), or of
    the wrong shape. Paths look like ``module_1/b1_1x1/kernel``.
    """
    patterns = [re.compile(p) for p in dont_load]
    skip = lambda k: any(p.fullmatch(k) for p in patterns)
    want, have = flatten(init), flatten(loaded)
    problems = tree_mismatches(want, have, skip)
    if problems:
        raise ParameterMismatchError(
            f"cannot load {what}: the loaded tree does not fit the model.\n{problems}\n"
            f"  (not loaded on purpose: {list(dont_load) or 'nothing'})"
        )
    merged = {k: (v if skip(k) else jnp.asarray(have[k], jnp.result_type(v))) for k, v in want.items()}
    return unflatten(merged)


def transfer_model(source: nn.Module, num_classes: int, recreate_reduce: bool = False) -> nn.Module:
    """The target model: the source's configuration with a ``num_classes`` head.
    The reduction width K stays the source's (the paper: K = 18 kept, Dense 18→C) unless
    ``recreate_reduce`` makes it K = C (a new, randomly initialised reduction conv)."""
    updates = {"num_classes": num_classes}
    if recreate_reduce:
        updates["reduce_filters"] = num_classes
    return source.clone(**updates)


def new_layer_names(recreate_reduce: bool) -> tuple[str, ...]:
    return HEAD + (("reduce",) if recreate_reduce else ())


def reheaded_variables(source_variables: Mapping, target: nn.Module, seed: int = 0, recreate_reduce: bool = False) -> dict:
    """Target variables: pretrained trunk parameters and BatchNorm statistics, a freshly
    initialised head (and reduction conv if ``recreate_reduce``)."""
    init = init_variables(target, seed)
    dont_load = [f"{name}/.*" for name in new_layer_names(recreate_reduce)]
    out = {"params": merge_params(init["params"], source_variables["params"], dont_load, "params")}
    if "batch_stats" in init or "batch_stats" in source_variables:
        out["batch_stats"] = merge_params(
            init.get("batch_stats", {}), source_variables.get("batch_stats", {}), dont_load, "batch_stats"
        )
    return out


def param_labels(params: Mapping, new_layers: Iterable[str] = HEAD) -> dict:
    """A tree like ``params`` with ``'new'`` under the new layers and ``'trunk'`` elsewhere."""
    new_layers = set(new_layers)
    return {name: jax.tree.map(lambda _: "new" if name in new_layers else "trunk", sub) for name, sub in params.items()}


def transfer_optimizer(
    tx: optax.GradientTransformation,
    params: Mapping,
    freeze: str = "none",
    freeze_steps: int = 0,
    new_layers: Iterable[str] = HEAD,
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
    labels = param_labels(params, new_layers)
    if freeze == "trunk":
        return optax.multi_transform({"new": tx, "trunk": optax.set_to_zero()}, labels)
    if freeze == "epochs":
        if freeze_steps <= 0:
            raise ValueError("freeze='epochs' needs freeze_steps > 0 (freeze epochs × steps per epoch)")
        gate = optax.scale_by_schedule(lambda count: (count >= freeze_steps).astype(jnp.float32))
        return optax.multi_transform({"new": tx, "trunk": optax.chain(tx, gate)}, labels)
    raise ValueError(f"unknown freeze mode {freeze!r}; choose one of {FREEZE_MODES}")
