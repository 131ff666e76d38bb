"""The one-way door to packages built on jazbat_jax (``conversion``): they register themselves as
entry points in their ``pyproject.toml``, and this package finds them without importing them by name.

Groups:
    jazbat.commands    ``register(subparsers)`` functions that add `jazbat` subcommands
    jazbat.profilers   modules with ``profile_models(models, out_dir, runs, warmup) -> Path`` (models:
                       "arch:input" names of fresh models, or checkpoint paths) and
                       ``render_markdown(report) -> str`` (the experiment report's latency profile;
                       `jazbat accuracy-cost` profiles its trained models with ``profile_models``)
    jazbat.architectures  model factories ``factory(num_classes=, window=, input_dim=) -> flax.linen.Module``
                       that `jazbat profile --models` and `jazbat accuracy-cost --archs` take by name
                       (``jazbat_jax.architectures``; docs/your-model.md)
"""
from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

COMMANDS = "jazbat.commands"
PROFILERS = "jazbat.profilers"
ARCHITECTURES = "jazbat.architectures"


def load_all(group: str) -> list[Any]:
    """Every entry point of ``group``, loaded, in name order."""
    return [ep.load() for ep in sorted(entry_points(group=group), key=lambda e: e.name)]


def named(group: str) -> dict[str, EntryPoint]:
    """The entry points of ``group`` by name, not loaded."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load_one(group: str, name: str) -> Any | None:
    """The entry point ``name`` of ``group``, or None when no installed package provides it."""
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    return found[0].load() if found else None
