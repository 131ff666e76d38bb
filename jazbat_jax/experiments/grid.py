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

``<id>`` names what the job computes (``jobs.py``): readable (``quiroz-1d-watch-subject-f0-s0``) plus a
hash of every setting of the job, the data named by their fingerprint, so a changed setting makes a new
job instead of reusing a stale one. A job whose ``result.json`` exists is skipped; a job killed
mid-training resumes from its newest checkpoint. A pretrained trunk is trained once per (device, input)
and reused by every cell that needs it. The jobs run as Ray tasks (``runner.py``).
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from jazbat_jax.data.config import DataConfig, SplitConfig, load_windows, split_of
from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments import personal, runner
from jazbat_jax.experiments.jobs import DamagedResult, Job, data_label, data_roots, pretrain_job, with_data_labels
from jazbat_jax.files import write_json
from jazbat_jax.machine import load_average, machine_info
from jazbat_jax.train.config import ModelConfig, RunConfig, TrainConfig
from jazbat_jax.train.transfer import TransferConfig


def trunk_seed(cfg: dict, seed: int) -> int:
    """The trunk a fine-tuning seed starts from: the grid's seeds take the pretraining seeds in turn,
    so that the variance of pretraining is inside the error bars."""
    seeds = cfgmod.pretrain_seeds(cfg)
    return seeds[cfg["grid"]["seeds"].index(seed) % len(seeds)]


def target_data(cfg: dict, input_kind: str, protocol: str, fold: int, step: int | None = None,
                labels: str = "true", label_seed: int = 0) -> DataConfig:
    t, g = cfg["target"], cfg["grid"]
    root = data_label(cfg, t["dataset"])
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
    if not g["enabled"]:
        return personal.plan_jobs(cfg, [])
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
    train = trainer.finetune if job.kind == "deep" else trainer.pretrain  # a trunk, or an accuracy-cost run
    out = train(config, job.folder(results) / "run", windows=data.windows(config.data),
                options=FitOptions(progress=False, plots=False))
    return out, round(time.perf_counter() - t0, 2)


def _stopping(out: dict) -> dict:
    """Where early stopping ended the run (nothing for a fixed schedule), and, for a run resumed from a
    checkpoint, where and after how much training."""
    final = out["final"]
    return {**{k: final[k] for k in ("stopped_epoch", "early_stopped") if k in final},
            **{k: out[k] for k in ("resumed_at_epoch", "earlier_train_s") if k in out}}


def _sizes(split) -> dict:
    return {"n_train": int(len(split.train)), "n_val": int(len(split.val)), "n_test": int(len(split.test))}


def run_pretrain(job: Job, results: Path, data: DataCache) -> dict:
    out, wall = _train(job, results, data)
    ws, split = out["windows"], out["split"]
    return {
        "job": job.id, "kind": job.kind, "settings": job.settings,
        "data_used": {"subjects": np.unique(ws.subject).tolist(), "activities": list(ws.class_names),
                      "windows": len(ws), "windows_per_class": _windows_per_class(ws),
                      "split": {k: split.summary[k]["subjects"] for k in ("train", "val", "test")}},
        **_sizes(split), "report": out["final"]["report"], "checkpoint_epoch": out["final"]["checkpoint_epoch"],
        **_stopping(out), "wall_s": wall,
    }


def run_deep(job: Job, results: Path, data: DataCache) -> dict:
    out, wall = _train(job, results, data)
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
                                "personal": personal.run_personal,
                                "accuracy_cost": run_pretrain}  # a WISDM run like a trunk, of any architecture


def enable_compilation_cache(results: Path) -> None:
    """Every cell compiles the same train / eval steps; a persistent cache makes that once."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(results / ".jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


_DATA = DataCache()  # per process: a worker loads each dataset once for all the jobs it runs


def execute(job: Job, results: str | Path, roots: tuple[str, ...] = (), compilation_cache: bool = True,
            model_files: tuple[str, ...] = ()) -> dict:
    """Run one job in this process (a Ray worker, or the driver with ``in_process``) and write its
    ``result.json`` last, atomically; the result. ``roots``: folders holding the data the job's labels
    name, where this machine has them. ``model_files``: "path/file.py:factory" of users' models the jobs
    name by "file.py:factory" (``architectures.register_file``)."""
    from jazbat_jax import architectures
    from jazbat_jax.data.fingerprint import register_root

    results = Path(results)
    for root in roots:
        register_root(root)
    for spec in model_files:
        architectures.register_file(spec)
    if compilation_cache:
        enable_compilation_cache(results)
    folder = job.folder(results)
    resumed = (folder / "run" / "checkpoints").exists()
    t0 = time.perf_counter()
    result = RUNNERS[job.kind](job, results, _DATA)
    result.update(total_wall_s_this_invocation=round(time.perf_counter() - t0, 2), resumed=resumed,
                  finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_json(folder / "result.json", result)
    return result


def windows_trained(result: dict) -> int:
    """Training windows a finished job passed through its model (epochs × training windows, those of a
    resumed run's earlier epochs excluded): the numerator of the grid's windows/s."""
    epochs = result.get("stopped_epoch") or result["settings"].get("epochs") or 0
    return int(result.get("n_train", 0)) * max(0, int(epochs) - int(result.get("resumed_at_epoch") or 0)) \
        if result["kind"] in ("pretrain", "deep", "accuracy_cost") else 0


def _done_line(job: Job, result: dict) -> str:
    rep = result["report"]
    return f"    {job.id}: accuracy {rep['accuracy']:.4f}  macro-F1 {rep['macro']['f1']:.4f}  ({result['wall_s']:.1f} s)"


def unfinished(jobs: list[Job], results: Path, log: Callable[[str], None] = print) -> list[Job]:
    """The jobs without a readable ``result.json``. A damaged one is named, kept beside as
    ``result.json.damaged`` and its job run again."""
    todo = []
    for job in jobs:
        try:
            if job.result(results) is not None:
                continue
        except DamagedResult as e:
            path = job.folder(results) / "result.json"
            path.replace(path.with_name("result.json.damaged"))
            log(f"{e}: kept as result.json.damaged, running the job again")
        todo.append(job)
    return todo


def run_grid(cfg: dict, results: str | Path, progress: bool = True, log: Callable[[str], None] = print,
             stop_after: int | None = None, command: str | None = None, compilation_cache: bool = True,
             ray_options: runner.RayOptions | None = None, in_process: bool = False) -> dict:
    """Run every job of ``cfg`` not yet finished in ``results``, then the latency profile; return a
    summary of this invocation (see ``run_plan``)."""
    results = Path(results).resolve()
    cfg = with_data_labels(cfg)
    results.mkdir(parents=True, exist_ok=True)
    write_json(results / "config.json", cfg)

    def profile() -> None:  # every job done: profile the exported models once
        if cfg.get("latency", {}).get("enabled") and not (results / "profile" / "profile.json").exists():
            log("\n=== latency profile: exporting the models and timing JAX, TFLite and ONNX Runtime (a few minutes)")
        run_latency_profile(cfg, results)

    return run_plan(plan(cfg), results, tuple(data_roots(cfg)), f"experiments ({cfg['profile']})",
                    {"profile": cfg["profile"], "command": command}, progress=progress, log=log,
                    stop_after=stop_after, compilation_cache=compilation_cache, ray_options=ray_options,
                    in_process=in_process, after=profile)


def run_plan(jobs: list[Job], results: Path, roots: tuple[str, ...], title: str, about: dict,
             progress: bool = True, log: Callable[[str], None] = print, stop_after: int | None = None,
             compilation_cache: bool = True, ray_options: runner.RayOptions | None = None, in_process: bool = False,
             after: Callable[[], None] | None = None, model_files: tuple[str, ...] = ()) -> dict:
    """Run the jobs of a plan not yet finished in ``results`` (``jazbat experiments`` and ``jazbat
    accuracy-cost`` alike); append this invocation's line to ``results/invocations.jsonl`` (with ``about``)
    and return it.

    The jobs run as Ray tasks (``experiments/runner.py``; ``ray_options``: a local Ray by default, or a
    cluster). ``in_process``: run them one after another in this process instead (no Ray: debugging,
    and the reference the tests compare Ray's results with). ``roots``: where this machine keeps the data
    the jobs name; ``model_files``: users' model files the jobs name (``execute``). ``after``: called once
    every job is finished.
    ``stop_after``: stop after that many jobs were run (not skipped); used by the tests.
    ``compilation_cache``: set JAX's persistent cache to ``results/.jax_cache`` (in process it is a
    process-wide setting: the tests turn it off so that it does not leak into other tests).
    """
    todo = unfinished(jobs, results, log)
    where = "in this process" if in_process else _where(ray_options or runner.RayOptions())
    log(f"{title}: {len(jobs)} jobs, {len(jobs) - len(todo)} already done, {len(todo)} to run {where}; "
        f"results in {results}")
    t_start, load_start = time.perf_counter(), load_average()
    ran: list[str] = []
    nodes: dict[str, str] = {}
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    bar = tqdm(total=len(todo), desc=title.split()[0], unit="job", disable=not progress, dynamic_ncols=True)
    if progress and log is print:  # a line printed under a live bar would break it: tqdm lifts the bar first
        log = tqdm.write
    windows = [0]

    def on_done(job: Job, result: dict, node: str = "this process") -> None:
        ran.append(job.id)
        nodes[job.id] = node
        windows[0] += windows_trained(result)
        bar.set_postfix_str(f"{windows[0] / max(time.perf_counter() - t_start, 1e-9):.0f} windows/s")
        bar.update(1)
        log(_done_line(job, result))

    def record(stopped: str | None = None) -> dict:
        """One line of RESULTS/invocations.jsonl: what this invocation ran, and why it stopped early."""
        summary = {"started": started, **about, "machine": machine_info(),
                   "runner": "in process" if in_process else "ray", "jobs": len(jobs),
                   "jobs_per_node": dict(collections.Counter(nodes.values())),
                   "skipped_done": len(jobs) - len(todo), "ran": ran,
                   "wall_s": round(time.perf_counter() - t_start, 2),
                   "load_average_start": load_start, "load_average_end": load_average()}
        if stopped:
            summary["stopped"] = stopped
        with open(results / "invocations.jsonl", "a") as f:
            f.write(json.dumps(summary) + "\n")
        return summary

    try:
        if in_process:
            if compilation_cache:
                enable_compilation_cache(results)
            for job in todo:
                bar.set_postfix_str(job.name)
                log(f"\n=== {job.kind} {job.id}")
                on_done(job, execute(job, results, roots, compilation_cache=False, model_files=model_files))
                if stop_after is not None and len(ran) >= stop_after:
                    break
        elif todo:
            runner.run_jobs(todo, results, functools.partial(execute, roots=roots, compilation_cache=compilation_cache,
                                                             model_files=model_files),
                            ray_options or runner.RayOptions(), on_done, stop_after=stop_after, log=log)
    except BaseException as e:  # killed or failed: the invocation still records the jobs it finished
        record((type(e).__name__ + (f": {e}" if str(e) else ""))[:300])
        raise
    finally:
        bar.close()
    if after is not None and (stop_after is None or len(ran) < stop_after):
        after()
    return record()


def _where(opts: runner.RayOptions) -> str:
    if opts.address:
        return f"on the Ray cluster at {opts.address}"
    n = opts.workers or os.cpu_count() or 1
    return f"on a local Ray, {n} single-threaded worker{'s' if n > 1 else ''}"


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
