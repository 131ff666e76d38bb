"""Collect: every finished job of a grid → one table, the single input of the report and its statistics.

``collect(results, cfg)`` reads the ``result.json`` of each planned job that finished and returns a
``Collected``: the plan, the results by job id, the invocations, and ``table``, a pandas DataFrame with
one row per finished grid cell (a deep run or a forest, true or permuted labels, emotion or identity
probe) and the fields the report's tables read. The report's sections take a ``Collected``; tests can
assert on the table without reading Markdown.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments import grid
from jazbat_jax.experiments.jobs import Job
from jazbat_jax.files import read_json_lines


def wall_cell(result: dict) -> str:
    """A job's wall-time cell: '812 s', or for a resumed run '812 s + 300 s before resuming at epoch 6'."""
    text = f"{result.get('wall_s') or 0:.0f} s"
    if result.get("resumed_at_epoch"):
        text += f" + {result['earlier_train_s']:.0f} s before resuming at epoch {result['resumed_at_epoch']}"
    return text


def job_row(result: dict) -> dict:
    """A grid cell's row of the table: what it is (input, model, split, fold, seed, labels) and its numbers."""
    s = result["settings"]
    data = s["run"]["data"] if "run" in s else s["data"]
    return {
        "kind": result["kind"], "job": result["job"], "input": s["input"],
        "labels": s.get("labels", "true"), "predict": s.get("predict", "emotion"), "step": data["step"],
        "chance": result.get("chance"),
        "pretraining": s.get("pretraining", "rf"), "protocol": s["split"]["protocol"], "fold": s["split"]["fold"],
        "seed": s["seed"], "acc": result["report"]["accuracy"], "f1": result["report"]["macro"]["f1"],
        "report": result["report"], "wall_s": result.get("wall_s"), "n_train": result.get("n_train"),
        "n_test": result.get("n_test"), "test_subjects": result.get("test_subjects"),
        "checkpoint_epoch": result.get("checkpoint_epoch"), "epochs": s.get("epochs"),
        "stopped_epoch": result.get("stopped_epoch"), "wall": wall_cell(result),
    }


COLUMNS = ["kind", "job", "input", "labels", "predict", "step", "chance", "pretraining", "protocol", "fold", "seed",
           "acc", "f1", "report", "wall_s", "n_train", "n_test", "test_subjects", "checkpoint_epoch", "epochs",
           "stopped_epoch", "wall"]


@dataclasses.dataclass
class Collected:
    results: Path
    cfg: dict
    jobs: list[Job]
    done: dict[str, dict]  # job id -> its result.json, in plan order
    invocations: list[dict]
    table: pd.DataFrame  # one row per finished grid cell (``job_row``), in plan order
    # what the report's sections derive from these results and share (``report.results.headline``): computed once
    cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def missing(self) -> list[Job]:
        return [j for j in self.jobs if j.id not in self.done]

    @property
    def pretrain(self) -> list[dict]:
        return [r for r in self.done.values() if r["kind"] == "pretrain"]

    def rows(self, **where) -> list[dict]:
        """The table's rows (dicts) whose columns equal ``where``."""
        t = self.table
        for column, value in where.items():
            t = t[t[column] == value]
        return t.to_dict("records")


def collect(results: str | Path, cfg: dict | None = None) -> Collected:
    """The finished jobs of ``cfg``'s plan in ``results`` (``cfg``: default the folder's ``config.json``)."""
    results = Path(results)
    if cfg is None:
        p = results / "config.json"
        if not p.exists():
            raise FileNotFoundError(f"{results} has no config.json: run the grid first (or pass a config)")
        cfg = cfgmod.load_config(None, p)  # on top of its profile: a folder from an older version lacks newer keys
    jobs = grid.plan(cfg)
    done = {j.id: r for j in jobs if (r := j.result(results)) is not None}
    invocations = read_json_lines(results / "invocations.jsonl")
    rows = [job_row(r) for r in done.values() if r["kind"] in ("deep", "baseline")]
    return Collected(results, cfg, jobs, done, invocations, pd.DataFrame(rows, columns=COLUMNS, dtype=object))
