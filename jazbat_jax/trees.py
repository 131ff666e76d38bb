"""Generic helpers for nested parameter trees, addressed by '/'-joined paths (``module_1/b1_1x1/kernel``)."""
from __future__ import annotations

from typing import Callable, Mapping

import jax
import numpy as np
from flax import traverse_util


def flatten(tree: Mapping) -> dict[str, jax.Array]:
    return traverse_util.flatten_dict(dict(tree), sep="/") if tree else {}


def unflatten(flat: Mapping[str, jax.Array]) -> dict:
    return traverse_util.unflatten_dict(dict(flat), sep="/")


def shape_of(v) -> tuple[int, ...]:
    return tuple(v.shape) if hasattr(v, "shape") else tuple(np.shape(v))


def tree_mismatches(want: Mapping, have: Mapping, skip: Callable[[str], bool] = lambda k: False) -> str:
    """Every missing / unexpected / wrong-shape path between two flat trees, as one line ('' if they fit)."""
    missing = sorted(k for k in want if not skip(k) and k not in have)
    unexpected = sorted(k for k in have if not skip(k) and k not in want)
    wrong_shape = sorted(
        f"{k} {shape_of(have[k])} vs {shape_of(want[k])} expected"
        for k in want
        if not skip(k) and k in have and shape_of(have[k]) != shape_of(want[k])
    )
    parts = [f"{title}: {', '.join(items)}" for title, items in
             (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)) if items]
    return "; ".join(parts)
