"""Run the experiment grid: pretrained trunks, fine-tune / scratch cells, baseline cells.

Results folder layout::

    config.json                 the effective config of the latest invocation
    invocations.jsonl           one line per invocation: time, machine, profile, cells run / skipped, wall time
    pretrain/<id>/run/          a run folder of ``trainer.pretrain``, like `jazbat pretrain` writes (checkpoints, ...)
    pretrain/<id>/result.json   written last: settings, data used (subjects, activities), test report, wall time
    cells/<id>/run/             the same for a fine-tune (or no-pretraining) cell
    cells/<id>/result.json
    baseline/<id>/result.json
    personal/<id>/result.json   personal models (one job per input, model, split, labels; see personal.py),
    personal/<id>/runs/         with ``test_predictions.npz``; a deep job's run folder per participant and fold

``<id>`` is readable (``quiroz-1d-watch-subject-f0-s0``) plus a hash of every setting of the
job, so a changed setting makes a new job instead of reusing a stale one. A job whose
``result.json`` exists is skipped; a job killed mid-training resumes from its newest
checkpoint. A pretrained trunk is trained once per (device, input) and
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

from jazbat_jax.data.config import BUNDLED, DataConfig, SplitConfig, load_windows, split_of
from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments import personal
from jazbat_jax.experiments.workers import run_workers
from jazbat_jax.files import write_json
from jazbat_jax.machine import load_average, machine_info
from jazbat_jax.train.config import ModelConfig, RunConfig, TrainConfig
from jazbat_jax.train.transfer import TransferConfig


def data_root_label(cfg: dict) -> str:
    """What names the data in a job's settings: 'bundled' (location-independent) or the folder."""
    from jazbat_jax.data import data_root

    root = cfg["data_root"]
    if root == BUNDLED:
        return BUNDLED
    if root == "auto":
        return str(data_root())
    p = Path(root).expanduser()
    if not p.exists():
        raise cfgmod.ConfigError(f"data_root {p} does not exist")
    return str(p)


# ---------------------------------------------------------------- jobs
@dataclasses.dataclass
class Job:
    kind: str  # pretrain | deep | baseline | personal
    name: str
    settings: dict  # labels for the report, plus the exact configuration ("run" or "data")

    @property
    def id(self) -> str:
        return f"{self.name}-{cfgmod.settings_hash(self.settings)}"

    def folder(self, results: Path) -> Path:
        sub = {"pretrain": "pretrain", "deep": "cells", "baseline": "baseline", "personal": "personal"}[self.kind]
        return results / sub / self.id

    def done(self, results: Path) -> bool:
        return (self.folder(results) / "result.json").exists()


def pretrain_data(cfg: dict, device: str, input_kind: str) -> DataConfig:
    p, t = cfg["pretrain"], cfg["target"]
    return DataConfig(dataset="wisdm", root=data_root_label(cfg), input_kind=input_kind, window=t["window"],
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


def trunk_seed(cfg: dict, seed: int) -> int:
    """The trunk a fine-tuning seed starts from: the grid's seeds take the pretraining seeds in turn,
    so that the variance of pretraining is inside the error bars."""
    seeds = cfgmod.pretrain_seeds(cfg)
    return seeds[cfg["grid"]["seeds"].index(seed) % len(seeds)]


def target_data(cfg: dict, input_kind: str, protocol: str, fold: int, step: int | None = None,
                labels: str = "true", label_seed: int = 0) -> DataConfig:
    t, g = cfg["target"], cfg["grid"]
    root = t["root"] if t["dataset"] == "seecs" else data_root_label(cfg)
    split = SplitConfig(protocol, val_fraction=cfg["finetune"]["val_fraction"], seed=g["split_seed"],
                        n_folds=g["n_folds"], fold=fold)
    return DataConfig(dataset=t["dataset"], root=str(root), input_kind=input_kind, window=t["window"],
                      step=step or t["step"], subjects=t["participants"], split=split, labels=labels,
                      label_seed=label_seed if labels != "true" else 0, resample_hz=t["resample_hz"])


def _target_labels(cfg: dict, data: DataConfig) -> dict:
    t = cfg["target"]
    out = {"target": {"dataset": t["dataset"], "root": data.root, "participants": t["participants"]},
           "input": data.input_kind, "split": dataclasses.asdict(data.split)}
    if data.labels != "true":  # only then, so that the true-label jobs keep their ids
        out["labels"] = data.labels
    return out


def _cell_name(cfg: dict, input_kind: str, model: str, protocol: str, step: int, fold: int, seed: int,
               labels: str) -> str:
    """``quiroz-1d-watch-subject-f0-s0``; the step is named when the random split runs at several."""
    split = f"{protocol}-st{step}" if protocol == "random" and cfg["grid"]["random_steps"] else protocol
    suffix = "-permuted" if labels == "permuted" else ""
    return f"{cfg['target']['dataset']}-{input_kind}-{model}-{split}-f{fold}-s{seed}{suffix}"


def deep_job(cfg: dict, input_kind: str, pretraining: str, protocol: str, fold: int, seed: int,
             step: int | None = None, labels: str = "true") -> Job:
    f = cfg["finetune"]
    data = target_data(cfg, input_kind, protocol, fold, step, labels, seed)
    trunk = pretrain_job(cfg, pretraining, input_kind, trunk_seed(cfg, seed)).id if pretraining in cfgmod.TRUNKS else None
    # The source run folder, relative to the results folder (made absolute when the job runs).
    transfer = TransferConfig(source=f"pretrain/{trunk}/run") if trunk else None
    # From scratch K = C, or K = 18 like a transferred trunk (which keeps its K = 18 reduction)
    k = cfgmod.TRUNK_K if pretraining == "none_k18" else None
    run = RunConfig(data=data, model=ModelConfig("jazbat_net", k),
                    train=TrainConfig(epochs=f["epochs"], batch_size=f["batch_size"], learning_rate=f["learning_rate"],
                                      seed=seed, keep_last=1, patience=f["patience"]),
                    transfer=transfer)
    settings = {"kind": "deep", **_target_labels(cfg, data), "pretraining": pretraining, "pretrain_job": trunk,
                "seed": seed, "epochs": f["epochs"], "run": run.to_dict()}
    return Job("deep", _cell_name(cfg, input_kind, pretraining, protocol, data.step, fold, seed, labels), settings)


# What the forest may be asked to predict: the emotion, or (identity probes) who or which walk.
PROBES = ("participant", "recording")


def baseline_job(cfg: dict, input_kind: str, protocol: str, fold: int, seed: int, step: int | None = None,
                 labels: str = "true", predict: str = "emotion") -> Job:
    b = cfg["baseline"]
    data = target_data(cfg, input_kind, protocol, fold, step, labels, seed)
    settings = {"kind": "baseline", **_target_labels(cfg, data), "seed": seed, "model": "random_forest",
                "n_estimators": b["n_estimators"], "max_depth": b["max_depth"], "fit_on": b["fit_on"],
                "data": data.to_dict()}
    model = "rf"
    if predict != "emotion":
        settings["predict"] = predict
        model = f"rf-{predict}-id"
    return Job("baseline", _cell_name(cfg, input_kind, model, protocol, data.step, fold, seed, labels), settings)


def plan(cfg: dict) -> list[Job]:
    """Every job of the grid, pretrainings first (cells depend on them). Only the trunks some cell
    starts from are planned: a grid run on fewer seeds than there are trunk seeds trains fewer trunks."""
    g = cfg["grid"]
    needed = sorted({trunk_seed(cfg, s) for s in g["seeds"]}, key=cfgmod.pretrain_seeds(cfg).index)
    jobs = [pretrain_job(cfg, pre, inp, s) for inp in g["inputs"] for pre in g["pretraining"] if pre in cfgmod.TRUNKS
            for s in needed]
    for inp in g["inputs"]:
        for protocol, step in cfgmod.protocol_steps(cfg):
            for fold in cfgmod.folds(cfg):
                for seed in g["seeds"]:
                    for labels in g["labels"]:
                        if cfg["baseline"]["enabled"]:
                            jobs.append(baseline_job(cfg, inp, protocol, fold, seed, step, labels))
                        jobs += [deep_job(cfg, inp, pre, protocol, fold, seed, step, labels) for pre in g["pretraining"]]
                    if cfg["baseline"]["enabled"] and g["identity_probes"] and protocol == "random":
                        jobs += [baseline_job(cfg, inp, protocol, fold, seed, step, predict=p) for p in PROBES]
    return jobs + personal.plan_jobs(cfg, jobs)


# ---------------------------------------------------------------- data
class DataCache:
    """Loads each dataset / input kind once per invocation (the split is applied per job)."""

    def __init__(self):
        self._cache: dict[DataConfig, Any] = {}

    def windows(self, data: DataConfig):
        key = data.without_split()
        if key not in self._cache:
            self._cache[key] = load_windows(key)
        return self._cache[key]


def _windows_per_class(ws) -> dict[str, int]:
    return {c: int((ws.y == i).sum()) for i, c in enumerate(ws.class_names)}


# ---------------------------------------------------------------- runners
def run_config(job: Job, results: Path) -> RunConfig:
    """The job's run configuration, with a transfer source resolved inside ``results``."""
    run = RunConfig.from_dict(job.settings["run"])
    if run.transfer is not None:
        run = dataclasses.replace(run, transfer=dataclasses.replace(run.transfer,
                                                                    source=str(results / run.transfer.source)))
    return run


def _train(job: Job, results: Path, data: DataCache) -> tuple[dict, float]:
    from jazbat_jax.train import trainer
    from jazbat_jax.train.loop import FitOptions

    config = run_config(job, results)
    t0 = time.perf_counter()
    train = trainer.pretrain if job.kind == "pretrain" else trainer.finetune
    out = train(config, job.folder(results) / "run", windows=data.windows(config.data),
                options=FitOptions(progress=False, plots=False))
    return out, round(time.perf_counter() - t0, 2)


def _train_together(jobs: list[Job], results: Path, data: DataCache) -> list[tuple[dict, float]]:
    """Train ``jobs`` (pretrainings or deep cells) in multi-run programs, one per model shape among them;
    each job's training output and the wall time of the programs that trained it."""
    from jazbat_jax.train import trainer
    from jazbat_jax.train.loop import FitOptions

    configs = [run_config(j, results) for j in jobs]
    t0 = time.perf_counter()
    outs = trainer.train_many(configs, [j.folder(results) / "run" for j in jobs],
                              [data.windows(c.data) for c in configs], FitOptions(progress=False, plots=False))
    wall = time.perf_counter() - t0
    for out in outs:  # the program's wall time, and each job's share of it (what the report sums)
        out["final"].update(program_runs=len(jobs), program_wall_s=round(wall, 2))
    return [(out, round(wall / len(jobs), 2)) for out in outs]


def _stopping(out: dict) -> dict:
    """Where early stopping ended the run, the program it trained in (nothing for a run trained alone
    on a fixed schedule), and, for a run resumed from a checkpoint, where and after how much training."""
    final = out["final"]
    return {**{k: final[k] for k in ("stopped_epoch", "early_stopped", "program_runs", "program_wall_s") if k in final},
            **{k: out[k] for k in ("resumed_at_epoch", "earlier_train_s") if k in out}}


def _sizes(split) -> dict:
    return {"n_train": int(len(split.train)), "n_val": int(len(split.val)), "n_test": int(len(split.test))}


def run_pretrain(job: Job, results: Path, data: DataCache, trained: tuple[dict, float] | None = None) -> dict:
    out, wall = trained or _train(job, results, data)
    ws, split = out["windows"], out["split"]
    return {
        "job": job.id, "kind": job.kind, "settings": job.settings,
        "data_used": {"subjects": np.unique(ws.subject).tolist(), "activities": list(ws.class_names),
                      "windows": len(ws), "windows_per_class": _windows_per_class(ws),
                      "split": {k: split.summary[k]["subjects"] for k in ("train", "val", "test")}},
        **_sizes(split), "report": out["final"]["report"], "checkpoint_epoch": out["final"]["checkpoint_epoch"],
        **_stopping(out), "wall_s": wall,
    }


def run_deep(job: Job, results: Path, data: DataCache, trained: tuple[dict, float] | None = None) -> dict:
    out, wall = trained or _train(job, results, data)
    split, ws = out["split"], out["windows"]
    return {
        "job": job.id, "kind": job.kind, "settings": job.settings, **_sizes(split),
        **_permutation_summary(ws),
        "test_subjects": split.summary["test"]["subjects"],
        "report": out["final"]["report"], "checkpoint_epoch": out["final"]["checkpoint_epoch"],
        **_stopping(out), "wall_s": wall,
    }


def run_baseline(job: Job, results: Path, data: DataCache) -> dict:
    from jazbat_jax.experiments import baseline
    from jazbat_jax.files import PREDICTIONS_FILE, window_predictions, write_npz
    from jazbat_jax.train.metrics import classification_report

    s = job.settings
    config = DataConfig.from_dict(s["data"])
    ws, split = split_of(config, data.windows(config))
    target, names = ws.y, list(ws.class_names)
    probe = s.get("predict")  # identity probe: which participant / walk (None: the emotion)
    if probe:
        ids = ws.subject if probe == "participant" else ws.recording
        values, target = np.unique(ids, return_inverse=True)
        names = [str(v) for v in values]
    # "train": the network's training participants (the network sees the validation part only to
    # choose its checkpoint); "train+val": the forest, which needs no validation, also trains on it.
    fit_idx = split.train if s["fit_on"] == "train" else np.concatenate([split.train, split.val])
    t0 = time.perf_counter()
    pred, model_info = baseline.fit_predict(ws.x[fit_idx], target[fit_idx], ws.x[split.test], seed=s["seed"],
                                            n_estimators=s["n_estimators"], max_depth=s["max_depth"])
    wall = round(time.perf_counter() - t0, 2)
    test = ws.subset(split.test)
    if not probe:
        write_npz(job.folder(results) / PREDICTIONS_FILE, **window_predictions(test, pred))
    return {
        "job": job.id, "kind": job.kind, "settings": s, "model": model_info,
        "n_train": int(len(fit_idx)), "n_val": 0, "n_test": int(len(split.test)),
        "test_subjects": split.summary["test"]["subjects"],
        "report": classification_report(target[split.test], pred, names),
        "chance": _chance(target[fit_idx], target[split.test]),
        **_permutation_summary(ws),
        "wall_s": wall,
    }


def _chance(train_y: np.ndarray, test_y: np.ndarray) -> dict:
    """Two chance levels of a test set: a uniform guess, and always the training majority class."""
    classes = np.unique(np.concatenate([train_y, test_y]))
    majority = np.bincount(train_y).argmax()
    return {"uniform": 1 / len(classes), "majority": float(np.mean(test_y == majority))}


def _permutation_summary(ws) -> dict:
    """``{"label_permutation": ...}`` for the result of a permuted-label job; nothing otherwise."""
    p = ws.report.get("label_permutation")
    return {"label_permutation": {k: p[k] for k in ("seed", "recordings", "kept_true_label")}} if p else {}


RUNNERS: dict[str, Callable] = {"pretrain": run_pretrain, "deep": run_deep, "baseline": run_baseline,
                                "personal": personal.run_personal}


def enable_compilation_cache(results: Path) -> None:
    """Every cell compiles the same train / eval steps; a persistent cache makes that once."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(results / ".jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def groups(todo: list[Job], runs_per_program: int) -> list[list[Job]]:
    """The jobs to run, in groups trained together: pretrainings first (the cells need them), then the
    deep cells, then the baselines. Jobs of one kind, input, model, batch size and kind of start
    (pretrained or not) form groups of at most ``runs_per_program``; the rest run one at a time.
    With ``runs_per_program`` 1, every job alone in plan order."""
    if runs_per_program < 1:
        raise cfgmod.ConfigError(f"runs_per_program must be >= 1, got {runs_per_program}")
    if runs_per_program == 1:
        return [[j] for j in todo]
    out: list[list[Job]] = []
    for kind in ("pretrain", "deep", "baseline", "personal"):
        by_shape: dict[str, list[Job]] = {}
        for j in (j for j in todo if j.kind == kind):
            if kind in ("baseline", "personal"):
                out.append([j])
                continue
            train = j.settings["run"]["train"]
            shape = json.dumps([j.settings["input"], j.settings["run"]["model"], train["batch_size"],
                                j.settings.get("pretraining", "none") not in cfgmod.TRUNKS], sort_keys=True)
            by_shape.setdefault(shape, []).append(j)
        for same in by_shape.values():
            out += [same[i:i + runs_per_program] for i in range(0, len(same), runs_per_program)]
    return out


def run_group(group: list[Job], results: Path, data: DataCache, log: Callable[[str], None] = print) -> list[str]:
    """Run one job, or several compatible ones in one program; write each ``result.json``; return their ids."""
    t0 = time.perf_counter()
    resumed = [(job.folder(results) / "run" / "checkpoints").exists() for job in group]
    if len(group) == 1:
        log(f"\n=== {group[0].kind} {group[0].id}")
        done = [RUNNERS[group[0].kind](group[0], results, data)]
    else:
        log(f"\n=== {len(group)} {group[0].kind} jobs in one program: {', '.join(j.id for j in group)}")
        done = [RUNNERS[job.kind](job, results, data, trained)
                for job, trained in zip(group, _train_together(group, results, data))]
    for job, result, was_resumed in zip(group, done, resumed):
        result.update(total_wall_s_this_invocation=round(time.perf_counter() - t0, 2), resumed=was_resumed,
                      finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        write_json(job.folder(results) / "result.json", result)
        rep = result["report"]
        log(f"    {job.id}: accuracy {rep['accuracy']:.4f}  macro-F1 {rep['macro']['f1']:.4f}  "
            f"({result['wall_s']:.1f} s)")
    return [job.id for job in group]


def needs(job: Job, results: Path) -> list[Path]:
    """The ``result.json`` files of the trunks a job starts from (none for a job trained from scratch);
    deep cells and personal-model jobs both name their trunk in ``pretrain_job``."""
    trunk = job.settings.get("pretrain_job")
    return [results / "pretrain" / trunk / "result.json"] if trunk else []


def run_grid(cfg: dict, results: str | Path, progress: bool = True, log: Callable[[str], None] = print,
             stop_after: int | None = None, command: str | None = None, compilation_cache: bool = True,
             runs_per_program: int = 1, workers: int = 1) -> dict:
    """Run every job of ``cfg`` not yet finished in ``results``; return a summary of this invocation.

    ``stop_after``: stop after that many jobs were run (not skipped); used by the tests.
    ``runs_per_program``: train up to that many compatible jobs together in one program
    (``train/multi.py``); 1 trains each job alone.
    ``workers``: train that many jobs at a time, each in a single-threaded process of its own
    (``experiments/workers.py``; on 2 CPU cores two such processes out-train one multi-threaded run).
    ``compilation_cache``: set JAX's persistent cache to ``results/.jax_cache`` (process-wide
    setting: the tests turn it off so that it does not leak into other tests).
    """
    if workers < 1:
        raise cfgmod.ConfigError(f"workers must be >= 1, got {workers}")
    if workers > 1 and (runs_per_program > 1 or stop_after is not None):
        raise cfgmod.ConfigError("several workers train one job each: use either workers or runs_per_program")
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    if compilation_cache:
        enable_compilation_cache(results)
    write_json(results / "config.json", cfg)
    jobs = plan(cfg)
    todo = [j for j in jobs if not j.done(results)]
    log(f"experiments ({cfg['profile']}): {len(jobs)} jobs, {len(jobs) - len(todo)} already done, "
        f"{len(todo)} to run; results in {results}")
    data = DataCache()
    t_start, load_start = time.perf_counter(), load_average()
    ran, started = [], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    bar = tqdm(total=len(todo), desc="grid", unit="job", disable=not progress, dynamic_ncols=True)

    def record(ran: list[str], stopped: str | None = None) -> dict:
        """One line of RESULTS/invocations.jsonl: what this invocation ran, and why it stopped early."""
        summary = {"started": started, "command": command, "profile": cfg["profile"], "machine": machine_info(),
                   "jobs": len(jobs), "skipped_done": len(jobs) - len(todo), "ran": ran,
                   "wall_s": round(time.perf_counter() - t_start, 2),
                   "load_average_start": load_start, "load_average_end": load_average()}
        if stopped:
            summary["stopped"] = stopped
        with open(results / "invocations.jsonl", "a") as f:
            f.write(json.dumps(summary) + "\n")
        return summary

    try:
        if workers > 1 and todo:
            ran = run_workers(results, workers, todo, bar, log)
        else:
            for group in groups(todo, runs_per_program):
                bar.set_postfix_str(group[0].name + (f" +{len(group) - 1}" if len(group) > 1 else ""))
                ran += run_group(group, results, data, log)
                bar.update(len(group))
                if stop_after is not None and len(ran) >= stop_after:
                    break
    except BaseException as e:  # killed or failed: the invocation still records the jobs it finished
        record([j.id for j in todo if j.done(results)], (type(e).__name__ + (f": {e}" if str(e) else ""))[:300])
        raise
    finally:
        bar.close()
    if stop_after is None or len(ran) < stop_after:  # every job done: profile the exported models once
        if cfg.get("latency", {}).get("enabled") and not (results / "profile" / "profile.json").exists():
            log("\n=== latency profile: exporting the models and timing JAX, TFLite and ONNX Runtime (a few minutes)")
        run_latency_profile(cfg, results)
    return record(ran)


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
    them with the paper's protocol; cached in RESULTS/profile/ like a finished job. Needs a package
    that provides the ``latency`` profiler (``conversion``, installed with this project)."""
    from jazbat_jax import plugins

    lat = cfg.get("latency", {})
    out = Path(results) / "profile"
    if (out / "profile.json").exists():
        return out / "profile.json"
    if not lat.get("enabled"):
        return None
    profiler = plugins.load_one(plugins.PROFILERS, "latency")
    if profiler is None:
        print("note: no latency profiler is installed (pip install -e '.[export]'); the report has no latency table")
        return None
    return profiler.profile_models(lat["models"], out, runs=lat["runs"], warmup=lat["warmup"])
