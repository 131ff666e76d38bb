"""Run the experiment grid: pretrained trunks, fine-tune / scratch cells, baseline cells.

Results folder layout::

    config.json                 the effective config of the latest invocation
    invocations.jsonl           one line per invocation: time, machine, profile, cells run / skipped, wall time
    pretrain/<id>/run/          a ``loop.fit`` run folder (checkpoints, metrics.jsonl, final_eval.json)
    pretrain/<id>/result.json   written last: settings, data used (subjects, activities), test report, wall time
    cells/<id>/run/             the same for a fine-tune (or no-pretraining) cell
    cells/<id>/result.json
    baseline/<id>/result.json

``<id>`` is readable (``quiroz-1d-watch-subject-f0-s0``) plus a hash of every setting of the
job, so a changed setting makes a new job instead of reusing a stale one. A job whose
``result.json`` exists is skipped; a job killed mid-training resumes from its newest
checkpoint (``fit(resume=True)``). A pretrained trunk is trained once per (device, input) and
reused by every cell that needs it.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.machine import machine_info

DEVICES = {"watch": "watch", "phone": "phone"}


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    tmp.replace(path)  # atomic: a killed run never leaves a half-written result


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o)}")


def resolve_data_root(cfg: dict) -> Path | None:
    """'bundled' → the package's sample; 'auto' → None (the loaders' own search); else the path."""
    from jazbat_jax.data import bundled_sample_root

    root = cfg["data_root"]
    if root == "bundled":
        return bundled_sample_root()
    if root == "auto":
        return None
    p = Path(root).expanduser()
    if not p.exists():
        raise cfgmod.ConfigError(f"data_root {p} does not exist")
    return p


def data_root_label(cfg: dict) -> str:
    """What names the data in a job's settings: 'bundled' (location-independent) or the folder."""
    from jazbat_jax.data import data_root

    if cfg["data_root"] == "bundled":
        return "bundled"
    root = resolve_data_root(cfg)
    return str(root if root is not None else data_root())


# ---------------------------------------------------------------- jobs
@dataclasses.dataclass
class Job:
    kind: str  # pretrain | deep | baseline
    name: str
    settings: dict

    @property
    def id(self) -> str:
        return f"{self.name}-{cfgmod.settings_hash(self.settings)}"

    def folder(self, results: Path) -> Path:
        sub = {"pretrain": "pretrain", "deep": "cells", "baseline": "baseline"}[self.kind]
        return results / sub / self.id

    def done(self, results: Path) -> bool:
        return (self.folder(results) / "result.json").exists()


def pretrain_job(cfg: dict, device: str, input_kind: str) -> Job:
    p, t = cfg["pretrain"], cfg["target"]
    settings = {
        "kind": "pretrain", "dataset": "wisdm2019", "device": device, "input": input_kind,
        "data_root": data_root_label(cfg), "window": t["window"], "step": p["step"],
        "activities": p["activities"], "subjects": p[f"{device}_subjects"],
        "epochs": p["epochs"], "batch_size": p["batch_size"], "learning_rate": p["learning_rate"],
        "split": {"protocol": "subject", "test_fraction": p["test_fraction"], "val_fraction": p["val_fraction"],
                  "seed": p["seed"]},
        "seed": p["seed"],
    }
    return Job("pretrain", f"wisdm-{device}-{input_kind}", settings)


def _target_settings(cfg: dict) -> dict:
    t = cfg["target"]
    root = t["root"] if t["dataset"] == "seecs" else data_root_label(cfg)
    return {"dataset": t["dataset"], "root": str(root), "window": t["window"], "step": t["step"],
            "participants": t["participants"]}


def _split_settings(cfg: dict, protocol: str, fold: int) -> dict:
    g = cfg["grid"]
    return {"protocol": protocol, "n_folds": g["n_folds"], "fold": fold, "seed": g["split_seed"],
            "val_fraction": cfg["finetune"]["val_fraction"]}


def deep_job(cfg: dict, input_kind: str, pretraining: str, protocol: str, fold: int, seed: int) -> Job:
    f = cfg["finetune"]
    settings = {
        "kind": "deep", "target": _target_settings(cfg), "input": input_kind, "pretraining": pretraining,
        "pretrain_job": pretrain_job(cfg, pretraining, input_kind).id if pretraining != "none" else None,
        "split": _split_settings(cfg, protocol, fold), "seed": seed,
        "epochs": f["epochs"], "batch_size": f["batch_size"], "learning_rate": f["learning_rate"],
    }
    name = f"{cfg['target']['dataset']}-{input_kind}-{pretraining}-{protocol}-f{fold}-s{seed}"
    return Job("deep", name, settings)


def baseline_job(cfg: dict, input_kind: str, protocol: str, fold: int, seed: int) -> Job:
    b = cfg["baseline"]
    settings = {
        "kind": "baseline", "target": _target_settings(cfg), "input": input_kind,
        "split": _split_settings(cfg, protocol, fold), "seed": seed,
        "model": "random_forest", "n_estimators": b["n_estimators"], "max_depth": b["max_depth"],
    }
    name = f"{cfg['target']['dataset']}-{input_kind}-rf-{protocol}-f{fold}-s{seed}"
    return Job("baseline", name, settings)


def plan(cfg: dict) -> list[Job]:
    """Every job of the grid, pretrainings first (cells depend on them)."""
    g = cfg["grid"]
    jobs = [pretrain_job(cfg, pre, inp) for inp in g["inputs"] for pre in g["pretraining"] if pre != "none"]
    for inp in g["inputs"]:
        for protocol in g["protocols"]:
            for fold in cfgmod.folds(cfg):
                for seed in g["seeds"]:
                    if cfg["baseline"]["enabled"]:
                        jobs.append(baseline_job(cfg, inp, protocol, fold, seed))
                    jobs += [deep_job(cfg, inp, pre, protocol, fold, seed) for pre in g["pretraining"]]
    return jobs


# ---------------------------------------------------------------- data
class DataCache:
    """Loads each dataset / input kind once per invocation."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self._cache: dict[tuple, Any] = {}

    def target(self, input_kind: str):
        from jazbat_jax.data import load_quiroz, load_seecs

        key = ("target", input_kind)
        if key not in self._cache:
            t = self.cfg["target"]
            if t["dataset"] == "quiroz":
                ws = load_quiroz(resolve_data_root(self.cfg), input_kind, window=t["window"], step=t["step"])
            else:
                ws = load_seecs(t["root"], input_kind, window=t["window"], step=t["step"])
            if t["participants"]:
                keep = np.isin(ws.subject, np.asarray(t["participants"]))
                if not keep.any():
                    raise cfgmod.ConfigError(f"none of target.participants {t['participants']} is in the data "
                                             f"(participants present: {np.unique(ws.subject).tolist()})")
                ws = ws.subset(np.flatnonzero(keep))
            self._cache[key] = ws
        return self._cache[key]

    def wisdm(self, device: str, input_kind: str):
        from jazbat_jax.data import load_wisdm

        key = ("wisdm", device, input_kind)
        if key not in self._cache:
            p, t = self.cfg["pretrain"], self.cfg["target"]
            self._cache[key] = load_wisdm(resolve_data_root(self.cfg), device=device, input_kind=input_kind,
                                          window=t["window"], step=p["step"], activities=p["activities"],
                                          subjects=p[f"{device}_subjects"])
        return self._cache[key]


def _split(ws, s: dict):
    from jazbat_jax.data import split_windows

    return split_windows(ws, s["protocol"], val_fraction=s["val_fraction"], seed=s["seed"],
                         n_folds=s["n_folds"], fold=s["fold"])


def _windows_per_class(ws) -> dict[str, int]:
    return {c: int((ws.y == i).sum()) for i, c in enumerate(ws.class_names)}


# ---------------------------------------------------------------- runners
def _train_config(settings: dict, learning_rate: float):
    from jazbat_jax.train.loop import TrainConfig

    return TrainConfig(epochs=settings["epochs"], batch_size=settings["batch_size"], learning_rate=learning_rate,
                       seed=settings["seed"], keep_last=1)


def run_pretrain(job: Job, results: Path, data: DataCache, progress: bool) -> dict:
    from jazbat_jax.data import Standardizer, split_windows
    from jazbat_jax.model import init_variables, jazbat_net
    from jazbat_jax.train.loop import fit

    s = job.settings
    ws = data.wisdm(s["device"], s["input"])
    sp = s["split"]
    split = split_windows(ws, "subject", test_fraction=sp["test_fraction"], val_fraction=sp["val_fraction"],
                          seed=sp["seed"])
    train, val, test = ws.subset(split.train), ws.subset(split.val), ws.subset(split.test)
    c = len(ws.class_names)
    model = jazbat_net(s["input"], c, c, window=s["window"])  # K = C = 18 for WISDM (spec §7 #1)
    t0 = time.perf_counter()
    out = fit(model, init_variables(model, s["seed"]), train, val, test, Standardizer.fit(train.x),
              _train_config(s, s["learning_rate"]), job.folder(results) / "run", data_config=s,
              extra_meta={"split_summary": split.summary}, resume=True, progress=progress, make_plots=False)
    result = {
        "job": job.id, "kind": job.kind, "settings": s,
        "data_used": {"subjects": np.unique(ws.subject).tolist(), "activities": list(ws.class_names),
                      "windows": len(ws), "windows_per_class": _windows_per_class(ws),
                      "split": {k: split.summary[k]["subjects"] for k in ("train", "val", "test")}},
        "n_train": len(train), "n_val": len(val), "n_test": len(test),
        "report": out["final"]["report"], "checkpoint_epoch": out["final"]["checkpoint_epoch"],
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    return result


def run_deep(job: Job, results: Path, data: DataCache, progress: bool) -> dict:
    from jazbat_jax.data import Standardizer
    from jazbat_jax.model import init_variables, jazbat_net
    from jazbat_jax.train.checkpoint import load_checkpoint
    from jazbat_jax.train.loop import fit
    from jazbat_jax.train.transfer import reheaded_variables, transfer_model

    s = job.settings
    ws = data.target(s["input"])
    split = _split(ws, s["split"])
    train, val, test = ws.subset(split.train), ws.subset(split.val), ws.subset(split.test)
    c = len(ws.class_names)
    if s["pretraining"] == "none":
        model = jazbat_net(s["input"], c, c, window=ws.x.shape[1])  # the paper's scratch model: K = C
        variables = init_variables(model, s["seed"])
    else:
        src = results / "pretrain" / s["pretrain_job"] / "run"
        src_model, src_vars, _ = load_checkpoint(src, prefer="best")
        model = transfer_model(src_model, c)  # keep K = 18, new head (the paper's transfer)
        variables = reheaded_variables(src_vars, model, s["seed"])
    t0 = time.perf_counter()
    out = fit(model, variables, train, val, test, Standardizer.fit(train.x), _train_config(s, s["learning_rate"]),
              job.folder(results) / "run", data_config=s, extra_meta={"split_summary": split.summary},
              resume=True, progress=progress, make_plots=False)
    return {
        "job": job.id, "kind": job.kind, "settings": s,
        "n_train": len(train), "n_val": len(val), "n_test": len(test),
        "test_subjects": split.summary["test"]["subjects"],
        "report": out["final"]["report"], "checkpoint_epoch": out["final"]["checkpoint_epoch"],
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def run_baseline(job: Job, results: Path, data: DataCache, progress: bool) -> dict:
    from jazbat_jax.experiments import baseline
    from jazbat_jax.train.metrics import classification_report

    s = job.settings
    ws = data.target(s["input"])
    split = _split(ws, s["split"])
    # The forest needs no validation set (no early stopping): it trains on train + val.
    fit_idx = np.concatenate([split.train, split.val])
    t0 = time.perf_counter()
    pred, model_info = baseline.fit_predict(ws.x[fit_idx], ws.y[fit_idx], ws.x[split.test], seed=s["seed"],
                                            n_estimators=s["n_estimators"], max_depth=s["max_depth"])
    return {
        "job": job.id, "kind": job.kind, "settings": s, "model": model_info,
        "n_train": int(len(fit_idx)), "n_val": 0, "n_test": int(len(split.test)),
        "test_subjects": split.summary["test"]["subjects"],
        "report": classification_report(ws.y[split.test], pred, list(ws.class_names)),
        "wall_s": round(time.perf_counter() - t0, 2),
    }


RUNNERS: dict[str, Callable] = {"pretrain": run_pretrain, "deep": run_deep, "baseline": run_baseline}


def enable_compilation_cache(results: Path) -> None:
    """Every cell compiles the same train / eval steps; a persistent cache makes that once."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(results / ".jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def run_grid(cfg: dict, results: str | Path, progress: bool = True, log: Callable[[str], None] = print,
             stop_after: int | None = None, command: str | None = None, compilation_cache: bool = True) -> dict:
    """Run every job of ``cfg`` not yet finished in ``results``; return a summary of this invocation.

    ``stop_after``: stop after that many jobs were run (not skipped); used by the tests.
    ``compilation_cache``: set JAX's persistent cache to ``results/.jax_cache`` (process-wide
    setting: the tests turn it off so that it does not leak into other tests).
    """
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    if compilation_cache:
        enable_compilation_cache(results)
    _write_json(results / "config.json", cfg)
    jobs = plan(cfg)
    todo = [j for j in jobs if not j.done(results)]
    log(f"experiments ({cfg['profile']}): {len(jobs)} jobs, {len(jobs) - len(todo)} already done, "
        f"{len(todo)} to run; results in {results}")
    data = DataCache(cfg)
    t_start = time.perf_counter()
    ran, started = [], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    bar = tqdm(todo, desc="grid", unit="job", disable=not progress, dynamic_ncols=True)
    for job in bar:
        bar.set_postfix_str(job.name)
        log(f"\n=== {job.kind} {job.id}")
        t0 = time.perf_counter()
        resumed = (job.folder(results) / "run" / "checkpoints").exists()
        result = RUNNERS[job.kind](job, results, data, progress=False)
        result.update(total_wall_s_this_invocation=round(time.perf_counter() - t0, 2), resumed=resumed,
                      finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        _write_json(job.folder(results) / "result.json", result)
        rep = result["report"]
        log(f"    accuracy {rep['accuracy']:.4f}  macro-F1 {rep['macro']['f1']:.4f}  ({result['wall_s']:.1f} s)")
        ran.append(job.id)
        if stop_after is not None and len(ran) >= stop_after:
            break
    bar.close()
    if stop_after is None or len(ran) < stop_after:  # every job done: profile the exported models once
        run_latency_profile(cfg, results)
    summary = {"started": started, "command": command, "profile": cfg["profile"], "machine": machine_info(),
               "jobs": len(jobs), "skipped_done": len(jobs) - len(todo), "ran": ran,
               "wall_s": round(time.perf_counter() - t_start, 2)}
    with open(results / "invocations.jsonl", "a") as f:
        f.write(json.dumps(summary) + "\n")
    return summary


def load_results(results: str | Path, cfg: dict | None = None) -> list[dict]:
    """Finished results; with ``cfg``, only the jobs of that config's grid (in plan order)."""
    results = Path(results)
    if cfg is not None:
        out = []
        for job in plan(cfg):
            p = job.folder(results) / "result.json"
            if p.exists():
                out.append(json.loads(p.read_text()))
        return out
    return [json.loads(p.read_text()) for p in sorted(results.glob("*/*/result.json"))]


def run_latency_profile(cfg: dict, results: Path) -> Path | None:
    """Export the configured models (fresh, perturbed weights: a trained model's file sizes) and time
    them with the paper's protocol; cached in RESULTS/profile/ like a finished job."""
    lat = cfg.get("latency", {})
    out = Path(results) / "profile"
    if not lat.get("enabled") or (out / "profile.json").exists():
        return out / "profile.json" if (out / "profile.json").exists() else None
    from conversion import profile
    from conversion.common import fresh_source, perturbed

    sources = [perturbed(fresh_source(*spec.split(":"))) for spec in lat["models"]]
    report = profile.build(sources, batches=(1,), runs=lat["runs"], warmup=lat["warmup"])
    profile.write(report, out)
    return out / "profile.json"
