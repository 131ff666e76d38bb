"""The grid on a tiny real grid (bundled sample, window 32): caching, skip, resume, report, CLI.

Real code paths end to end: the loaders, the trainer, the transfer surgery, the forest, the report.
"""
import json
import re
import shutil

import numpy as np
import pytest

from jazbat_jax.cli import main
from jazbat_jax.experiments import config, grid, report
from jazbat_jax.experiments.collect import wall_cell
from jazbat_jax.experiments.report import common

pytestmark = pytest.mark.slow  # a whole tiny grid: pretraining, transfer cells, forests, report, export

TINY = {
    "target": {"window": 32, "step": 64, "participants": [2, 3, 4, 5, 6, 7]},
    "pretrain": {"epochs": 1, "step": 64, "activities": "ABCD", "watch_subjects": [1600, 1604, 1606]},
    "finetune": {"epochs": 2, "batch_size": 32},
    "grid": {"n_folds": 3, "folds": [0], "protocols": ["subject", "random"], "pretraining": ["none", "watch"]},
    "baseline": {"n_estimators": 10},
    "latency": {"models": ["jazbat_net:1d"], "runs": 3, "warmup": 1},
    "personal": {"enabled": False},  # tested in test_experiments_personal.py
}


@pytest.fixture(scope="module")
def tiny_cfg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


@pytest.fixture(scope="module")
def done(tmp_path_factory, tiny_cfg_file):
    """A results folder made in two invocations: the first stopped after 2 jobs, the second finished."""
    cfg = config.load_config("quick", tiny_cfg_file)
    results = tmp_path_factory.mktemp("results")
    first = grid.run_grid(cfg, results, progress=False, stop_after=2, command="jazbat experiments --config tiny.json",
                          compilation_cache=False, in_process=True)
    second = grid.run_grid(cfg, results, progress=False, compilation_cache=False, in_process=True)
    return cfg, results, first, second


def test_plan_shape_and_reuse_of_the_trunk(done):
    cfg, results, first, second = done
    jobs = grid.plan(cfg)
    kinds = [j.kind for j in jobs]
    # one trunk, then per protocol (2) × fold (1) × seed (1) × labels (true, permuted): a forest and two
    # deep cells; under the random split also the two identity probes (participant, walk)
    assert kinds == ["pretrain"] + ["baseline", "deep", "deep"] * 4 + ["baseline", "baseline"]
    assert [j.settings.get("labels", "true") for j in jobs[1:13:3]] == ["true", "permuted"] * 2
    assert [j.settings["predict"] for j in jobs[13:]] == ["participant", "recording"]
    trunk = jobs[0].id
    assert [j.settings["pretrain_job"] for j in jobs if j.kind == "deep" and j.settings["pretraining"] == "watch"] == [trunk] * 4
    assert len({j.id for j in jobs}) == len(jobs)
    assert len(list((results / "pretrain").iterdir())) == 1  # trained once, used by both transfer cells


def test_second_invocation_skips_finished_jobs(done):
    cfg, results, first, second = done
    assert len(first["ran"]) == 2 and first["skipped_done"] == 0
    assert second["skipped_done"] == 2 and len(second["ran"]) == 13
    assert set(first["ran"]).isdisjoint(second["ran"])
    third = grid.run_grid(cfg, results, progress=False, compilation_cache=False, in_process=True)
    assert third["ran"] == [] and third["skipped_done"] == 15
    lines = (results / "invocations.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["machine"]["cpu_count"] >= 1
    assert json.loads(lines[0])["command"] == "jazbat experiments --config tiny.json"


def test_results_record_settings_data_and_time(done):
    cfg, results, *_ = done
    rs = grid.load_results(results, cfg)
    assert len(rs) == 15
    pre = rs[0]
    assert pre["kind"] == "pretrain"
    assert pre["data_used"]["subjects"] == [1600, 1604, 1606]
    assert pre["data_used"]["activities"] == ["walking", "jogging", "stairs", "sitting"]
    for r in rs[1:]:
        assert r["wall_s"] >= 0 and r["finished_at"] and r["settings"]["target"]["participants"] == [2, 3, 4, 5, 6, 7]
        assert r["report"]["n"] == r["n_test"] > 0
        if r["settings"]["split"]["protocol"] == "subject":
            assert len(r["test_subjects"]) == 2  # 6 participants in 3 folds
    deep = [r for r in rs if r["kind"] == "deep"]
    assert all(r["checkpoint_epoch"] in (1, 2) for r in deep)
    # every emotion job saved its per-window test predictions, with participant and walk ids
    for r in rs[1:]:
        if r["settings"].get("predict", "emotion") != "emotion":
            continue
        folder = results / ("cells" if r["kind"] == "deep" else "baseline") / r["job"]
        with np.load(folder / ("run" if r["kind"] == "deep" else "") / "test_predictions.npz") as z:
            assert len(z["y_pred"]) == r["n_test"] and len(z["participant"]) == len(z["recording"]) == r["n_test"]
            assert np.array_equal(np.bincount(z["y_true"] * 3 + z["y_pred"], minlength=9).reshape(3, 3),
                                  np.asarray(r["report"]["confusion"]))
        if r["settings"].get("labels") == "permuted":  # 3 walks per participant, 3 emotions: a derangement
            assert r["label_permutation"]["kept_true_label"] == 0 and r["label_permutation"]["recordings"] > 0
    probes = [r for r in rs if r["settings"].get("predict")]
    assert {r["settings"]["predict"] for r in probes} == {"participant", "recording"}
    assert all(r["chance"]["uniform"] < 0.5 for r in probes)


def test_changed_setting_makes_a_new_job(done):
    cfg, *_ = done
    other = json.loads(json.dumps(cfg))
    other["finetune"]["epochs"] = 3
    a = {j.id for j in grid.plan(cfg) if j.kind == "deep"}
    b = {j.id for j in grid.plan(other) if j.kind == "deep"}
    assert a.isdisjoint(b)
    # the trunk and the forest do not depend on fine-tuning epochs: they are reused
    assert grid.plan(cfg)[0].id == grid.plan(other)[0].id
    assert {j.id for j in grid.plan(cfg) if j.kind == "baseline"} == {j.id for j in grid.plan(other) if j.kind == "baseline"}


def test_killed_cell_resumes_to_the_uninterrupted_result(done, tmp_path):
    """A cell stopped after epoch 1 (what a kill leaves: checkpoints, no result.json) resumes and
    ends with the same test predictions as the uninterrupted run."""
    cfg, results, *_ = done
    job = next(j for j in grid.plan(cfg) if j.kind == "deep" and j.settings["pretraining"] == "watch")
    reference = json.loads((job.folder(results) / "result.json").read_text())
    copy = tmp_path / "results"
    shutil.copytree(results / "pretrain", copy / "pretrain")  # the trunk it needs
    # interrupt: train the same cell to epoch 1 only, with the grid's own configuration
    from jazbat_jax.train import trainer
    from jazbat_jax.train.loop import FitOptions

    data = grid.DataCache()
    config = grid.run_config(job, copy)
    trainer.finetune(config, job.folder(copy) / "run", windows=data.windows(config.data),
                     options=FitOptions(progress=False, plots=False, stop_after_epoch=1))
    assert not job.done(copy)
    result = grid.run_deep(job, copy, data)
    hist = [json.loads(x) for x in (job.folder(copy) / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert result["report"]["confusion"] == reference["report"]["confusion"]
    # the result says it was resumed, and counts the training time of the epoch trained before
    assert result["resumed_at_epoch"] == 1 and result["earlier_train_s"] == round(hist[0]["train_seconds"], 2)
    assert wall_cell(result) == f"{result['wall_s']:.0f} s + {result['earlier_train_s']:.0f} s before resuming at epoch 1"
    assert "resumed_at_epoch" not in reference and wall_cell(reference) == f"{reference['wall_s']:.0f} s"


def test_report_tables_figures_and_gaps(done, tmp_path):
    cfg, results, *_ = done
    path = report.build_report(results, cfg, command="jazbat experiments --config tiny.json --report-only")
    text = re.sub(r" {2,}", " ", path.read_text())  # Markdown tables pad their cells
    for needle in ("### Split `subject`", "### Split `random`", "random forest (gait features)",
                   "Jazbat-Net, WISDM watch", "85.10", "90.62", "not comparable", "The cost of leakage",
                   "Quiroz et al. (JMIR", "## Pretraining on WISDM 2019", "1600, 1604, 1606", "macro-F1 per test subject (mean ± SD)",
                   "## Model complexity", "29,027", "Where these results differ from the paper", "## Every finished job", "jazbat experiments --config tiny.json --report-only",
                   "2 jobs run, 0 skipped as done", "— `jazbat experiments --config tiny.json`",
                   "permuted-label control [95% CI]", "walks right (majority)", "### Identity probes",
                   "(permuted labels)", "→ recording id"):
        assert needle in text, needle
    assert "Missing jobs" not in text
    for fig in ("best_confusion.png", "best_per_class.png", "curves_subject.png", "curves_random.png", "pretrain_curves.png",
                "accuracy_with_control.png", "per_participant.png"):
        assert (results / "figures" / fig).stat().st_size > 1000
        assert (results / "figures" / fig).with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    # the table's numbers are the results' numbers: one run per cell, so mean = that run
    rs = grid.load_results(results, cfg)
    rf = next(r for r in rs if r["kind"] == "baseline" and r["settings"]["split"]["protocol"] == "subject")
    assert f"| 1D | random forest (gait features) | {100 * rf['report']['accuracy']:.1f} |" in text
    # ... and its pooled accuracy and control come from the two forests' predictions
    control = next(r for r in rs if r["kind"] == "baseline" and r["settings"].get("labels") == "permuted"
                   and r["settings"]["split"]["protocol"] == "subject")
    row = next(line for line in text.splitlines() if line.startswith("| 1D | random forest (gait features) |"))
    assert f"| {100 * rf['report']['accuracy']:.1f} [" in row and f"| {100 * control['report']['accuracy']:.1f} [" in row
    # a partial folder: the report lists what is missing
    part = tmp_path / "partial"
    shutil.copytree(results, part, ignore=shutil.ignore_patterns("run"))
    victim = next(part.glob("cells/*/result.json"))
    victim.unlink()
    text = report.build_report(part, cfg).read_text()
    assert "## Missing jobs" in text and victim.parent.name in text


def test_mean_sd_and_pooled_confusion():
    assert common._mean_sd([0.5]) == "50.0"
    assert common._mean_sd([0.4, 0.6]) == "50.0 ± 14.1"
    assert common._mean_sd([]) == "—"
    rows = [{"report": {"class_names": ["a", "b"], "confusion": [[3, 1], [0, 4]]}},
            {"report": {"class_names": ["a", "b"], "confusion": [[2, 0], [1, 1]]}}]
    comb = common._combined_report(rows)
    assert comb["confusion"] == [[5, 1], [1, 5]] and comb["accuracy"] == pytest.approx(10 / 12)


def test_cli_report_only_and_errors(done, tiny_cfg_file, capsys):
    cfg, results, *_ = done
    (results / "report.md").unlink(missing_ok=True)
    assert main(["experiments", "--config", str(tiny_cfg_file), "--results", str(results), "--report-only"]) == 0
    text = (results / "report.md").read_text()
    assert f"jazbat experiments --config {tiny_cfg_file} --results {results} --report-only" in text
    assert "report:" in capsys.readouterr().out
    bad = tiny_cfg_file.parent / "bad.toml"
    bad.write_text('[grid]\ninputs = ["2d"]\n')
    assert main(["experiments", "--config", str(bad), "--results", str(results), "--report-only"]) == 1
    assert "grid.inputs" in capsys.readouterr().err


def test_report_only_needs_a_results_folder_with_finished_jobs(tiny_cfg_file, tmp_path, capsys):
    """Nothing to report is an error, not an empty report in a newly created folder."""
    base = ["experiments", "--config", str(tiny_cfg_file), "--report-only", "--results"]
    missing = tmp_path / "missing"
    assert main([*base, str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == (f"jazbat experiments: error: no results folder {missing} to report: give the --results folder the "
                   f"grid ran in, or run the grid first (`jazbat experiments --config {tiny_cfg_file} --results "
                   f"{missing}`)\n")
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*base, str(empty)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"jazbat experiments: error: {empty} holds no finished job of this grid (0 of ")
    assert err.count("\n") == 1 and "run the grid first" in err
    (empty / "cells" / "another-grid-0123456789").mkdir(parents=True)
    (empty / "cells" / "another-grid-0123456789" / "result.json").write_text("{}")
    assert main([*base, str(empty)]) == 1
    assert "its 1 finished job(s) belong to another configuration" in capsys.readouterr().err
    assert sorted(p.name for p in empty.iterdir()) == ["cells"]  # no report written


def test_seecs_layout_target(tmp_path):
    """A user's SEECS-layout folder as the target: six classes, 3D input, no pretraining."""
    from jazbat_jax.data import SEECS_EMOTIONS, write_seecs_recording

    rng = np.random.default_rng(0)
    root = tmp_path / "seecs"
    for s in (1, 2, 3):
        for e in SEECS_EMOTIONS:
            t = np.arange(160) * 1000.0 / 75
            write_seecs_recording(root / f"{s:02d}" / e / "walk1.csv", t, rng.normal(size=(160, 3)) + [0, 0, 9.81],
                                  rng.normal(size=(160, 3)))
    cfg_file = tmp_path / "seecs.toml"
    cfg_file.write_text(f'[target]\ndataset = "seecs"\nroot = "{root}"\nwindow = 32\nstep = 32\n'
                        '[finetune]\nepochs = 1\n[baseline]\nn_estimators = 10\n'
                        '[grid]\ninputs = ["3d"]\npretraining = ["none"]\nprotocols = ["subject"]\nfolds = [0]\n'
                        'labels = ["true"]\n')
    results = tmp_path / "results"
    cfg = config.load_config(None, cfg_file)
    grid.run_grid(cfg, results, progress=False, compilation_cache=False, in_process=True)
    assert main(["experiments", "--config", str(cfg_file), "--results", str(results), "--report-only"]) == 0
    rs = grid.load_results(results, cfg)
    assert [r["kind"] for r in rs] == ["baseline", "deep"]
    assert all(r["report"]["class_names"] == list(SEECS_EMOTIONS) for r in rs)
    assert all(len(r["test_subjects"]) == 1 for r in rs)  # 3 participants, 3 folds
    text = re.sub(r" {2,}", " ", (results / "report.md").read_text())
    assert "SEECS-layout (6 classes)" in text and "No published anchor" in text and "No pretraining in this grid" in text


def test_latency_profile_runs_once_and_is_in_the_report(done):
    cfg, results, *_ = done
    profile_json = results / "profile" / "profile.json"
    made = profile_json.stat().st_mtime
    profiled = json.loads(profile_json.read_text())
    assert [m["name"] for m in profiled["models"]] == ["jazbat_net_1d"]
    assert grid.run_latency_profile(cfg, results) == profile_json and profile_json.stat().st_mtime == made  # cached
    text = re.sub(r" {2,}", " ", report.build_report(results, cfg).read_text())
    assert "## Exported models: size and latency" in text and "| jazbat_net_1d |" in text


def test_grid_runs_work_with_every_command(done, tmp_path, capsys):
    """A run folder written by the grid is used exactly like one written by `jazbat finetune`."""
    cfg, results, *_ = done
    trunk = next(j for j in grid.plan(cfg) if j.kind == "pretrain").folder(results) / "run"
    cell = next(j for j in grid.plan(cfg) if j.kind == "deep" and j.settings["pretraining"] == "watch")
    run = cell.folder(results) / "run"
    final = json.loads((run / "final_eval.json").read_text())

    assert main(["evaluate", str(run), "-o", str(tmp_path / "eval.json")]) == 0
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["report"]["confusion"] == final["report"]["confusion"]  # same split, same checkpoint
    assert "true happy" in capsys.readouterr().out  # a labelled confusion matrix

    walk = np.random.default_rng(1).normal(scale=1.5, size=(200, 3))  # linear acceleration, like the target data
    np.savetxt(tmp_path / "walk.csv", walk, delimiter=",", header="ax,ay,az", comments="")
    assert main(["predict", str(tmp_path / "walk.csv"), "--checkpoint", str(run), "--quiet"]) == 0
    assert f"step {cfg['target']['step']}: predicted" in capsys.readouterr().out  # the grid's step, not a default

    tl = tmp_path / "tl-from-grid-trunk"
    assert main(["finetune", "--from", str(trunk), "--sample", "--window", "32",
                 "--step", "64", "--epochs", "1", "--no-progress", "--no-plots", "--run-dir", str(tl)]) == 0
    assert json.loads((tl / "config.json").read_text())["transfer_source"]["epoch"] == 1

    pytest.importorskip("tensorflow")
    out = tmp_path / "export"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert any("checkpoint test split" in r["origin"] for a in manifest["artifacts"] for r in a["parity"])


def test_collect_gives_one_table_row_per_finished_cell(done):
    """The report's single input: a DataFrame with a row per deep run and forest, their numbers the results'."""
    from jazbat_jax.experiments.collect import collect

    cfg, results, *_ = done
    c = collect(results, cfg)
    cells = [r for r in grid.load_results(results, cfg) if r["kind"] in ("deep", "baseline")]
    assert len(c.table) == len(cells) == 14 and list(c.table["job"]) == [r["job"] for r in cells]
    assert list(c.table["acc"]) == [r["report"]["accuracy"] for r in cells]
    assert set(c.table["protocol"]) == {"subject", "random"} and set(c.table["labels"]) == {"true", "permuted"}
    probes = c.rows(predict="participant")
    assert len(probes) == 1 and probes[0]["pretraining"] == "rf" and probes[0]["protocol"] == "random"
    assert [p["job"] for p in c.pretrain] == [grid.plan(cfg)[0].id] and c.missing == []
