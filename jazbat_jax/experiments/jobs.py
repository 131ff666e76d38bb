"""A job of the experiment pipeline: what is computed, named by that alone.

Every planner (the Table VI grid, the personal models, the accuracy-vs-complexity study) makes
``Job``s; the runner runs them, each in a folder of the results folder named by its id. The id is
readable (``quiroz-1d-watch-subject-f0-s0``) plus a hash of every setting of the job and of
``IDENTITY``, the version of this naming scheme, so a changed setting makes a new job instead of
reusing a stale one. The data are named by content (``data.fingerprint``: ``quiroz@3f2a...``), never
by the folder they lie in, so the same job has the same id on every machine and in every checkout.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from jazbat_jax.data.config import BUNDLED, DataConfig, SplitConfig, dataset_folder
from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.train.config import ModelConfig, RunConfig, TrainConfig

# Version 2: data named by a fingerprint of their files (version 1 named them by their folder).
IDENTITY = 2
FOLDERS = {"pretrain": "pretrain", "deep": "cells", "baseline": "baseline", "personal": "personal",
           "accuracy_cost": "runs"}
RESULT = "result.json"


class DamagedResult(ValueError):
    """A ``result.json`` that cannot be read (a disk fault, a hand edit): the job is not finished."""


@dataclasses.dataclass
class Job:
    kind: str  # pretrain | deep | baseline | personal | accuracy_cost
    name: str
    settings: dict  # labels for the report, plus the exact configuration ("run" or "data")

    @property
    def id(self) -> str:
        return f"{self.name}-{cfgmod.settings_hash({'identity': IDENTITY, 'settings': self.settings})}"

    @property
    def trunk(self) -> str | None:
        """The id of the pretrained trunk this job starts from (deep and personal jobs), if any."""
        return self.settings.get("pretrain_job")

    def folder(self, results: Path) -> Path:
        return Path(results) / FOLDERS[self.kind] / self.id

    def result(self, results: Path) -> dict | None:
        """The finished job's result; None while it is not finished; ``DamagedResult`` naming the file
        when the file is there but unreadable."""
        path = self.folder(results) / RESULT
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DamagedResult(f"{path} is damaged ({type(e).__name__}: {e})") from e

    def done(self, results: Path) -> bool:
        try:
            return self.result(results) is not None
        except DamagedResult:
            return False


# ---------------------------------------------------------------- data, named by content
def data_folder(cfg: dict, dataset: str) -> Path:
    """The folder this machine reads ``dataset`` from for the config's ``data_root``."""
    from jazbat_jax.data import bundled_sample_root, data_root

    root = cfg["data_root"]
    if dataset == "seecs":
        base = Path(cfg["target"]["root"]).expanduser()
    elif root == BUNDLED:
        base = bundled_sample_root()
    elif root == "auto":
        base = data_root()
    else:
        base = Path(root).expanduser()
    if not base.exists():
        raise cfgmod.ConfigError(f"data folder {base} does not exist")
    return dataset_folder(base, dataset)


def data_label(cfg: dict, dataset: str) -> str:
    """``dataset@fingerprint`` of the data the config reads (the folder is found again wherever it is);
    the config's ``data_labels`` when it pins them (a results folder's own, for its report)."""
    from jazbat_jax.data.fingerprint import label, register_root

    pinned = (cfg.get("data_labels") or {}).get(dataset)
    if pinned:
        return pinned
    folder = data_folder(cfg, dataset)
    register_root(folder)
    return label(dataset, folder)


def with_data_labels(cfg: dict) -> dict:
    """``cfg`` with ``data_labels`` computed from the data this machine reads for it."""
    unpinned = {**cfg, "data_labels": None}
    return {**cfg, "data_labels": {d: data_label(unpinned, d) for d in _datasets(cfg)}}


def results_data_labels(cfg: dict, results: Path) -> dict:
    """``cfg`` with the data labels a results folder recorded (its ``config.json``), when it has them:
    what a report of that folder plans with, whatever data this machine has."""
    path = Path(results) / "config.json"
    if cfg.get("data_labels") or not path.exists():
        return cfg
    try:
        recorded = json.loads(path.read_text()).get("data_labels")
    except (OSError, json.JSONDecodeError):
        return cfg
    return {**cfg, "data_labels": recorded} if recorded else cfg


def data_roots(cfg: dict) -> list[str]:
    """The folders where this machine keeps the config's data: what a worker searches for the labels."""
    return sorted({str(data_folder(cfg, d).resolve()) for d in _datasets(cfg)})


def _datasets(cfg: dict) -> list[str]:
    return ["wisdm", cfg["target"]["dataset"]] if cfg["target"]["dataset"] != "wisdm" else ["wisdm"]


# ---------------------------------------------------------------- the WISDM trunks
def pretrain_data(cfg: dict, device: str, input_kind: str) -> DataConfig:
    p, t = cfg["pretrain"], cfg["target"]
    return DataConfig(dataset="wisdm", root=data_label(cfg, "wisdm"), input_kind=input_kind, window=t["window"],
                      step=p["step"], device=device, activities=p["activities"], subjects=p[f"{device}_subjects"],
                      split=SplitConfig("subject", p["test_fraction"], p["val_fraction"], p["seed"]),
                      gravity=p["gravity"])


def pretrain_job(cfg: dict, device: str, input_kind: str, seed: int | None = None) -> Job:
    """A WISDM trunk; ``seed`` (initialisation and shuffling) defaults to ``pretrain.seed``, which also
    fixes the subject hold-out for every trunk."""
    p = cfg["pretrain"]
    seed = p["seed"] if seed is None else seed
    run = RunConfig(data=pretrain_data(cfg, device, input_kind),
                    model=ModelConfig("jazbat_net", None),  # K = C = 18 for WISDM
                    train=TrainConfig(epochs=p["epochs"], batch_size=p["batch_size"], learning_rate=p["learning_rate"],
                                      seed=seed, keep_last=1, patience=p["patience"]))
    settings = {"kind": "pretrain", "device": device, "input": input_kind, "data_root": run.data.root,
                "epochs": p["epochs"], "run": run.to_dict()}
    name = f"wisdm-{device}-{input_kind}" + (f"-s{seed}" if len(cfgmod.pretrain_seeds(cfg)) > 1 else "")
    return Job("pretrain", name, settings)
