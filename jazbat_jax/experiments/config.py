"""The experiment grid (the paper's Table VI design on public data) from one config file.

A config is a nested dict: a built-in profile (``quick`` or ``full``) with the values of an
optional JSON or TOML file merged on top. Every cell's settings are derived from it, and a
short hash of those settings names the cell's folder, so a changed setting never reuses a
stale result.

Sections::

    profile      "quick" | "full"  (the base the file's values are merged onto)
    data_root    "bundled" (the sample shipped with the package) | "auto" (../shared/data or
                 $JAZBAT_DATA_ROOT, else the bundled sample) | a folder path
    data_labels  null, or {dataset: "dataset@fingerprint"}: the exact data the jobs are named by
                 (``data.fingerprint``). A run records them in RESULTS/config.json, so that a report
                 rebuilt on a machine without those data still finds every job
    target       dataset ("quiroz" | "seecs"), root (SEECS folder; required for seecs),
                 window, step, participants (list or null = all),
                 resample_hz (Quiroz: resample each walk from ~25 Hz to this rate; null = as recorded)
    pretrain     epochs, batch_size, learning_rate, step, activities (WISDM codes),
                 watch_subjects / phone_subjects (list or null = every subject the data has),
                 test_fraction, val_fraction, seed (pretraining is a subject hold-out on WISDM),
                 seeds (null = [seed]: the trunks' training seeds; the fine-tuning seeds use them in
                 turn, so that pretraining variance is in the error bars),
                 gravity ("as_recorded" | "removed": WISDM acceleration high-passed per recording)
    finetune     epochs, batch_size, learning_rate, val_fraction
                 (pretrain and finetune: patience, early stopping on validation macro-F1 with
                 ``epochs`` as the maximum; null = the fixed schedule)
    grid         enabled (false: no grid cell, e.g. for the personal models alone), inputs, pretraining ("none" | "none_k18" | "watch" | "phone"; none_k18: from scratch
                 with the transferred models' reduction width K = 18), protocols ("subject" |
                 "random"), n_folds, folds (which folds to run; null = all), seeds, split_seed,
                 labels ("true" and / or "permuted": the leakage control, each walk given another
                 walk's label of the same participant, seeded by the run's seed),
                 random_steps (window steps of the random split; null = target.step),
                 identity_probes (the forest also asked which participant / walk a window came
                 from, under the random split),
                 input_variants (null: one grid with the inputs above; or a list of "paper" and / or
                 "matched": one grid per variant, side by side in RESULTS/<variant>/, see INPUT_VARIANTS)
    baseline     enabled, n_estimators, max_depth, fit_on ("train": the network's training
                 participants, a fair comparison; "train+val": also the validation part, which
                 the network uses only to pick its checkpoint)
    latency      enabled, models ("arch:input"), runs, warmup: the export profile in the report
    personal     Quiroz et al.'s own protocol (experiments/personal.py): one model per participant
                 (planned when target.dataset is "quiroz").
                 enabled; classes (Quiroz emotions, default ["happy", "sad"]); inputs; splits ("shuffled":
                 the study's repeated stratified k-fold over a person's windows | "time_block": k contiguous
                 blocks per walk, no sample on both sides); labels ("true" and / or "permuted"); n_folds;
                 repeats (of the shuffled split; the time blocks are fixed); seed (the folds, the
                 permutation, and with participant, repeat and fold each run's own seed); participants
                 (list or null = all); neutral_halves (also the null with no emotion difference: each
                 person's neutral walk cut in two, "first half" vs "second half", through the same protocol,
                 true labels only);
                 forest_window, forest_step, forest_trees (the random forest on the study's 1-s windows:
                 25 samples at 25 Hz, 50% overlap);
                 deep_models (Jazbat-Net: "none" from scratch, "watch" / "phone" from the WISDM trunk of
                 the pretrain section; [] = forest only), deep_epochs, deep_step, deep_batch_size,
                 deep_learning_rate (the network's window is target.window), deep_folds (which folds;
                 null = all) and deep_participants (null = those of ``participants``): a personal network
                 per person and fold is a training run of its own (set-up, checkpoints, evaluation; the
                 cost is in docs/experiments.md), so the quick profile trains them on one fold of four
                 participants; the forest runs everything
"""
from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

from jazbat_jax.data.config import GRAVITY_MODES, LABELS, ConfigError
from jazbat_jax.data.inputs import INPUT_KINDS as INPUTS
from jazbat_jax.data.wisdm import ACTIVITY_CODES as ALL_ACTIVITIES

PRETRAININGS = ("none", "none_k18", "watch", "phone")
TRUNKS = ("watch", "phone")  # the pretrainings that train a WISDM trunk
TRUNK_K = 18  # the reduction width a WISDM trunk carries into fine-tuning (K = C = 18 activities)
# Named input settings (pretrain.gravity, target.resample_hz). "paper": the inputs as the paper used them
# (WISDM with gravity at ~20 Hz, Quiroz's linear acceleration at ~25 Hz, so 1D / 3D / 6D mean different
# signals in source and target); "matched": WISDM with gravity removed and Quiroz resampled to WISDM's
# nominal 20 Hz, so that both are linear acceleration at one rate (docs/data.md, "Matched inputs").
INPUT_VARIANTS = {
    "paper": {"gravity": "as_recorded", "resample_hz": None},
    "matched": {"gravity": "removed", "resample_hz": 20.0},
}
PROTOCOLS = ("subject", "random")
PERSONAL_SPLITS = ("shuffled", "time_block")
PERSONAL_DEEP_MODELS = ("none", "watch", "phone")  # Jazbat-Net from scratch, or from a WISDM trunk of that device
TARGETS = ("quiroz", "seecs")

# The quick profile: the bundled sample (identical on every machine, no download), 1D only,
# short training, 3 folds, 1 seed: every section of the report, sized to a few minutes on 2 CPU cores.
QUICK: dict[str, Any] = {
    "profile": "quick",
    "data_root": "bundled",
    "data_labels": None,
    "target": {"dataset": "quiroz", "root": None, "window": 256, "step": 32, "participants": None,
               "resample_hz": None},
    "pretrain": {
        "epochs": 4, "batch_size": 32, "learning_rate": 1e-3, "step": 64,
        "activities": ALL_ACTIVITIES, "watch_subjects": None, "phone_subjects": None,
        "test_fraction": 0.2, "val_fraction": 0.1, "seed": 0, "seeds": None, "patience": None, "gravity": "as_recorded",
    },
    "finetune": {"epochs": 3, "batch_size": 32, "learning_rate": 1e-3, "val_fraction": 0.1, "patience": None},
    "grid": {
        "enabled": True, "inputs": ["1d"], "pretraining": ["none", "watch"], "protocols": ["subject", "random"],
        "n_folds": 3, "folds": None, "seeds": [0], "split_seed": 0,
        "labels": ["true", "permuted"], "random_steps": None, "identity_probes": True, "input_variants": None,
    },
    "baseline": {"enabled": True, "n_estimators": 200, "max_depth": None, "fit_on": "train"},
    # The study's personal models: the forest on the full protocol (10 folds, one repeat; 50 trees), Jazbat-Net
    # on the first fold of two participants only (each personal network is a run of its own).
    "personal": {
        "enabled": True, "classes": ["happy", "sad"], "inputs": ["1d"], "splits": ["shuffled", "time_block"],
        "labels": ["true", "permuted"], "n_folds": 10, "repeats": 1, "seed": 0, "participants": None,
        "neutral_halves": False, "forest_window": 25, "forest_step": 12, "forest_trees": 50,
        "deep_models": ["none", "watch"], "deep_epochs": 3, "deep_step": 32, "deep_batch_size": 32,
        "deep_learning_rate": 1e-3, "deep_folds": [0], "deep_participants": [2, 3],
    },
    # `jazbat profile` of the exported models (sizes, latency of JAX / TFLite / ONNX at batch 1)
    "latency": {"enabled": True, "models": ["jazbat_net:1d", "sota_surrogate:1d"], "runs": 50, "warmup": 5},
}

# The full profile: the paper's epochs (40 pretraining, 90 fine-tuning) and steps (32 WISDM,
# 16 emotions), all data, all inputs and pretrainings, 5 folds, 3 seeds. Days of CPU time.
FULL: dict[str, Any] = {
    "profile": "full",
    "data_root": "auto",
    "data_labels": None,
    "target": {"dataset": "quiroz", "root": None, "window": 256, "step": 16, "participants": None,
               "resample_hz": None},
    "pretrain": {
        "epochs": 40, "batch_size": 32, "learning_rate": 1e-3, "step": 32,
        "activities": ALL_ACTIVITIES, "watch_subjects": None, "phone_subjects": None,
        "test_fraction": 0.2, "val_fraction": 0.1, "seed": 0, "seeds": [0, 1, 2], "patience": None, "gravity": "as_recorded",
    },
    "finetune": {"epochs": 90, "batch_size": 32, "learning_rate": 1e-3, "val_fraction": 0.1, "patience": None},
    "grid": {
        "enabled": True, "inputs": ["1d", "3d", "6d"], "pretraining": ["none", "none_k18", "watch", "phone"],
        "protocols": ["subject", "random"],
        "n_folds": 5, "folds": None, "seeds": [0, 1, 2], "split_seed": 0,
        "labels": ["true", "permuted"], "random_steps": [16, 64], "identity_probes": True, "input_variants": None,
    },
    "baseline": {"enabled": True, "n_estimators": 300, "max_depth": None, "fit_on": "train"},
    # The study's protocol: 10 × 10 repeated stratified k-fold for the forest; Jazbat-Net on all folds.
    "personal": {
        "enabled": True, "classes": ["happy", "sad"], "inputs": ["1d", "6d"], "splits": ["shuffled", "time_block"],
        "labels": ["true", "permuted"], "n_folds": 10, "repeats": 10, "seed": 0, "participants": None,
        "neutral_halves": True, "forest_window": 25, "forest_step": 12, "forest_trees": 300,
        "deep_models": ["none", "watch"], "deep_epochs": 20, "deep_step": 16, "deep_batch_size": 32,
        "deep_learning_rate": 1e-3, "deep_folds": None, "deep_participants": None,
    },
    "latency": {"enabled": True, "models": ["jazbat_net:1d", "jazbat_net:3d", "jazbat_net:6d", "sota_surrogate:1d"],
                "runs": 100, "warmup": 5},
}

PROFILES = {"quick": QUICK, "full": FULL}


def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k not in base:
            raise ConfigError(f"unknown config key {where + k!r}; known: {sorted(base)}")
        if isinstance(base[k], dict) and v is not None:
            if not isinstance(v, dict):
                raise ConfigError(f"config key {where + k!r} must be a table/object")
            out[k] = _merge(base[k], v, f"{where}{k}.")
        else:
            out[k] = v
    return out


def read_file(path: str | Path) -> dict:
    """A JSON (.json) or TOML (.toml) config file as a dict."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot parse {path}: {e}") from e
    raise ConfigError(f"config file {path} must end in .json or .toml")


def load_config(profile: str | None = None, path: str | Path | None = None) -> dict:
    """The built-in ``profile`` (default: the file's ``profile`` key, else quick) with the file merged on top."""
    over = read_file(path) if path else {}
    name = profile or over.get("profile") or "quick"
    if name not in PROFILES:
        raise ConfigError(f"profile must be one of {sorted(PROFILES)}, got {name!r}")
    over = {k: v for k, v in over.items() if k != "profile"}
    cfg = _merge(PROFILES[name], over)
    cfg["profile"] = name
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    from jazbat_jax.data.fingerprint import is_label

    g, t = cfg["grid"], cfg["target"]
    if not isinstance(g["enabled"], bool):
        raise ConfigError(f"grid.enabled must be true or false, got {g['enabled']!r}")
    labels = cfg.get("data_labels")
    if labels is not None and (not isinstance(labels, dict) or not all(is_label(v) for v in labels.values())):
        raise ConfigError(f"data_labels must be null or {{dataset: 'dataset@fingerprint'}}, got {labels!r}")
    for key, allowed in (("inputs", INPUTS), ("pretraining", PRETRAININGS), ("protocols", PROTOCOLS),
                         ("labels", LABELS)):
        vals = g[key]
        if not vals or any(v not in allowed for v in vals) or len(set(vals)) != len(vals):
            raise ConfigError(f"grid.{key} must be distinct values from {allowed}, got {vals!r}")
    if not isinstance(g["n_folds"], int) or g["n_folds"] < 2:
        raise ConfigError(f"grid.n_folds must be an integer >= 2, got {g['n_folds']!r}")
    if g["folds"] is not None and (not g["folds"] or any(not 0 <= f < g["n_folds"] for f in g["folds"])):
        raise ConfigError(f"grid.folds must be null or fold numbers in [0, {g['n_folds']}), got {g['folds']!r}")
    ps = cfg["pretrain"]["seeds"]
    if ps is not None and (not ps or len(set(ps)) != len(ps) or any(not isinstance(v, int) for v in ps)):
        raise ConfigError(f"pretrain.seeds must be null or distinct integers, got {ps!r}")
    if cfg["baseline"]["fit_on"] not in ("train", "train+val"):
        raise ConfigError(f"baseline.fit_on must be 'train' or 'train+val', got {cfg['baseline']['fit_on']!r}")
    steps = g["random_steps"]
    if steps is not None and (not steps or len(set(steps)) != len(steps)
                              or any(not isinstance(v, int) or v < 1 for v in steps)):
        raise ConfigError(f"grid.random_steps must be null or distinct integers >= 1, got {steps!r}")
    if "true" not in g["labels"]:
        raise ConfigError("grid.labels must include 'true' (the permuted labels are a control beside the true ones)")
    if not g["seeds"] or len(set(g["seeds"])) != len(g["seeds"]):
        raise ConfigError(f"grid.seeds must be a non-empty list of distinct integers, got {g['seeds']!r}")
    if t["dataset"] not in TARGETS:
        raise ConfigError(f"target.dataset must be one of {TARGETS}, got {t['dataset']!r}")
    if t["dataset"] == "seecs" and not t["root"]:
        raise ConfigError("target.dataset 'seecs' needs target.root: the folder of your SEECS-layout data "
                          "(the data are closed; see docs/data.md for the layout)")
    p = cfg["pretrain"]
    if p["gravity"] not in GRAVITY_MODES:
        raise ConfigError(f"pretrain.gravity must be one of {GRAVITY_MODES}, got {p['gravity']!r}")
    rate = t["resample_hz"]
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1e4):
        raise ConfigError(f"target.resample_hz must be null or a rate in Hz > 0, got {rate!r}")
    if rate is not None and t["dataset"] != "quiroz":
        raise ConfigError("target.resample_hz is for the Quiroz walks (no timestamps); SEECS data are used at their "
                          "recorded rate: set it to null")
    names = g["input_variants"]
    if names is not None:
        if not names or any(v not in INPUT_VARIANTS for v in names) or len(set(names)) != len(names):
            raise ConfigError(f"grid.input_variants must be null or distinct names from {list(INPUT_VARIANTS)}, "
                              f"got {names!r}")
        if (p["gravity"], rate) != ("as_recorded", None):
            raise ConfigError("grid.input_variants sets pretrain.gravity and target.resample_hz for each variant: "
                              "leave those two at their defaults, or set grid.input_variants to null")
        if t["dataset"] != "quiroz":
            raise ConfigError("grid.input_variants matches WISDM to Quiroz 2018; with target.dataset 'seecs' set it "
                              "to null")
    acts = cfg["pretrain"]["activities"]
    if not acts or any(a not in ALL_ACTIVITIES for a in acts) or len(set(acts)) != len(acts):
        raise ConfigError(f"pretrain.activities must be distinct WISDM codes from {ALL_ACTIVITIES}, got {acts!r}")
    for sec in ("pretrain", "finetune"):
        if cfg[sec]["epochs"] < 1 or cfg[sec]["batch_size"] < 1:
            raise ConfigError(f"{sec}.epochs and {sec}.batch_size must be >= 1")
        if cfg[sec]["patience"] is not None and (not isinstance(cfg[sec]["patience"], int) or cfg[sec]["patience"] < 1):
            raise ConfigError(f"{sec}.patience must be null or an integer >= 1, got {cfg[sec]['patience']!r}")
    if cfg.get("personal", {}).get("enabled"):
        _validate_personal(cfg["personal"])


def _validate_personal(p: dict) -> None:
    from jazbat_jax.data.quiroz import EMOTIONS

    for key, allowed in (("classes", EMOTIONS), ("inputs", INPUTS), ("splits", PERSONAL_SPLITS), ("labels", LABELS),
                         ("deep_models", PERSONAL_DEEP_MODELS)):
        vals = p[key]
        if not isinstance(vals, list) or any(v not in allowed for v in vals) or len(set(vals)) != len(vals) \
                or (not vals and key != "deep_models"):
            raise ConfigError(f"personal.{key} must be distinct values from {allowed}, got {vals!r}")
    if len(p["classes"]) < 2:
        raise ConfigError(f"personal.classes needs at least two emotions, got {p['classes']!r}")
    for key, low in (("n_folds", 2), ("repeats", 1), ("forest_window", 10), ("forest_step", 1), ("forest_trees", 1),
                     ("deep_epochs", 1), ("deep_step", 1), ("deep_batch_size", 1)):
        if not isinstance(p[key], int) or p[key] < low:
            raise ConfigError(f"personal.{key} must be an integer >= {low}, got {p[key]!r}")
    if not isinstance(p["seed"], int):
        raise ConfigError(f"personal.seed must be an integer, got {p['seed']!r}")
    if not isinstance(p["neutral_halves"], bool):
        raise ConfigError(f"personal.neutral_halves must be true or false, got {p['neutral_halves']!r}")
    if not p["deep_learning_rate"] > 0:
        raise ConfigError(f"personal.deep_learning_rate must be > 0, got {p['deep_learning_rate']!r}")
    folds = p["deep_folds"]
    if folds is not None and (not folds or any(not isinstance(f, int) or not 0 <= f < p["n_folds"] for f in folds)):
        raise ConfigError(f"personal.deep_folds must be null or fold numbers in [0, {p['n_folds']}), got {folds!r}")
    for key in ("participants", "deep_participants"):
        ids = p[key]
        if ids is not None and (not ids or any(not isinstance(i, int) for i in ids) or len(set(ids)) != len(ids)):
            raise ConfigError(f"personal.{key} must be null (all) or distinct participant ids, got {ids!r}")
    if p["participants"] is not None and p["deep_participants"] is not None \
            and set(p["deep_participants"]) - set(p["participants"]):
        raise ConfigError("personal.deep_participants must be among personal.participants")


def settings_hash(settings: Any) -> str:
    """A short, stable hash of JSON-serialisable settings (names cached results)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


def folds(cfg: dict) -> list[int]:
    g = cfg["grid"]
    return list(range(g["n_folds"])) if g["folds"] is None else list(g["folds"])


def protocol_steps(cfg: dict) -> list[tuple[str, int]]:
    """(protocol, window step) pairs of the grid: the random split may run at several steps."""
    g, step = cfg["grid"], cfg["target"]["step"]
    out = []
    for protocol in g["protocols"]:
        steps = g["random_steps"] if protocol == "random" and g["random_steps"] else [step]
        out += [(protocol, s) for s in steps]
    return out


def pretrain_seeds(cfg: dict) -> list[int]:
    """The training seeds of the WISDM trunks."""
    p = cfg["pretrain"]
    return list(p["seeds"]) if p["seeds"] is not None else [p["seed"]]


def input_variants(cfg: dict) -> list[tuple[str | None, dict]]:
    """(name, config) of each grid to run: [(None, cfg)] when ``grid.input_variants`` is null, else one
    config per variant with its pretrain.gravity and target.resample_hz set (and input_variants null)."""
    names = cfg["grid"]["input_variants"]
    if names is None:
        return [(None, cfg)]
    out = []
    for name in names:
        v = copy.deepcopy(cfg)
        v["pretrain"]["gravity"] = INPUT_VARIANTS[name]["gravity"]
        v["target"]["resample_hz"] = INPUT_VARIANTS[name]["resample_hz"]
        v["grid"]["input_variants"] = None
        out.append((name, v))
    return out
