"""Render: a results folder's table (``experiments.collect``) → ``report.md`` and ``figures/``.

Every number in the report is read from a ``result.json`` (or a run's ``metrics.jsonl`` and test
predictions) in the results folder, and every table says the data, split, epochs and seeds it comes
from. The paper's numbers appear only in their own, labelled column. One module per section:

    settings     the head: jobs finished, invocations, settings, data
    paper_protocol  the paper's own split (random, step 16), every model against its control
    results      the grid's tables per split, what each number means, comparisons, the cost of leakage
    differences  where our numbers differ from the paper's; the target data's published anchor
    personal     Quiroz et al.'s own protocol (personal models)
    best         the best Jazbat-Net cell; the learning curves
    pretraining  the WISDM trunks
    complexity   parameters and MACs next to the paper's
    jobs         every finished job, and the missing ones
"""
from __future__ import annotations

from pathlib import Path

from jazbat_jax.experiments.collect import collect
from jazbat_jax.experiments.report.best import best_cell_section, curves_section
from jazbat_jax.experiments.report.complexity import _complexity_section
from jazbat_jax.experiments.report.differences import QUIROZ_ANCHOR, _differences_section
from jazbat_jax.experiments.report.jobs import jobs_section
from jazbat_jax.experiments.report.meaning import matched_runs
from jazbat_jax.experiments.report.paper_protocol import paper_protocol_section
from jazbat_jax.experiments.report.personal import _personal_section
from jazbat_jax.experiments.report.pretraining import pretraining_section
from jazbat_jax.experiments.report.results import results_section
from jazbat_jax.experiments.report.settings import header_section

__all__ = ["build_report", "matched_runs"]


def build_report(results: str | Path, cfg: dict | None = None, command: str | None = None) -> Path:
    """Write ``report.md`` and ``figures/`` into ``results``; return the report's path."""
    c = collect(results, cfg)
    fig_dir = c.results / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    anchor = (QUIROZ_ANCHOR if c.cfg["target"]["dataset"] == "quiroz"
              else "No published anchor for user-supplied SEECS-layout data.")
    out = [*header_section(c, command),
           *paper_protocol_section(c, fig_dir),
           *results_section(c, fig_dir),
           *_differences_section(c),
           "### Published anchor for the target data", "", anchor, "",
           *_personal_section(c.results, c.cfg, c.done, fig_dir),
           *best_cell_section(c, fig_dir),
           *curves_section(c, fig_dir),
           *pretraining_section(c, fig_dir),
           *(_complexity_section(c.cfg, c.rows(), c.results) if c.cfg["grid"]["enabled"] else []),
           *jobs_section(c)]
    path = c.results / "report.md"
    path.write_text("\n".join(out))
    return path
