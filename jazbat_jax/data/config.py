"""One data configuration for every command: which dataset, which input, which windows, which split.

``DataConfig`` is frozen and typed; ``load_split(config)`` turns it into windows and a split. The
training commands, the experiment grid, ``jazbat data``, ``evaluate``, ``predict`` and the export
gate all build one and call the same function, and every checkpoint stores ``config.to_dict()``
(with ``schema``), so a model can always rebuild exactly the data it was trained on.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .core import Split, WindowSet
from .inputs import INPUT_KINDS, MAG_MODES
from .paths import bundled_sample_root, data_root
from .splits import PROTOCOLS, split_windows
from .wisdm import ACTIVITY_CODES, DEVICES

# 2: the validation subjects of a k-fold subject split rotate with the fold (1: mostly the same people)
SCHEMA = 2
DATASETS = ("wisdm", "quiroz", "seecs")
LABELS = ("true", "permuted")  # permuted: the leakage control of data.controls
# as_recorded: the accelerometer as the dataset gives it; removed: high-passed per recording (data.matching),
# for datasets whose accelerometer includes gravity (WISDM, SEECS), so that their input matches Quiroz's.
GRAVITY_MODES = ("as_recorded", "removed")
# Each dataset's folder inside a data root (../shared/data, $JAZBAT_DATA_ROOT or the bundled sample).
DATASET_FOLDERS = {"wisdm": "wisdm2019", "quiroz": "quiroz2018_emotion_walking"}
# The paper's window strides: 32 samples for WISDM, 16 for the emotion data.
DEFAULT_STEP = {"wisdm": 32, "quiroz": 16, "seecs": 16}
BUNDLED = "bundled"  # DataConfig.root value: the sample shipped with the package, wherever it is installed


def dataset_folder(base: Path, dataset: str) -> Path:
    """``dataset``'s usual folder inside ``base`` when ``base`` is a data root holding it, else ``base``
    itself (a folder given as the dataset's own)."""
    sub = base / DATASET_FOLDERS.get(dataset, "")
    return sub if dataset in DATASET_FOLDERS and sub.is_dir() else base


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which value and why."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """How windows are split into train / val / test (see ``data.splits``)."""

    protocol: str = "subject"  # subject (no person in two parts) | random (the paper's, leaky) | time
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    seed: int = 0
    n_folds: int | None = None  # k-fold: fold ``fold`` of ``n_folds`` is the test part
    fold: int | None = None

    def __post_init__(self):
        _check(self.protocol in PROTOCOLS, f"split protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        _check(0 < self.test_fraction < 1 and 0 <= self.val_fraction < 1,
               f"test_fraction must be in (0, 1) and val_fraction in [0, 1), got {self.test_fraction}, {self.val_fraction}")
        _check((self.n_folds is None) == (self.fold is None), "give n_folds and fold together (k-fold) or neither")
        if self.n_folds is not None:
            _check(self.n_folds >= 2 and 0 <= self.fold < self.n_folds,
                   f"need n_folds >= 2 and 0 <= fold < n_folds, got n_folds={self.n_folds}, fold={self.fold}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Everything that decides a model's training windows."""

    dataset: str = "wisdm"  # wisdm | quiroz | seecs
    # None: ../shared/data or $JAZBAT_DATA_ROOT, else the bundled sample; "bundled"; a folder; or a data label
    # ("quiroz@<fingerprint>", data.fingerprint): the folder that holds exactly those files, wherever it is
    root: str | None = None
    input_kind: str = "1d"  # 1d |a| | 3d a_xyz | 6d a_xyz + ω_xyz
    mag_mode: str = "norm_minus_g"  # 1D magnitude of gravity-including data (see data.inputs)
    window: int = 256
    step: int = 0  # 0: the paper's stride for the dataset (DEFAULT_STEP)
    device: str = "watch"  # WISDM only: phone | watch (never mixed)
    activities: str | None = None  # WISDM only: activity codes to keep, in class order (None: all 18)
    subjects: tuple[int, ...] | None = None  # subjects / participants to keep (None: all)
    max_windows: int | None = None  # keep a seeded random subset of this many windows before splitting
    on_bad_line: str = "raise"  # raw WISDM text: stop at a malformed line, or skip it (and count it)
    split: SplitConfig = SplitConfig()
    labels: str = "true"  # true | permuted among each participant's recordings (data.controls)
    label_seed: int = 0  # the permutation's seed
    gravity: str = "as_recorded"  # as_recorded | removed (WISDM, SEECS: a high-pass per recording, data.matching)
    resample_hz: float | None = None  # Quiroz only: resample each walk from ~25 Hz to this rate (e.g. WISDM's 20)

    def __post_init__(self):
        _check(self.dataset in DATASETS, f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        _check(self.input_kind in INPUT_KINDS, f"input kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        _check(self.mag_mode in MAG_MODES, f"mag_mode must be one of {MAG_MODES}, got {self.mag_mode!r}")
        _check(self.window >= 8, f"window must be at least 8 samples, got {self.window}")
        if not self.step:
            object.__setattr__(self, "step", DEFAULT_STEP[self.dataset])
        _check(self.step >= 1, f"step must be >= 1, got {self.step}")
        _check(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        if self.activities is not None:
            acts = self.activities
            _check(bool(acts) and len(set(acts)) == len(acts) and all(a in ACTIVITY_CODES for a in acts),
                   f"activities must be distinct WISDM codes from {ACTIVITY_CODES} (there is no N), got {acts!r}")
        if self.subjects is not None:
            object.__setattr__(self, "subjects", tuple(int(s) for s in self.subjects))
            _check(len(self.subjects) > 0, "subjects must be None (all) or a non-empty list")
        _check(self.max_windows is None or self.max_windows >= 10, f"max_windows must be >= 10, got {self.max_windows}")
        _check(self.labels in LABELS, f"labels must be one of {LABELS}, got {self.labels!r}")
        _check(self.on_bad_line in ("raise", "skip"), f"on_bad_line must be 'raise' or 'skip', got {self.on_bad_line!r}")
        _check(self.gravity in GRAVITY_MODES, f"gravity must be one of {GRAVITY_MODES}, got {self.gravity!r}")
        _check(self.gravity == "as_recorded" or self.dataset != "quiroz",
               "Quiroz 2018 already holds linear acceleration (the watch removed gravity): leave gravity at "
               "'as_recorded' for it")
        _check(self.gravity == "as_recorded" or self.input_kind != "1d" or self.mag_mode != "paper_literal",
               "mag_mode 'paper_literal' needs gravity in the signal: with gravity 'removed' the 1D input is |a_lin| "
               "(use mag_mode 'norm')")
        if self.resample_hz is not None:
            _check(self.dataset == "quiroz",
                   f"resample_hz is for the Quiroz walks (no timestamps, ~25 Hz); {self.dataset} is used at its "
                   "recorded rate: leave resample_hz unset")
            object.__setattr__(self, "resample_hz", float(self.resample_hz))
            _check(self.resample_hz > 0, f"resample_hz must be > 0, got {self.resample_hz}")
        _check(self.dataset != "seecs" or self.root not in (None, BUNDLED),
               "the SEECS data are not public and not bundled: give the folder of your SEECS-layout copy "
               "(--data-root); see docs/data.md for the layout")
        if isinstance(self.split, dict):
            object.__setattr__(self, "split", SplitConfig(**self.split))

    def replace(self, **changes: Any) -> "DataConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["subjects"] = list(self.subjects) if self.subjects is not None else None
        # Fields added later are not stored at their defaults, so that configurations made before them keep their hash.
        if self.labels == "true":
            del d["labels"], d["label_seed"]
        if self.gravity == "as_recorded":
            del d["gravity"]
        if self.resample_hz is None:
            del d["resample_hz"]
        return {"schema": SCHEMA, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataConfig":
        """The inverse of ``to_dict``; a dict of another schema is refused, never half-read."""
        if d.get("schema") != SCHEMA:
            raise ConfigError(f"data configuration of schema {d.get('schema')!r}; this version reads schema {SCHEMA} "
                              "(the run was made by another version of jazbat-jax: retrain it with this one)")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields - {"schema"})
        _check(not unknown, f"unknown data configuration keys {unknown}")
        d = {k: v for k, v in d.items() if k != "schema"}
        if "split" in d:
            d["split"] = SplitConfig(**d["split"])
        return cls(**d)

    def without_split(self) -> "DataConfig":
        """The same windows with the default split and true labels: a key for caching loaded windows."""
        return self.replace(split=SplitConfig(), labels="true", label_seed=0)


def resolve_root(config: DataConfig) -> Path:
    """The dataset's folder for ``config.root`` (see ``DataConfig.root``)."""
    from .fingerprint import is_label, locate

    if is_label(config.root):
        return locate(config.root, DATASET_FOLDERS.get(config.dataset))
    if config.root is None:
        base = data_root()
    elif config.root == BUNDLED:
        base = bundled_sample_root()
    else:
        path = Path(config.root).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data folder {path} does not exist")
        return path
    return base / DATASET_FOLDERS.get(config.dataset, "")


def load_windows(config: DataConfig) -> WindowSet:
    """The windows of ``config`` (before ``max_windows`` and the split)."""
    from . import quiroz, seecs, wisdm

    root = resolve_root(config)
    common = dict(input_kind=config.input_kind, mag_mode=config.mag_mode, window=config.window, step=config.step)
    remove_gravity = config.gravity == "removed"
    if config.dataset == "wisdm":
        return wisdm.load_wisdm(root, device=config.device, activities=config.activities, subjects=config.subjects,
                                on_bad_line=config.on_bad_line, remove_gravity=remove_gravity, **common)
    if config.dataset == "quiroz":
        return quiroz.load_quiroz(root, participants=config.subjects, resample_hz=config.resample_hz, **common)
    ws = seecs.load_seecs(root, remove_gravity=remove_gravity, **common)
    if config.subjects is not None:
        keep = np.flatnonzero(np.isin(ws.subject, np.asarray(config.subjects)))
        if not len(keep):
            raise ValueError(f"none of the subjects {list(config.subjects)} is in {root}")
        ws = ws.subset(keep)
    return ws


def split_of(config: DataConfig, ws: WindowSet) -> tuple[WindowSet, Split]:
    """Apply ``max_windows``, the labels and the split of ``config`` to already loaded windows."""
    if config.max_windows is not None and config.max_windows < len(ws):
        rng = np.random.default_rng(config.split.seed)
        ws = ws.subset(np.sort(rng.choice(len(ws), config.max_windows, replace=False)))
    if config.labels == "permuted":
        from .controls import permute_labels

        ws = permute_labels(ws, config.label_seed)
    s = config.split
    return ws, split_windows(ws, s.protocol, test_fraction=s.test_fraction, val_fraction=s.val_fraction,
                             seed=s.seed, n_folds=s.n_folds, fold=s.fold)


def load_split(config: DataConfig) -> tuple[WindowSet, Split]:
    """(windows, split) of ``config``: the one way every command turns a configuration into data."""
    return split_of(config, load_windows(config))
