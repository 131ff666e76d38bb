"""The paper's experiments on public data: the Table VI transfer grid (inputs × pretraining),
both split protocols, a classical baseline, and a report. See docs/experiments.md."""
from jazbat_jax.experiments.config import ConfigError, load_config
from jazbat_jax.experiments.grid import load_results, plan, run_grid

__all__ = ["ConfigError", "load_config", "load_results", "plan", "run_grid"]
