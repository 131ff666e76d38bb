"""Quiroz et al.'s own protocol: personal (per-participant) models, happy vs sad by default.

The original study trained one model per participant on that person's windows alone (1-s windows,
50% overlap), shuffled them and ran repeated stratified k-fold inside the person. Each person has
exactly one walk per emotion, so inside a personal model "emotion" and "which walk" are the same
label. This module runs that protocol and two controls on it:

- splits inside each person:
  ``shuffled``   the study's: ``sklearn.model_selection.RepeatedStratifiedKFold`` over the person's
                 windows (overlapping neighbours of a test window sit in training);
  ``time_block`` each walk cut into k contiguous blocks of windows; fold i tests block i of every
                 walk, and every training window that shares a sample with a test window is dropped
                 (counted in the result), so no sample is on both sides;
- labels: ``true``, or ``permuted`` among the person's walks (``data.controls.permute_labels``; with
  two walks that swaps them, a pure renaming: a model that separates the walks scores the same in
  expectation, so this control cannot show that the protocol measures the walk);
- the neutral-halves null (``neutral_halves``): each person's neutral walk cut in two, "first half"
  vs "second half", through the same protocol. No emotion differs between the two classes, so what
  a model scores there is what the protocol gives for telling apart two stretches of walking;
- models: ``rf``, the project's random forest on gait features (``baseline.fit_predict``) on the
  study's short windows; Jazbat-Net (``none``: from scratch; ``watch`` / ``phone``: from the grid's
  pretrained WISDM trunk) trained per person and fold with the project's trainer on 256-sample
  windows.

One job per (input, model, split, labels) covers every participant. Its ``result.json`` holds each
participant's accuracy, and its ``test_predictions.npz`` every test prediction with participant,
walk, window start, repeat and fold.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from jazbat_jax.data.core import WindowSet

from jazbat_jax.experiments.config import PERSONAL_SPLITS as SPLITS
from jazbat_jax.experiments.jobs import Job, data_label, pretrain_job
ALPHA = 0.05  # the level at which a participant counts as above chance (after Holm)


# ---------------------------------------------------------------- data
def select_classes(ws: WindowSet, classes: list[str] | tuple[str, ...]) -> WindowSet:
    """The windows of ``classes`` only, relabelled 0..len(classes)-1 in that order."""
    missing = [c for c in classes if c not in ws.class_names]
    if missing:
        raise ValueError(f"classes {missing} are not in the data (it has {list(ws.class_names)})")
    old = [ws.class_names.index(c) for c in classes]
    keep = np.flatnonzero(np.isin(ws.y, old))
    out = ws.subset(keep)
    relabel = np.full(len(ws.class_names), -1, np.int32)
    relabel[old] = np.arange(len(old), dtype=np.int32)
    return dataclasses.replace(out, y=relabel[out.y], class_names=tuple(classes))


HALVES = ("first half", "second half")


def neutral_halves(ws: WindowSet) -> WindowSet:
    """Each neutral walk cut at its middle sample into two walks of their own, labelled ``HALVES``; a
    window that straddles the middle is dropped, so no sample is in both halves. The halves' recording
    ids are 2 × the walk's id + 0 or 1 (unique as the walks' are)."""
    ws = select_classes(ws, ["neutral"])
    end = ws.start + ws.x.shape[1]
    half = np.full(len(ws), -1, np.int32)
    for r in np.unique(ws.recording):
        w = ws.recording == r
        middle = end[w].max() // 2
        half[w & (end <= middle)] = 0
        half[w & (ws.start >= middle)] = 1
    keep = np.flatnonzero(half >= 0)
    out = ws.subset(keep)
    return dataclasses.replace(out, y=half[keep], recording=(2 * out.recording + half[keep]).astype(out.recording.dtype),
                               class_names=HALVES, report={**ws.report, "neutral_halves": {
                                   "straddling_windows_dropped": int(len(ws) - len(keep))}})


# ---------------------------------------------------------------- splits inside one person
@dataclasses.dataclass
class Fold:
    repeat: int
    fold: int
    train: np.ndarray  # indices into the person's windows
    test: np.ndarray
    dropped: int = 0  # training windows dropped because they share a sample with a test window


def shuffled_folds(y: np.ndarray, n_folds: int, repeats: int, seed: int) -> list[Fold]:
    """The study's split: repeated stratified k-fold over the person's shuffled windows."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    counts = np.bincount(y)
    if counts[counts > 0].min() < n_folds:
        raise ValueError(f"a class has {counts[counts > 0].min()} windows, fewer than the {n_folds} folds: "
                         "use fewer folds or a smaller window step")
    rskf = RepeatedStratifiedKFold(n_splits=n_folds, n_repeats=repeats, random_state=seed)
    return [Fold(k // n_folds, k % n_folds, np.sort(tr), np.sort(te))
            for k, (tr, te) in enumerate(rskf.split(np.zeros(len(y)), y))]


def time_block_folds(ws: WindowSet, n_folds: int) -> list[Fold]:
    """Each walk's windows (in time order) cut into ``n_folds`` contiguous blocks; fold i tests block i
    of every walk. A test block covers the samples from its first window's start to its last window's
    end; training windows that touch those samples are dropped, so no sample is on both sides."""
    length = ws.x.shape[1]
    end = ws.start + length
    walks = [np.flatnonzero(ws.recording == r) for r in np.unique(ws.recording)]
    for w in walks:
        if len(w) < n_folds:
            raise ValueError(f"walk {int(ws.recording[w[0]])} of participant {int(ws.subject[w[0]])} has {len(w)} "
                             f"windows, fewer than the {n_folds} time blocks: use fewer folds or a smaller step")
    out = []
    for fold in range(n_folds):
        test, touching = [], []
        for w in walks:
            w = w[np.argsort(ws.start[w], kind="stable")]
            block = np.array_split(w, n_folds)[fold]
            lo, hi = ws.start[block].min(), end[block].max()
            test.append(block)
            touching.append(w[(ws.start[w] < hi) & (end[w] > lo)])  # the block itself and its overlapping neighbours
        test_idx = np.sort(np.concatenate(test))
        train_idx = np.setdiff1d(np.arange(len(ws)), np.concatenate(touching))
        out.append(Fold(0, fold, train_idx, test_idx, dropped=len(ws) - len(test_idx) - len(train_idx)))
    return out


def run_seed(seed: int, participant: int, repeat: int, fold: int) -> int:
    """A run's own seed (forest, or network initialisation and epoch order). Runs of different participants
    never share one draw: a starting point shared by every personal model would tilt them all the same way,
    which the true and the permuted labels would then not meet alike."""
    return int(np.random.SeedSequence([seed, participant, repeat, fold]).generate_state(1)[0] % 2**31)


def person_folds(ws: WindowSet, split: str, n_folds: int, repeats: int, seed: int) -> list[Fold]:
    if split == "shuffled":
        return shuffled_folds(ws.y, n_folds, repeats, seed)
    if split == "time_block":
        return time_block_folds(ws, n_folds)
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def non_overlapping(start: np.ndarray, recording: np.ndarray, length: int) -> np.ndarray:
    """Indices of a subset of windows no two of which share a sample (greedy in time order per walk)."""
    keep = []
    for r in np.unique(recording):
        idx = np.flatnonzero(recording == r)
        idx = idx[np.argsort(start[idx], kind="stable")]
        last_end = -np.inf
        for i in idx:
            if start[i] >= last_end:
                keep.append(i)
                last_end = start[i] + length
    return np.sort(np.asarray(keep, np.int64))


# ---------------------------------------------------------------- jobs
def _pretrain_device(model: str) -> str | None:
    return model if model in ("watch", "phone") else None


def personal_data(cfg: dict, input_kind: str, model: str):
    """The windows a personal job cuts (before its class selection and split): the study's short windows
    for the forest, the network's window for Jazbat-Net."""
    from jazbat_jax.data.config import DataConfig

    p = cfg["personal"]
    window, step = (p["forest_window"], p["forest_step"]) if model == "rf" else (cfg["target"]["window"], p["deep_step"])
    return DataConfig(dataset="quiroz", root=data_label(cfg, "quiroz"), input_kind=input_kind, window=window, step=step,
                      subjects=p["participants"])


def personal_job(cfg: dict, input_kind: str, model: str, split: str, labels: str, null: bool = False) -> Job:
    """One personal job; ``null``: the neutral-halves null (true labels) instead of the emotions."""
    p = cfg["personal"]
    data = personal_data(cfg, input_kind, model)
    settings: dict[str, Any] = {
        "kind": "personal", "input": input_kind, "model": model, "split": split, "labels": labels,
        "classes": ["neutral"] if null else list(p["classes"]), "n_folds": p["n_folds"], "seed": p["seed"],
        "data": data.to_dict(),
    }
    if null:  # only then: the emotion jobs keep the ids they had before the null existed
        settings["contrast"] = "neutral_halves"
    if model == "rf":
        settings.update(repeats=p["repeats"] if split == "shuffled" else 1, folds=None,
                        participants=p["participants"], n_estimators=p["forest_trees"])
    else:
        trunk = pretrain_job(cfg, _pretrain_device(model), input_kind).id if _pretrain_device(model) else None
        settings.update(repeats=1, folds=p["deep_folds"], participants=p["deep_participants"] or p["participants"],
                        pretrain_job=trunk, epochs=p["deep_epochs"], batch_size=p["deep_batch_size"],
                        learning_rate=p["deep_learning_rate"])
    suffix = "-neutral-halves" if null else "-permuted" if labels == "permuted" else ""
    return Job("personal", f"personal-{input_kind}-{model}-{split}{suffix}", settings)


def plan_jobs(cfg: dict, planned: list) -> list:
    """The personal jobs of ``cfg``, preceded by any pretrained trunk they need that ``planned`` lacks."""
    p = cfg.get("personal")
    if not p or not p["enabled"] or cfg["target"]["dataset"] != "quiroz":  # the study's protocol on its own data
        return []
    have = {j.id for j in planned}
    trunks = []
    for inp in p["inputs"]:
        for model in p["deep_models"]:
            device = _pretrain_device(model)
            if device:
                job = pretrain_job(cfg, device, inp)
                if job.id not in have:
                    have.add(job.id)
                    trunks.append(job)
    jobs = []
    for inp in p["inputs"]:
        for model in ("rf", *p["deep_models"]):
            for split in p["splits"]:  # a condition's true labels, its control and its null together
                jobs += [personal_job(cfg, inp, model, split, labels) for labels in p["labels"]]
                if p["neutral_halves"]:
                    jobs.append(personal_job(cfg, inp, model, split, "true", null=True))
    return trunks + jobs


# ---------------------------------------------------------------- models
def _forest(s: dict, pw: WindowSet, f: Fold, seed: int) -> np.ndarray:
    """The random forest on the fold's training windows: its test predictions."""
    from jazbat_jax.experiments import baseline

    pred, _ = baseline.fit_predict(pw.x[f.train], pw.y[f.train], pw.x[f.test], seed=seed,
                                   n_estimators=s["n_estimators"])
    return pred


def _deep(s: dict, pw: WindowSet, f: Fold, seed: int, results: Path, run_dir: Path, data) -> np.ndarray:
    """Jazbat-Net trained on the fold's training windows with the project's trainer (no validation part:
    the last epoch is evaluated); a finished run folder is read back instead of retrained."""
    from jazbat_jax.train import trainer
    from jazbat_jax.train.config import ModelConfig, RunConfig, TrainConfig
    from jazbat_jax.train.loop import FitOptions, Parts
    from jazbat_jax.train.transfer import TransferConfig

    done = run_dir / "test_predictions.npz"
    if (run_dir / "final_eval.json").exists() and done.exists():
        with np.load(done) as z:
            if np.array_equal(z["start"], pw.start[f.test]) and np.array_equal(z["recording"], pw.recording[f.test]):
                return z["y_pred"].astype(np.int64)
    source = str(results / "pretrain" / s["pretrain_job"] / "run") if s["pretrain_job"] else None
    labels = {"labels": "permuted", "label_seed": s["seed"]} if s["labels"] == "permuted" else {}
    config = RunConfig(data=dataclasses.replace(data, subjects=(int(pw.subject[0]),), **labels),
                       model=ModelConfig("jazbat_net", None),
                       train=TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"],
                                         learning_rate=s["learning_rate"], seed=seed, keep_last=1),
                       transfer=TransferConfig(source=source) if source else None)
    about = {"personal": {"participant": int(pw.subject[0]), "split": s["split"], "labels": s["labels"],
                          "classes": s["classes"], "repeat": f.repeat, "fold": f.fold, "n_folds": s["n_folds"],
                          "train_windows": int(len(f.train)), "test_windows": int(len(f.test)),
                          "dropped_train_windows": f.dropped}}
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "log.txt", "w") as log_file, contextlib.redirect_stdout(log_file):  # quiet: one of hundreds
        trainer.train_on_parts(config, Parts(pw.subset(f.train), None, pw.subset(f.test)), run_dir, about,
                               FitOptions(progress=False, plots=False))
    with np.load(done) as z:
        return z["y_pred"].astype(np.int64)


# ---------------------------------------------------------------- runner
def participant_summary(y_true: np.ndarray, y_pred: np.ndarray, repeat: np.ndarray, start: np.ndarray,
                        recording: np.ndarray, window: int) -> dict:
    """One participant's accuracy over all its test predictions, per repeat, and the exact binomial
    test against the majority-class share on the windows of the first repeat that share no sample."""
    from jazbat_jax.experiments import stats

    first = np.flatnonzero(repeat == repeat.min())
    trials = first[non_overlapping(start[first], recording[first], window)]
    correct = int(np.sum(y_true[trials] == y_pred[trials]))
    chance = float(np.bincount(y_true[trials]).max() / len(trials))
    p = stats.binomial_test(correct, len(trials), chance) if chance < 1 else 1.0
    return {"accuracy": stats.accuracy(y_true, y_pred), "n_test": int(len(y_true)),
            "per_repeat": [stats.accuracy(y_true[repeat == r], y_pred[repeat == r]) for r in np.unique(repeat)],
            "trials": int(len(trials)), "correct": correct, "chance": chance, "p_vs_chance": p}


def run_personal(job, results: Path, data) -> dict:
    """Every participant's folds of one personal job; per-participant accuracies and all predictions."""
    from jazbat_jax.data.config import DataConfig
    from jazbat_jax.data.controls import permute_labels
    from jazbat_jax.files import PREDICTIONS_FILE, window_predictions, write_npz
    from jazbat_jax.train.metrics import classification_report

    s = job.settings
    config = DataConfig.from_dict(s["data"])
    ws = data.windows(config)
    ws = neutral_halves(ws) if s.get("contrast") == "neutral_halves" else select_classes(ws, s["classes"])
    people = sorted(np.unique(ws.subject).tolist())
    if s["participants"] is not None:
        absent = sorted(set(s["participants"]) - set(people))
        if absent:
            raise ValueError(f"participants {absent} have no {s['classes']} windows in the data; choose from {people}")
        people = sorted(s["participants"])
    permutation = None
    if s["labels"] == "permuted":
        ws = permute_labels(ws, s["seed"])
        permutation = ws.report["label_permutation"]
    t0, cpu0 = time.perf_counter(), time.process_time()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("index", "pred", "repeat", "fold")}
    per_person, sizes = {}, []
    for pid in people:
        index = np.flatnonzero(ws.subject == pid)
        pw = ws.subset(index)
        folds = person_folds(pw, s["split"], s["n_folds"], s["repeats"], s["seed"])
        if s["folds"] is not None:
            folds = [f for f in folds if f.fold in s["folds"]]
        rows = []
        for f in folds:
            seed = run_seed(s["seed"], pid, f.repeat, f.fold)
            if s["model"] == "rf":
                pred = _forest(s, pw, f, seed)
            else:
                run_dir = job.folder(results) / "runs" / f"p{pid}-r{f.repeat}-f{f.fold}"
                pred = _deep(s, pw, f, seed, results, run_dir, config)
            rows.append((f, pred))
            sizes.append({"participant": pid, "repeat": f.repeat, "fold": f.fold, "n_train": int(len(f.train)),
                          "n_test": int(len(f.test)), "dropped": f.dropped})
        idx = np.concatenate([index[f.test] for f, _ in rows])
        pred = np.concatenate([p for _, p in rows])
        rep = np.concatenate([np.full(len(f.test), f.repeat) for f, _ in rows])
        parts["index"].append(idx), parts["pred"].append(pred), parts["repeat"].append(rep)
        parts["fold"].append(np.concatenate([np.full(len(f.test), f.fold) for f, _ in rows]))
        per_person[str(pid)] = participant_summary(ws.y[idx], pred, rep, ws.start[idx], ws.recording[idx],
                                                   ws.x.shape[1])
    wall, cpu = round(time.perf_counter() - t0, 2), round(time.process_time() - cpu0, 2)
    idx, pred = np.concatenate(parts["index"]), np.concatenate(parts["pred"])
    test = ws.subset(idx)
    write_npz(job.folder(results) / PREDICTIONS_FILE, **window_predictions(test, pred),
              repeat=np.concatenate(parts["repeat"]), fold=np.concatenate(parts["fold"]))
    n_train = [z["n_train"] for z in sizes]
    dropped = [z["dropped"] for z in sizes]
    return {
        "job": job.id, "kind": job.kind, "settings": s, "participants": per_person,
        "report": classification_report(test.y, pred, list(ws.class_names)),
        "runs": len(sizes), "n_train_mean": float(np.mean(n_train)), "n_test_total": int(len(idx)),
        "dropped_train_windows": {"total": int(np.sum(dropped)), "per_run_mean": float(np.mean(dropped)),
                                  "share_of_candidates": float(np.sum(dropped) / (np.sum(dropped) + np.sum(n_train)))},
        "windows": {"window": int(ws.x.shape[1]), "step": config.step,
                    "per_participant_mean": float(np.isin(ws.subject, people).sum() / len(people))},
        **({"label_permutation": {k: permutation[k] for k in ("seed", "recordings", "kept_true_label")}}
           if permutation else {}),
        "wall_s": wall, "cpu_s": cpu,  # CPU time of every thread of the process: the cost on a shared machine
    }
