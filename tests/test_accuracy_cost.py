"""`jazbat accuracy-cost` end to end on the bundled WISDM sample (windows of 32 samples, 200 windows, 1 epoch):
run folders, report, figure, skipping finished runs, resuming a killed one, and the report's numbers
against the runs' own final_eval.json."""
import json
from pathlib import Path

import numpy as np
import pytest

from jazbat_jax import complexity
from jazbat_jax.cli import main
from jazbat_jax.experiments import accuracy_cost
from jazbat_jax.model import model_from_config

# A real `jazbat profile` result committed with the docs (6-class models at window 256).
PROFILE = Path(__file__).resolve().parents[1] / "docs" / "export-profile" / "profile.json"
TINY = ["--sample", "--window", "32", "--step", "64", "--max-windows", "200", "--epochs", "1", "--seeds", "0",
        "--no-progress", "--in-process"]  # the pipeline's Ray path is tested in test_experiments_runner.py


def _job(out: Path, name: str) -> Path:
    """The job folder of run ``name`` (``jazbat_net-s0``): ``runs/<name>-<hash>``."""
    (folder,) = (Path(out) / "runs").glob(f"{name}-??????????")
    return folder


def _row(table_text: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is ``first_cell``."""
    for line in table_text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r}")


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("accuracy-cost") / "out"
    assert main(["accuracy-cost", "--out", str(out), *TINY, "--archs", "jazbat_net", "sota_surrogate",
                 "--profile", str(PROFILE)]) == 0
    return out


@pytest.mark.slow
def test_runs_report_and_figure(done):
    invocation = json.loads((done / "invocations.jsonl").read_text().splitlines()[0])
    assert invocation["command"].startswith("jazbat accuracy-cost --out") and invocation["runner"] == "in process"
    for name in ("jazbat_net-s0", "sota_surrogate-s0"):
        job = _job(done, name)
        for f in ("final_eval.json", "test_predictions.npz", "metrics.jsonl"):
            assert (job / "run" / f).exists(), f"{name}/{f}"
        result = json.loads((job / "result.json").read_text())
        assert result["job"] == job.name and job.name in invocation["ran"]
        assert result["settings"]["data_root"].startswith("wisdm@")  # the data by fingerprint, not a folder
    png = (done / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    report = (done / "report.md").read_text()
    assert "complexity-matched surrogate" in report and "not the published network" in report
    assert "bundled with the package: a functional check, not a result" in report
    assert "(busy" in report or "load average" in report


@pytest.mark.slow
def test_table_numbers_equal_the_runs_final_eval(done):
    report = (done / "report.md").read_text()
    numbers = json.loads((done / "accuracy_cost.json").read_text())
    for arch in ("jazbat_net", "sota_surrogate"):
        run = _job(done, f"{arch}-s0") / "run"
        final = json.loads((run / "final_eval.json").read_text())
        acc, f1 = final["report"]["accuracy"], final["report"]["macro"]["f1"]
        row = next(r for r in numbers["runs"] if r["run"] == f"{arch}-s0")
        assert (row["accuracy"], row["macro_f1"], row["checkpoint_epoch"]) == (acc, f1, final["checkpoint_epoch"])
        cells = _row(report, f"{arch}-s0")
        assert cells[5:7] == [f"{100 * acc:.2f}", f"{100 * f1:.2f}"]
        # One seed: the mean is that run's value, no SD, and the pooled accuracy is the run's accuracy.
        model = next(m for m in numbers["models"] if m["arch"] == arch)
        assert model["accuracy"] == {"mean": acc, "sd": None} and model["pooled"]["accuracy"] == acc
        summary = _row(report, accuracy_cost.LABELS[arch])
        cost = complexity.count(model_from_config(json.loads((run / "config.json").read_text())["model"]))
        assert summary[1:5] == [f"{cost.total:,}", f"{cost.macs:,}", "1", f"{100 * acc:.2f}"]
        assert summary[5] == f"{100 * f1:.2f}" and summary[6].startswith(f"{100 * acc:.2f} ")


@pytest.mark.slow
def test_profile_figures_and_the_configuration_they_timed(done):
    report = (done / "report.md").read_text()
    profile = json.loads(PROFILE.read_text())
    jazbat = next(m for m in profile["models"] if m["name"] == "jazbat_net_1d")
    deployment = report.split("## Exported files")[1]
    cells = _row(deployment, "Jazbat-Net")
    assert cells[2] == f"{jazbat['artifact_bytes']['tflite_fp32'] / 1e3:,.1f}"
    tflite = next(t for t in jazbat["latency"] if t["runtime"] == "tflite" and t["batch"] == 1)
    assert cells[9] == f"{tflite['median_ms']:.3f}"
    # The committed profile timed the 6-class models at window 256, not these 18-class window-32 runs: said so.
    assert "The profiled model differs from the trained one" in deployment
    assert (done / "profile" / "profile.json").read_text() == PROFILE.read_text()


@pytest.mark.slow
def test_an_interval_is_shown_where_there_is_one(done, tmp_path):
    """The sample's test part has one participant (no interval); the real split has several: render that case."""
    result = json.loads((done / "accuracy_cost.json").read_text())
    for m in result["models"]:
        m["pooled"]["ci"] = [m["pooled"]["accuracy"] - 0.01, m["pooled"]["accuracy"] + 0.02]
    text = accuracy_cost.render(result, "jazbat accuracy-cost", [1.0, 1.0, 1.0], result["machine"])
    m = result["models"][0]
    low, high = (f"{100 * v:.2f}" for v in m["pooled"]["ci"])
    assert _row(text, m["label"])[6] == f"{100 * m['pooled']['accuracy']:.2f} [{low}, {high}]"
    assert "No interval where" not in text
    assert accuracy_cost.plot(result, tmp_path / "p.png").stat().st_size > 20_000


@pytest.mark.slow
def test_a_comparison_in_progress_says_so_first(done):
    """A report rendered while runs are missing opens with how many finished, per model; a finished one does not."""
    result = json.loads((done / "accuracy_cost.json").read_text())
    assert "In progress" not in accuracy_cost.render(result, "jazbat accuracy-cost", None, result["machine"])
    for key in ("runs", "models"):  # as collected before S-754's run finished
        result[key] = [r for r in result[key] if r["arch"] != "sota_surrogate"]
    result["missing"] = ["sota_surrogate-s0"]
    text = accuracy_cost.render(result, "jazbat accuracy-cost", None, result["machine"])
    first = text.split("## Setup")[0]
    assert "**In progress: 1 of 2 runs finished** (seeds per model: Jazbat-Net 1 of 1, S-754 surrogate 0 of 1)" in first


@pytest.mark.slow
def test_second_call_skips_finished_runs(done):
    stamps = {p: p.stat().st_mtime_ns for p in (done / "runs").glob("*/run/final_eval.json")}
    assert len(stamps) == 2
    assert main(["accuracy-cost", "--out", str(done), *TINY, "--archs", "jazbat_net", "sota_surrogate",
                 "--no-latency"]) == 0
    last = json.loads((done / "invocations.jsonl").read_text().splitlines()[-1])
    assert last["ran"] == [] and last["skipped_done"] == 2
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert "TFLite FP32 ms" in (done / "report.md").read_text()  # the cached profile is still reported


def test_runs_are_planned_seed_by_seed():
    """Every model's first seed comes before any model's second: a comparison stopped part-way compares
    every model in its interim report."""
    settings = accuracy_cost.Settings(archs=("jazbat_net", "sota_surrogate", "tinyhar"), seeds=(0, 1), root="bundled")
    order = [(j.settings["arch"], j.settings["seed"]) for j in accuracy_cost.plan(settings, "wisdm@0123456789abcdef")]
    assert order == [("jazbat_net", 0), ("sota_surrogate", 0), ("tinyhar", 0),
                     ("jazbat_net", 1), ("sota_surrogate", 1), ("tinyhar", 1)]


@pytest.mark.slow
def test_killed_run_resumes_and_other_settings_are_refused(tmp_path, capsys):
    """A run killed after epoch 1 of 2 is resumed, not restarted. Other settings are other jobs: a rerun with
    fewer epochs trains runs of its own and reports those, never the longer runs under the shorter budget."""
    from jazbat_jax.train import trainer
    from jazbat_jax.train.loop import FitOptions

    out = tmp_path / "out"
    settings = accuracy_cost.Settings(archs=("jazbat_net",), seeds=(0,), root="bundled", window=32, step=64,
                                      max_windows=200, epochs=2)
    (job,) = accuracy_cost.plan(settings)
    trainer.pretrain(accuracy_cost.run_config(settings, "jazbat_net", 0, job.settings["data_root"]),
                     job.folder(out) / "run", options=FitOptions(progress=False, plots=False, stop_after_epoch=1))
    assert not job.done(out)
    args = ["accuracy-cost", "--out", str(out), "--archs", "jazbat_net", *TINY, "--epochs", "2", "--no-latency"]
    assert main(args) == 0
    assert json.loads((job.folder(out) / "result.json").read_text())["resumed"] is True
    epochs = [json.loads(line)["epoch"] for line in (job.folder(out) / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2] and job.done(out)
    assert "No latency profile" in (out / "report.md").read_text()
    assert [m["arch"] for m in json.loads((out / "accuracy_cost.json").read_text())["models"]] == ["jazbat_net"]
    assert main([*args[:-3], "--epochs", "1", "--no-latency"]) == 0  # args end with --epochs 2 --no-latency
    (shorter,) = json.loads((out / "accuracy_cost.json").read_text())["runs"]
    assert shorter["job"] != job.id and shorter["epochs_trained"] == 1
    assert "(cap: 1 epoch;" in (out / "report.md").read_text()
    assert len(list((out / "runs").glob("jazbat_net-s0-*"))) == 2  # the 2-epoch run is kept, not overwritten


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["accuracy-cost", "--out", out, *TINY, "--seeds", "0", "0", "--report-only"]) == 1
    assert "seeds must be distinct" in capsys.readouterr().err
    assert main(["accuracy-cost", "--out", out, *TINY, "--report-only"]) == 1
    assert "no finished run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["accuracy-cost", "--out", out, *TINY, "--profile", str(tmp_path / "missing.json"), "--report-only"])
    assert e.value.code == 2 and f"cannot read {tmp_path / 'missing.json'} (No such file" in capsys.readouterr().err
    assert main(["accuracy-cost", "--out", out, *TINY, "--archs", "resnet", "--report-only"]) == 1
    assert "unknown architecture 'resnet'" in capsys.readouterr().err
    assert main(["accuracy-cost", "--out", out, *TINY, "--margin", "120", "--report-only"]) == 1
    assert "equivalence margin must be in (0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b"{\"models\": [\xa0]}", "is not UTF-8 text (byte 0xa0 at offset 12), so not a JSON profile"),
    (b"{\"models\": [", "is not valid JSON (Expecting value: line 1 column 13 (char 12))"),
    (b"{\"runs\": []}", "is not a `jazbat profile` result (no 'models' list)"),
])
def test_a_wrong_profile_file_is_refused_before_training(tmp_path, capsys, content, message):
    """--profile is used only when the report is written: a wrong file must stop the command before the
    training, in one line that names it."""
    profile = tmp_path / "profile.json"
    profile.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["accuracy-cost", "--out", str(out), *TINY, "--profile", str(profile)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"jazbat accuracy-cost: error: argument --profile: {profile} {message}: give the "
                          "profile.json that `jazbat profile --out DIR` wrote"), err
    assert not out.exists()  # nothing trained


def _run(correct_by_participant: dict[int, list[int]]) -> dict:
    """Per-window arrays of one run: each participant's windows, 1 = predicted right."""
    y_true, y_pred, participant = [], [], []
    for pid, correct in correct_by_participant.items():
        for c in correct:
            y_true.append(0)
            y_pred.append(0 if c else 1)
            participant.append(pid)
    return {"y_true": np.array(y_true), "y_pred": np.array(y_pred), "participant": np.array(participant),
            "recording": np.zeros(len(y_true), int)}


def test_differences_are_seed_matched_and_averaged_per_participant():
    mine = {0: _run({1: [1, 1, 0, 0], 2: [1, 1, 1, 1]}), 1: _run({1: [1, 1, 1, 1], 2: [1, 0, 0, 0]}),
            2: _run({1: [0, 0, 0, 0], 2: [0, 0, 0, 0]})}  # seed 2: the reference lacks it, so it is left out
    ref = {0: _run({1: [1, 0, 0, 0], 2: [1, 1, 1, 1]}), 1: _run({1: [1, 1, 1, 1], 2: [1, 1, 0, 0]})}
    seeds, diffs = accuracy_cost.paired_differences(mine, ref)
    assert seeds == [0, 1]
    assert diffs == {1: pytest.approx((0.25 + 0.0) / 2), 2: pytest.approx((0.0 - 0.25) / 2)}


def test_tost_decides_equivalence_against_the_margin():
    from scipy import stats as st

    from jazbat_jax.experiments.stats import tost_paired

    close = [0.004, -0.006, 0.002, 0.001, -0.003, 0.005, -0.001, 0.0]
    e = tost_paired(close, margin=0.02)
    assert e["verdict"] == "equivalent" and e["p"] < 0.05
    assert e["p_lower"] == pytest.approx(st.ttest_1samp(close, -0.02, alternative="greater").pvalue)
    assert -0.02 < e["ci"][0] < e["ci"][1] < 0.02
    worse = [d - 0.06 for d in close]
    assert tost_paired(worse, margin=0.02)["verdict"] == "worse"
    wide = [0.05, -0.04, 0.03, -0.05, 0.02, -0.03]
    w = tost_paired(wide, margin=0.02)
    assert w["verdict"] == "inconclusive" and w["p"] > 0.05
    assert tost_paired([0.01], margin=0.02)["verdict"] == "too few pairs"
    assert tost_paired([0.0, 0.0, 0.0], margin=0.02)["verdict"] == "equivalent"  # no spread: the value itself
