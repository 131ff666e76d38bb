"""Accuracy against complexity: Jazbat-Net, the S-754 surrogate, the re-implemented published baselines and
any user's model, trained alike on a task with a real signal.

The task is WISDM 2019 activity recognition (18 activities, watch accelerometer magnitude |a|, a
subject-independent split). Every architecture × seed is an ordinary run folder of ``trainer.pretrain``
on the same data configuration, epoch budget and early stopping; only the architecture and the seed
(initialisation, shuffling, dropout) change, never the split. Then each model's test accuracy and
macro-F1 (mean ± SD over seeds, and the pooled accuracy with a participant-clustered bootstrap
interval) sit next to its parameters and MACs and, from a ``jazbat profile`` result, the size,
activation memory and latency of its exported files.

S-754 (``sota_surrogate``) is a complexity-matched surrogate of the previous state of the art [9]:
built to have [9]'s published parameter and MAC counts, not [9]'s network (whose layers are not public).
``deepconvlstm``, ``tinyhar`` and ``resnet1d`` are re-implementations of published baselines
(``jazbat_jax.baselines``); any other name is a user's model (``jazbat_jax.architectures``), named in
its jobs by its import spec and a hash of its configuration and parameter shapes, never by a folder.

Every model is compared with the reference (Jazbat-Net) for equivalence: the seed-matched,
participant-paired accuracy difference (per test participant, the difference of the two models' accuracy
under the same seed, averaged over the seeds both have), tested with two one-sided t-tests against a
margin set in the settings before any result is seen (``stats.tost_paired``).

Every run is a job of the experiment pipeline (``jobs.Job`` of kind ``accuracy_cost``, run by
``grid.run_plan`` on Ray like the grid's jobs), named by what it computes. Output folder::

    config.json               the settings and the data label of the latest invocation
    runs/<arch>-s<seed>-<hash>/run/          a run folder of ``trainer.pretrain``; resumed if killed
    runs/<arch>-s<seed>-<hash>/result.json   written last: the run is finished (test report, wall time)
    profile/profile.json      the exported files' profile (the latency profiler's output, or a copy of --profile)
    invocations.jsonl         one line per invocation: command, time, machine, load, jobs run / skipped
    accuracy_cost.json        every number of the report
    report.md, pareto.png
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import statistics
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tabulate import tabulate

from jazbat_jax.data.config import BUNDLED, ConfigError, DataConfig, SplitConfig
from jazbat_jax.experiments.jobs import Job
from jazbat_jax.figures import save_figure
from jazbat_jax.files import PREDICTIONS_FILE, read_json_lines, write_atomically, write_json
from jazbat_jax.machine import busy, load_average, machine_info
from jazbat_jax import architectures
from jazbat_jax.train.config import ModelConfig, RunConfig, TrainConfig

ARCHS = ("jazbat_net", "sota_surrogate", "deepconvlstm", "tinyhar", "resnet1d")
# The two architectures the first comparison trained: their job ids keep the settings they had then.
ORIGINAL = ("jazbat_net", "sota_surrogate")
LABELS = {"jazbat_net": "Jazbat-Net", "sota_surrogate": "S-754 surrogate"}
STYLE = {"jazbat_net": ("o", "#1f77b4"), "sota_surrogate": ("s", "#d62728"), "deepconvlstm": ("D", "#2ca02c"),
         "tinyhar": ("^", "#9467bd"), "resnet1d": ("v", "#8c564b")}
OTHER_STYLES = [("P", "#e377c2"), ("X", "#7f7f7f"), ("*", "#bcbd22"), ("h", "#17becf")]
REFERENCE_CLASSES = 18  # the configuration a user's model is fingerprinted in (WISDM's activities)
# The latency the figure plots: the paper's deployment runtime (TFLite FP32, XNNPACK, 1 thread), else another.
PLOT_RUNTIMES = ("tflite", "onnx", "jax")
RUNTIME_LABELS = {"jax": "JAX jit (XLA CPU)", "tflite": "TFLite FP32 (XNNPACK, 1 thread)",
                  "tflite_dynamic_int8": "TFLite dynamic-range INT8", "onnx": "ONNX Runtime (1 thread)"}
SURROGATE_NOTE = ("S-754 (`sota_surrogate`) is a **complexity-matched surrogate** of the previous state of the art "
                  "[9]: it was built to have [9]'s published parameter and MAC counts, and it is **not the published "
                  "network of [9]** (whose layers are not public). Its numbers say what a model of that size and this "
                  "design reaches under the same training, not what [9] reaches.")
N_BOOT = 2000


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the comparison trains: every run shares all of it except its architecture and seed."""

    archs: tuple[str, ...] = ARCHS
    seeds: tuple[int, ...] = (0, 1, 2)
    # Equivalence with the reference: the largest accuracy difference (a fraction: 0.02 = 2 points) that
    # counts as no practical difference, set before any result is seen; tested at level alpha.
    margin: float = 0.02
    alpha: float = 0.05
    reference: str = "jazbat_net"
    root: str | None = None  # DataConfig.root: None = ../shared/data or $JAZBAT_DATA_ROOT (else the sample)
    window: int = 256
    step: int = 128  # the paper's WISDM stride is 32; 128 gives a quarter of the windows, bounding S-754's cost
    max_windows: int | None = None
    split_seed: int = 0
    epochs: int = 100  # the cap: early stopping (patience) is meant to end every run before it
    patience: int | None = 5  # early stopping on validation macro-F1
    batch_size: int = 32
    learning_rate: float = 1e-3

    def __post_init__(self):
        try:  # a user's file is recorded by its file name only (jazbat_jax.architectures)
            archs = tuple(architectures.canonical(a) for a in self.archs)
            for a in archs:
                architectures.resolve(a)
        except architectures.ArchitectureError as e:
            raise ConfigError(str(e)) from None
        object.__setattr__(self, "archs", archs)
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.archs or len(set(self.archs)) != len(self.archs):
            raise ConfigError(f"architectures must be distinct, got {list(self.archs)}")
        if not 0 < self.margin < 1 or not 0 < self.alpha < 0.5:
            raise ConfigError(f"the equivalence margin must be in (0, 1) (a fraction of accuracy: 0.02 = 2 points) "
                              f"and alpha in (0, 0.5), got margin {self.margin}, alpha {self.alpha}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ConfigError(f"seeds must be distinct whole numbers >= 0, got {list(self.seeds)}")
        run_config(self, self.archs[0], self.seeds[0])  # the data and training values are checked there


def data_config(s: Settings, root: str | None = None) -> DataConfig:
    """The one data configuration of every run: WISDM watch |a|, subject split with a fixed seed.
    ``root``: the data label the jobs name the data by (default: where ``s.root`` says the data are)."""
    return DataConfig(dataset="wisdm", root=root or s.root, input_kind="1d", window=s.window, step=s.step,
                      device="watch", max_windows=s.max_windows, split=SplitConfig("subject", seed=s.split_seed))


def data_folder(s: Settings) -> Path:
    """The WISDM folder this machine reads for ``s.root`` (a data root's ``wisdm2019`` folder, or the folder)."""
    from jazbat_jax.data.config import dataset_folder, resolve_root

    return dataset_folder(resolve_root(data_config(s)), "wisdm")


def data_label(s: Settings) -> str:
    from jazbat_jax.data.fingerprint import label, register_root

    folder = data_folder(s)
    register_root(folder)
    return label("wisdm", folder)


def run_config(s: Settings, arch: str, seed: int, root: str | None = None) -> RunConfig:
    """A run's configuration. Jazbat-Net's reduction width is K = C = 18 (the paper's WISDM pretraining)."""
    return RunConfig(data=data_config(s, root), model=ModelConfig(arch, None),
                     train=TrainConfig(epochs=s.epochs, batch_size=s.batch_size, learning_rate=s.learning_rate,
                                       seed=seed, patience=s.patience, keep_last=1))


def job(s: Settings, arch: str, seed: int, label: str) -> Job:
    """One architecture × seed: a WISDM run named by its settings and its data's fingerprint; a model other
    than the first two also by a hash of its configuration and parameter shapes (its name alone, an import
    spec, would not change when the model does)."""
    run = run_config(s, arch, seed, label)
    settings = {"kind": "accuracy_cost", "arch": arch, "seed": seed, "data_root": label, "epochs": s.epochs,
                "run": run.to_dict()}
    if arch not in ORIGINAL:
        settings["model"] = architectures.fingerprint(arch, REFERENCE_CLASSES, s.window, 1)
    return Job("accuracy_cost", f"{architectures.slug(arch)}-s{seed}", settings)


def label(arch: str) -> str:
    return LABELS.get(arch) or architectures.label(arch)


def style(arch: str, archs: tuple[str, ...]) -> tuple[str, str]:
    others = [a for a in archs if a not in STYLE]
    return STYLE.get(arch) or OTHER_STYLES[others.index(arch) % len(OTHER_STYLES)]


def plan(s: Settings, label: str | None = None) -> list[Job]:
    """Every run of the comparison; ``label``: the data label to name them by (default: this machine's data).

    Seed by seed, every model within a seed: a comparison stopped part-way has every model's first seed
    before anyone's third, so its interim report compares every model."""
    label = label or data_label(s)
    return [job(s, arch, seed, label) for seed in s.seeds for arch in s.archs]


def recorded_label(out: Path) -> str | None:
    """The data label an earlier invocation recorded in ``out/config.json``: what the report plans with
    on a machine without those data."""
    try:
        return json.loads((Path(out) / "config.json").read_text()).get("data_label")
    except (OSError, json.JSONDecodeError):
        return None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- training
def train_runs(s: Settings, out: Path, command: str, progress: bool = True, ray_options=None,
               in_process: bool = False, log: Callable[[str], None] = print) -> dict:
    """Train every run of ``s`` not yet finished in ``out`` (resuming killed ones) on the experiment
    pipeline; this invocation's line of ``out/invocations.jsonl``."""
    from jazbat_jax.experiments import grid

    out = Path(out).resolve()
    label = data_label(s)
    write_json(out / "config.json", {"settings": dataclasses.asdict(s), "data_label": label})
    return grid.run_plan(plan(s, label), out, (str(data_folder(s).resolve()),), "accuracy-cost",
                         {"command": command}, progress=progress, log=log, ray_options=ray_options,
                         in_process=in_process, model_files=architectures.registered_files())


# ---------------------------------------------------------------- latency profile
def latency_profile(s: Settings, out: Path, given: Path | None = None, enabled: bool = True, runs: int = 100,
                    warmup: int = 5, log: Callable[[str], None] = print) -> Path | None:
    """The profile of the exported files, cached in OUT/profile/profile.json.

    ``given``: a ``jazbat profile`` result, copied into the cache. Otherwise, when ``enabled`` and no cached
    profile exists, the installed ``latency`` profiler exports and times the first seed's trained model of
    each architecture at batch 1 (as the experiment grid does, but on the trained checkpoints)."""
    from jazbat_jax import plugins

    cached = Path(out) / "profile" / "profile.json"
    if given is not None:
        given = Path(given)
        if not given.is_file():
            raise FileNotFoundError(f"profile {given} does not exist: give the profile.json that "
                                    "`jazbat profile --out DIR` wrote")
        text = given.read_text()
        try:
            models = json.loads(text)["models"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{given} is not a `jazbat profile` result (no 'models' list): give the profile.json "
                             "that `jazbat profile --out DIR` wrote") from None
        if not isinstance(models, list):
            raise ValueError(f"{given} is not a `jazbat profile` result ('models' is not a list)")
        if given.resolve() != cached.resolve():
            write_atomically(cached, text)
        return cached
    if cached.exists():
        return cached
    if not enabled:
        return None
    profiler = plugins.load_one(plugins.PROFILERS, "latency")
    if profiler is None:
        log("note: no latency profiler is installed (pip install -e '.[export]'); the report has no latency table")
        return None
    firsts = [j for j in plan(s, recorded_label(out)) if j.settings["seed"] == s.seeds[0]]
    folders = [j.folder(out) / "run" for j in firsts]
    if not all(j.done(out) for j in firsts):
        log("note: not every model has a finished run yet; the latency profile waits for them")
        return None
    log("\n=== latency profile: exporting the trained models and timing JAX, TFLite and ONNX Runtime (minutes)")
    return profiler.profile_models([str(f) for f in folders], cached.parent, runs=runs, warmup=warmup)


# ---------------------------------------------------------------- collecting the numbers
def _trained_by(result: dict, invocations: list[dict]) -> dict:
    """What finished a run: the invocation that ran it (command, machine, load) and the run's own times."""
    inv = next((i for i in reversed(invocations) if result["job"] in i.get("ran", [])), {})
    return {"command": inv.get("command"), "finished_utc": result.get("finished_at"), "resumed": result.get("resumed"),
            "wall_s": result.get("wall_s"), "machine": inv.get("machine"),
            "load_average_start": inv.get("load_average_start"), "load_average_end": inv.get("load_average_end")}


def _invocations(out: Path) -> list[dict]:
    return read_json_lines(Path(out) / "invocations.jsonl")


def _read_run(folder: Path, result: dict, invocations: list[dict]) -> dict[str, Any]:
    from jazbat_jax.experiments.stats import RUN_KEYS

    final = json.loads((folder / "final_eval.json").read_text())
    meta = json.loads((folder / "config.json").read_text())
    history = read_json_lines(folder / "metrics.jsonl")
    with np.load(folder / PREDICTIONS_FILE) as z:
        predictions = {k: z[k] for k in RUN_KEYS}
    return {"final": final, "meta": meta, "history": history, "predictions": predictions,
            "trained_by": _trained_by(result, invocations)}


def _profile_row(profile: dict, arch: str) -> dict[str, Any] | None:
    """One architecture's figures from a profile (its 1D model), or None when the profile lacks it."""
    row = next((m for m in profile["models"] if m.get("name") == f"{architectures.slug(arch)}_1d"), None)
    if row is None:
        return None
    memory = row.get("memory") or {}
    ort = memory.get("onnxruntime") or {}
    return {
        "name": row["name"], "origin": row.get("origin"), "params_total": row.get("params_total"),
        "macs": row.get("macs"), "artifact_bytes": row.get("artifact_bytes", {}),
        "latency_median_ms": {t["runtime"]: t["median_ms"] for t in row.get("latency", []) if t["batch"] == 1},
        "unavailable": row.get("unavailable") or {},
        "memory_bytes": {"jax_xla_temp": memory.get("jax_xla_temp_bytes", (row.get("xla") or {}).get("memory_temp_bytes")),
                         "onnxruntime_activation_peak": ort.get("activation_peak_bytes"),
                         "tflite_heap_growth_xnnpack": memory.get("tflite_heap_growth_xnnpack_bytes")},
    }


def paired_differences(runs: dict[int, dict], reference: dict[int, dict]) -> tuple[list[int], dict[int, float]]:
    """Seed-matched, participant-paired accuracy differences of a model against the reference: for each
    seed both trained, each test participant's accuracy difference; then each participant's mean over
    those seeds (participants are the independent unit; seeds of one participant are not). Returns the
    matched seeds and {participant: mean difference}."""
    from jazbat_jax.experiments.stats import per_group_accuracy

    seeds = sorted(set(runs) & set(reference))
    per_participant: dict[int, list[float]] = {}
    for seed in seeds:
        mine = per_group_accuracy(runs[seed]["y_true"], runs[seed]["y_pred"], runs[seed]["participant"])
        theirs = per_group_accuracy(reference[seed]["y_true"], reference[seed]["y_pred"],
                                    reference[seed]["participant"])
        if set(mine) != set(theirs):
            raise ValueError(f"seed {seed}: the two runs tested different participants; they must share the split")
        for pid in mine:
            per_participant.setdefault(int(pid), []).append(mine[pid] - theirs[pid])
    return seeds, {pid: statistics.fmean(d) for pid, d in sorted(per_participant.items())}


def equivalence(runs: dict[int, dict], reference: dict[int, dict], margin: float, alpha: float) -> dict[str, Any]:
    """The TOST equivalence test of a model against the reference (``stats.tost_paired``) on the
    seed-matched, participant-paired differences."""
    from jazbat_jax.experiments.stats import tost_paired

    seeds, diffs = paired_differences(runs, reference)
    return {"seeds_matched": seeds, "per_participant": {str(k): v for k, v in diffs.items()},
            **tost_paired(list(diffs.values()), margin, alpha)}


def _mean_sd(values: list[float]) -> dict[str, float | None]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None}


def collect(s: Settings, out: Path, profile_path: Path | None = None) -> dict[str, Any]:
    """Every number of the report, from the run folders and the profile (JSON-serialisable)."""
    from jazbat_jax import complexity
    from jazbat_jax.experiments import stats
    from jazbat_jax.model import model_from_config

    runs, missing, predictions = [], [], {}  # predictions: {arch: {seed: arrays}}
    invocations = _invocations(out)
    jobs = plan(s, recorded_label(out))
    for j in sorted(jobs, key=lambda j: (s.archs.index(j.settings["arch"]), j.settings["seed"])):  # model by model
        arch, seed = j.settings["arch"], j.settings["seed"]
        result = j.result(out)
        if result is None:
            missing.append(j.name)
            continue
        r = _read_run(j.folder(out) / "run", result, invocations)
        rep, hist = r["final"]["report"], r["history"]
        predictions.setdefault(arch, {})[seed] = r["predictions"]
        runs.append({
            "run": j.name, "job": j.id, "arch": arch, "seed": seed, "accuracy": rep["accuracy"],
            "macro_f1": rep["macro"]["f1"], "n_test": rep["n"], "checkpoint_epoch": r["final"]["checkpoint_epoch"],
            "epochs_trained": hist[-1]["epoch"], "early_stopped": r["final"].get("early_stopped"),
            "epoch_cap": r["meta"]["run"]["train"]["epochs"],
            "train_seconds": round(sum(h["train_seconds"] for h in hist), 1),
            # the median epoch's rate: the first epoch also compiles
            "train_windows_per_s": statistics.median(h["windows_per_s"] for h in hist),
            "model_config": r["meta"]["model"], "class_names": r["meta"]["class_names"],
            "split_summary": r["meta"]["split_summary"], "trained_by": r["trained_by"],
        })
    profile = json.loads(Path(profile_path).read_text()) if profile_path else None
    models = []  # every architecture with a finished run, in the settings' order
    for arch in s.archs:
        mine = [r for r in runs if r["arch"] == arch]
        if not mine:
            continue
        cost = complexity.count(model_from_config(mine[0]["model_config"]))
        summary = stats.summarize(list(predictions[arch].values()), n_classes=len(mine[0]["class_names"]),
                                  n_boot=N_BOOT)
        models.append({
            "arch": arch, "label": label(arch), "seeds": [r["seed"] for r in mine],
            "params_total": cost.total, "params_trainable": cost.trainable, "macs": cost.macs,
            "macs_unknown_layers": list(cost.unknown),
            "early_stopped": sum(bool(r["early_stopped"]) for r in mine),
            "equivalence": (None if arch == s.reference or s.reference not in predictions else
                            equivalence(predictions[arch], predictions[s.reference], s.margin, s.alpha)),
            "reduce_filters": mine[0]["model_config"].get("reduce_filters"),
            "accuracy": _mean_sd([r["accuracy"] for r in mine]), "macro_f1": _mean_sd([r["macro_f1"] for r in mine]),
            "pooled": {k: summary[k] for k in ("accuracy", "ci", "n_windows", "n_participants", "n_runs")},
            "profile": _profile_row(profile, arch) if profile else None,
        })
    split = runs[0]["split_summary"] if runs else None
    return {
        "created_utc": _now(), "settings": dataclasses.asdict(s), "data_config": data_config(s).to_dict(),
        "data": jobs[0].settings["data_root"], "split": split, "runs": runs, "missing": missing,
        "models": models, "n_boot": N_BOOT,
        "profile": None if profile is None else {
            "path": "profile/profile.json" if Path(profile_path).parent.name == "profile" else str(profile_path),
            "command": profile.get("command"), "created_utc": profile.get("created_utc"),
            "machine": profile.get("machine"), "protocol": profile.get("protocol"),
            "load_average_start": profile.get("load_average_start"), "load_average_end": profile.get("load_average_end")},
    }


# ---------------------------------------------------------------- report
def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _pct_sd(d: dict) -> str:
    return _pct(d["mean"]) + ("" if d["sd"] is None else f" ± {100 * d['sd']:.2f}")


def _kb(x: float | None) -> str:
    return "–" if x is None else f"{x / 1e3:,.1f}"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _loads(load: list[float] | None) -> str:
    return "not recorded" if not load else "/".join(f"{v:.2f}" for v in load)


def _machine(m: dict | None) -> str:
    if not m:
        return "machine not recorded"
    return (f"{m.get('host_cpu')}, {m.get('cpu_count')} cores ({m.get('system')}), JAX {m.get('jax')} on "
            f"{m.get('jax_devices')}")


def _when(record: dict, start: str = "load_average_start", end: str = "load_average_end") -> str:
    m = record.get("machine") or {}
    note = " (busy: other work shared the cores)" if busy(record.get(start), record.get(end), m.get("cpu_count")) else ""
    return f"load average (1/5/15 min) {_loads(record.get(start))} at the start, {_loads(record.get(end))} at the end{note}"


def _setup_lines(result: dict) -> list[str]:
    s, split = result["settings"], result["split"]
    sample = result["data_config"]["root"] == BUNDLED
    lines = [
        f"- **Task**: WISDM 2019 activity recognition, {len(result['runs'][0]['class_names']) if result['runs'] else 18} "
        f"activities, watch accelerometer magnitude |a| (1D), windows of {s['window']} samples, step {s['step']}"
        + (f", a seeded subset of {s['max_windows']:,} windows" if s["max_windows"] else "")
        + f"; data `{result['data']}` (dataset @ fingerprint of its files)."
        + (" **This is the small sample bundled with the package: a functional check, not a result.**" if sample else ""),
    ]
    if split:
        lines.append(f"- **Split**: subject-independent (no person in two parts), split seed {s['split_seed']}, the same "
                     f"for every run: train {split['train']['windows']:,} windows of {len(split['train']['subjects'])} "
                     f"participants, validation {split['val']['windows']:,} of {len(split['val']['subjects'])}, test "
                     f"{split['test']['windows']:,} of {len(split['test']['subjects'])} (participants "
                     f"{', '.join(map(str, split['test']['subjects']))}).")
    stop = (f"early stopping after {s['patience']} epochs without a better validation macro-F1"
            if s["patience"] else "no early stopping")
    capped = [r["run"] for r in result["runs"] if not r["early_stopped"]]
    ended = ("every run was ended by early stopping, none by the cap" if not capped else
             f"**{len(capped)} of {len(result['runs'])} runs reached the cap without early stopping** "
             f"({', '.join(capped)}): they may still have been improving, and their accuracy may understate the model")
    lines.append(f"- **Training**: `trainer.pretrain` from random initialisation until early stopping ends it "
                 f"(cap: {s['epochs']} epoch{'s' if s['epochs'] != 1 else ''}; {ended}), {stop}, batch "
                 f"{s['batch_size']}, Adam lr "
                 f"{s['learning_rate']}; the best-validation checkpoint is evaluated on the test part. Seeds: "
                 f"{', '.join(map(str, s['seeds']))} (initialisation, shuffling and dropout; the split is the same). "
                 "Jazbat-Net's reduction width is K = C = 18.")
    return lines


def _equivalence_cell(e: dict | None) -> str:
    if e is None:
        return "reference"
    if e["ci"] is None:
        return f"{e['verdict']} ({e['n']} participant{'s' if e['n'] != 1 else ''})"
    return (f"{100 * e['mean']:+.2f} [{100 * e['ci'][0]:+.2f}, {100 * e['ci'][1]:+.2f}], TOST p = {e['p']:.3g}: "
            f"**{e['verdict']}**")


def _summary_table(result: dict) -> list[str]:
    s = result["settings"]
    reference = label(s.get("reference", "jazbat_net"))
    margin, level = 100 * s.get("margin", 0.02), 100 * (1 - 2 * s.get("alpha", 0.05))
    rows = []
    for m in result["models"]:
        p = m["pooled"]
        ci = "(no interval)" if p["ci"] is None else f"[{_pct(p['ci'][0])}, {_pct(p['ci'][1])}]"
        macs = f"{m['macs']:,}" + (" (lower bound)" if m.get("macs_unknown_layers") else "")
        rows.append([m["label"], f"{m['params_total']:,}", macs, len(m["seeds"]), _pct_sd(m["accuracy"]),
                     _pct_sd(m["macro_f1"]), f"{_pct(p['accuracy'])} {ci}", f"{p['n_windows']:,} / {p['n_participants']}",
                     _equivalence_cell(m.get("equivalence"))])
    one = any(m["pooled"]["ci"] is None for m in result["models"])
    return [_table(["model (the variant trained)", "parameters", "MACs per window", "seeds",
                    "test accuracy % (mean ± SD)", "test macro-F1 % (mean ± SD)", "pooled test accuracy % [95% CI]",
                    "test windows (all seeds) / participants",
                    f"accuracy − {reference}, points [{level:.0f}% CI], equivalence within ±{margin:g}"], rows), "",
            f"Equivalence with {reference} (margin ±{margin:g} accuracy points: the `--margin` setting, which a study "
            "fixes before it looks at its results): "
            "per test participant, the accuracy difference of the two models under the same seed, averaged over the "
            f"seeds both trained; two one-sided t-tests over participants (TOST, `experiments.stats.tost_paired`); "
            f"equivalent when the {level:.0f}% interval lies inside ±{margin:g}, worse / better when it lies beyond, "
            "else inconclusive (neither equivalence nor a difference larger than the margin is shown).", "",
            "Mean ± SD: over seeds (sample SD; no SD with one seed). Pooled: every seed's test windows together; the "
            f"interval is a percentile bootstrap over test participants ({result['n_boot']} replicates; a participant "
            "is one cluster across seeds, since every seed tests the same people), `experiments.stats.summarize`."
            + (" No interval where the test part has a single participant (nothing to resample)." if one else ""),
            "Parameters and MACs (paper convention: multiply-accumulates of convolutions, GRUs and dense layers for one "
            "window) are counted on the trained models by `jazbat_jax.complexity.count`."]


def _runs_table(result: dict) -> list[str]:
    rows = []
    for r in result["runs"]:
        by = r["trained_by"] or {}
        stopped = " (early stop)" if r["early_stopped"] else ""
        stopped = stopped or (f" (cap {r['epoch_cap']})" if r.get("epoch_cap") else "")
        rows.append([r["run"], label(r["arch"]), r["seed"], f"{r['epochs_trained']}{stopped}", r["checkpoint_epoch"],
                     _pct(r["accuracy"]), _pct(r["macro_f1"]), f"{r['train_seconds'] / 60:.1f}",
                     f"{r['train_windows_per_s']:.0f}", by.get("finished_utc", "–")])
    lines = [_table(["run", "model", "seed", "epochs trained", "best epoch", "test accuracy %", "test macro-F1 %",
                     "training min", "train windows/s (median epoch)", "finished (UTC)"], rows)]
    if result["missing"]:
        lines += ["", f"Not finished (not in any table): {', '.join(result['missing'])}."]
    return lines


def _deployment_table(result: dict) -> list[str]:
    prof = result["profile"]
    if prof is None:
        return ["No latency profile: give `--profile PATH/profile.json` (a `jazbat profile` result) or install the "
                "latency profiler (`pip install -e '.[export]'`) and rerun."]
    rows, mismatch = [], []
    for m in result["models"]:
        p = m["profile"]
        if p is None:
            rows.append([m["label"], "not in the profile"] + ["–"] * 10)
            continue
        if (p["params_total"], p["macs"]) != (m["params_total"], m["macs"]):
            mismatch.append(m["label"])
        a, mem, lat = p["artifact_bytes"], p["memory_bytes"], p["latency_median_ms"]
        rows.append([m["label"], f"{p['origin']}; {p['params_total']:,} params, {p['macs']:,} MACs",
                     _kb(a.get("tflite_fp32")), _kb(a.get("tflite_dynamic_int8")), _kb(a.get("onnx")),
                     _kb(mem["jax_xla_temp"]), _kb(mem["onnxruntime_activation_peak"]),
                     _kb(mem["tflite_heap_growth_xnnpack"]), _ms(lat.get("jax")), _ms(lat.get("tflite")),
                     _ms(lat.get("tflite_dynamic_int8")), _ms(lat.get("onnx"))])
    lines = [_table(["model", "profiled model", "TFLite FP32 KB", "TFLite dyn-INT8 KB", "ONNX KB",
                     "JAX XLA temp KB", "ONNX Runtime activation peak KB", "TFLite heap growth (XNNPACK) KB",
                     "JAX ms", "TFLite FP32 ms", "TFLite dyn-INT8 ms", "ONNX Runtime ms"], rows), "",
             f"Batch 1, median latency. Protocol: {prof.get('protocol')}. KB = 1,000 bytes. Activation memory: "
             "XLA `memory_analysis()` temp bytes; ONNX Runtime's arena peak during a run; the C heap's growth across "
             "TFLite's `allocate_tensors()` with XNNPACK (docs/export.md, deployment profile)."]
    for m in result["models"]:
        for runtime, why in ((m["profile"] or {}).get("unavailable") or {}).items():
            lines.append(f"- {m['label']}, {runtime}: not available ({why})")
    if mismatch:
        folders = " ".join(f"OUT/runs/{next(r['job'] for r in result['runs'] if r['arch'] == m['arch'])}/run"
                           for m in result["models"])
        lines += ["", f"**The profiled model differs from the trained one** for {', '.join(mismatch)} (parameters or "
                  "MACs above): the profile timed another configuration (e.g. `jazbat profile`'s 6-class defaults), "
                  "and the figure's latency panel shows those times. For figures of the trained models, profile their "
                  f"run folders: `jazbat profile --models {folders} --batch 1 --ops --out DIR`, then "
                  "`--profile DIR/profile.json`."]
    return lines


def _provenance_lines(result: dict, command: str, load_now: list[float] | None, machine: dict) -> list[str]:
    lines = [f"- **This report** (tables, parameters, MACs, bootstrap intervals, figure): `{command}`, "
             f"{result['created_utc']}, {_machine(machine)}; load average (1/5/15 min) {_loads(load_now)}."]
    by_command: dict[str, list[dict]] = {}
    for r in result["runs"]:
        by_command.setdefault(r["trained_by"]["command"] or "an earlier invocation", []).append(r)
    for cmd, rs in by_command.items():
        for r in rs:
            t = r["trained_by"]
            lines.append(f"- **{r['run']}** (accuracy, macro-F1, epochs, training time): finished by `{cmd}` at "
                         f"{t['finished_utc']}{' (resumed)' if t.get('resumed') else ''}, {(t['wall_s'] or 0) / 60:.1f} "
                         f"min, {_machine(t.get('machine'))}; {_when(t)}.")
    prof = result["profile"]
    if prof:
        lines.append(f"- **Exported files** (sizes, activation memory, latency): `{prof['command']}`, "
                     f"{prof['created_utc']}, {_machine(prof.get('machine'))}; {_when(prof)}; read from "
                     f"`{prof['path']}`.")
    lines.append("- Timings were taken on a machine other work may share: compare them within one report, and read "
                 "a busy machine's figures as upper bounds.")
    return lines


BASELINES_NOTE = ("DeepConvLSTM, TinyHAR and the 1D ResNet are **re-implementations** of published baselines from "
                  "their papers' descriptions (`jazbat_jax/baselines.py`, docs/model.md: what each paper states and "
                  "what we chose where it is silent), trained here under the same protocol as every other model; "
                  "they are not the authors' code or weights.")


def _progress_lines(result: dict) -> list[str]:
    """A comparison still running says so first: how many of its runs finished, per model."""
    if not result["missing"]:
        return []
    s = result["settings"]
    finished = {arch: sum(r["arch"] == arch for r in result["runs"]) for arch in s["archs"]}
    per_model = ", ".join(f"{label(a)} {n} of {len(s['seeds'])}" for a, n in finished.items())
    return [f"**In progress: {len(result['runs'])} of {len(result['runs']) + len(result['missing'])} runs finished** "
            f"(seeds per model: {per_model}). The tables show the finished runs only; the same command resumes the "
            "rest (an interrupted run after its last completed epoch).", ""]


def render(result: dict, command: str, load_now: list[float] | None, machine: dict) -> str:
    archs = [m["arch"] for m in result["models"]]
    names = ", ".join(label(a) for a in archs)
    notes = [SURROGATE_NOTE] if "sota_surrogate" in archs else []
    notes += [BASELINES_NOTE] if set(archs) & {"deepconvlstm", "tinyhar", "resnet1d"} else []
    lines = [f"# Accuracy against complexity on WISDM 2019 (watch, subject split): {names}", "",
             *_progress_lines(result), *[x for n in notes for x in (n, "")], "## Setup", "", *_setup_lines(result), "",
             "## Accuracy and complexity", "", *_summary_table(result), "",
             "![accuracy against MACs, latency and file size](pareto.png)", "",
             "## Runs", "", *_runs_table(result), "",
             "## Exported files: size, activation memory and latency", "", *_deployment_table(result), "",
             "## How these numbers were made", "", *_provenance_lines(result, command, load_now, machine), ""]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> Path:
    """Pooled test accuracy with its 95% interval against MACs, batch-1 latency and TFLite FP32 file size
    (log x): one point per model, every model with its interval."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullFormatter

    fig = Figure(figsize=(16, 5.2))
    ax_macs, ax_lat, ax_size = fig.subplots(1, 3)
    archs = tuple(m["arch"] for m in result["models"])
    runtime = next((rt for rt in PLOT_RUNTIMES if any((m["profile"] or {}).get("latency_median_ms", {}).get(rt)
                                                      for m in result["models"])), None)

    def x_of(m: dict, key: str | None) -> float | None:
        prof = m["profile"] or {}
        if key == "macs":
            return m["macs"] / 1e6
        if key == "size":
            size = (prof.get("artifact_bytes") or {}).get("tflite_fp32")
            return None if size is None else size / 1e3
        return prof.get("latency_median_ms", {}).get(key) if key else None

    for ax, key in ((ax_macs, "macs"), (ax_lat, runtime), (ax_size, "size")):
        xs, notes = [], set()
        for m in result["models"]:
            x = x_of(m, key)
            if x is None:
                if m["profile"] is not None and key != "macs":
                    notes.add(f"{m['label']}: no file / time (see report.md)")
                continue
            p = m["pooled"]
            y = 100 * p["accuracy"]
            err = None if p["ci"] is None else [[y - 100 * p["ci"][0]], [100 * p["ci"][1] - y]]
            marker, colour = style(m["arch"], archs)
            ax.errorbar([x], [y], yerr=err, fmt=marker, color=colour, markersize=9, capsize=5, elinewidth=1.5,
                        label=f"{m['label']} ({m['params_total'] / 1e3:,.1f}K params, {len(m['seeds'])} "
                              f"seed{'s' if len(m['seeds']) != 1 else ''})")
            ax.annotate(m["label"], (x, y), xytext=(8, 6), textcoords="offset points", fontsize=8)
            xs.append(x)
            if p["ci"] is None:
                notes.add("no interval: a single test participant")
            if key != "macs" and (m["profile"]["params_total"], m["profile"]["macs"]) != (m["params_total"], m["macs"]):
                notes.add("measured on another configuration than the trained model (see report.md)")
        if not xs:
            ax.text(0.5, 0.5, "no latency profile\n(see report.md)", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 2.5, max(xs) * 2.5)
        # 1-2-5 ticks while the points span under two decades; wider, their labels run together: decades only
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5) if max(xs) / min(xs) < 100 else (1,)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
        ax.margins(y=0.2)  # room for the labels above the markers
        ax.set_ylabel("pooled test accuracy (%)")
        if notes:
            ax.text(0.02, 0.02, "\n".join(sorted(notes)), transform=ax.transAxes, fontsize=7, color="#555555")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    ax_macs.set_xlabel("MACs per window (millions, log scale)")
    ax_macs.set_title("Accuracy against compute", fontsize=10)
    if runtime:
        ax_lat.set_xlabel(f"median batch-1 latency (ms, log scale)\n{RUNTIME_LABELS[runtime]}")
        ax_lat.set_title("Accuracy against latency (this machine)", fontsize=10)
    ax_size.set_xlabel("TFLite FP32 file size (KB = 1,000 bytes, log scale)")
    ax_size.set_title("Accuracy against file size", fontsize=10)
    s = result["settings"]
    notes = ["error bars: 95% bootstrap interval over test participants"]
    if "sota_surrogate" in archs:
        notes.append("S-754 is a complexity-matched surrogate of [9], not [9]'s network")
    if set(archs) & {"deepconvlstm", "tinyhar", "resnet1d"}:
        notes.append("DeepConvLSTM, TinyHAR, 1D ResNet: re-implementations")
    fig.suptitle(f"WISDM 2019 watch |a|, subject split, window {s['window']} step {s['step']}, seeds pooled per "
                 f"model ({result['created_utc']})\n" + "; ".join(notes), fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def write_report(s: Settings, out: Path, command: str, profile_path: Path | None = None) -> Path:
    """Write OUT/accuracy_cost.json, OUT/report.md and OUT/pareto.png from the finished runs; the report's path."""
    out = Path(out)
    result = collect(s, out, profile_path)
    if not result["runs"]:
        raise ValueError(f"no finished run in {out / 'runs'}: train first (without --report-only)")
    machine, load_now = machine_info(), load_average()
    write_json(out / "accuracy_cost.json", {**result, "command": command, "machine": machine, "load_average": load_now})
    plot(result, out / "pareto.png")
    return write_atomically(out / "report.md", render(result, command, load_now, machine))


def run(s: Settings, out: str | Path, command: str, progress: bool = True, profile: Path | None = None,
        latency: bool = True, latency_runs: int = 100, latency_warmup: int = 5, report_only: bool = False,
        ray_options=None, in_process: bool = False, log: Callable[[str], None] = print) -> Path:
    """Train what is missing, profile the exported models, write the report; the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not report_only:
        train_runs(s, out, command, progress, ray_options, in_process, log)
    profile_path = latency_profile(s, out, profile, latency and not report_only, latency_runs, latency_warmup, log)
    return write_report(s, out, command, profile_path)
