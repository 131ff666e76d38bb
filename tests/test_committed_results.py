"""The committed results are named by what they computed: every one is found by the report from a
checkout in another folder, on a machine that has none of the data they were made from."""
import json
import shutil
from pathlib import Path

import pytest

from jazbat_jax.cli import main
from jazbat_jax.data import fingerprint
from jazbat_jax.experiments import grid
from jazbat_jax.experiments.config import load_config
from jazbat_jax.experiments.jobs import results_data_labels

REPO = Path(__file__).resolve().parents[1]
# The folders docs/results/README.md says `--report-only` rebuilds, with the config each was run with.
COMMITTED = {"quick": None, "converged": "config.toml", "personal-44": "config.toml"}
NO_FOLDERS = ["quick", "converged", "accuracy-cost", "accuracy-cost-converged", "personal-44"]  # JSON that must not name the machine's folders


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A copy of the committed results in another folder, the working folder another one, and no data:
    neither ../shared/data nor the bundled sample can be found."""
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("JAZBAT_DATA_ROOT", str(empty))
    monkeypatch.setattr(fingerprint, "shared_data_root", lambda: None)
    monkeypatch.setattr(fingerprint, "bundled_sample_root", lambda: empty)
    monkeypatch.setattr(fingerprint, "_registered", [])
    return tmp_path


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_every_committed_result_is_found_from_another_folder(name, elsewhere):
    src = REPO / "docs" / "results" / name
    dst = elsewhere / "checkout" / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("figures", "*.npz", "metrics.jsonl"))
    cfg = load_config(None, dst / (COMMITTED[name] or "config.json"))
    cfg = results_data_labels(cfg, dst)
    planned = {j.id for j in grid.plan(cfg)}
    committed = {p.parent.name for p in dst.glob("*/*/result.json")}
    assert committed and committed <= planned  # found, not "missing"
    assert {r["job"] for r in grid.load_results(dst, cfg)} == committed


@pytest.mark.parametrize("name", NO_FOLDERS)
def test_committed_results_name_no_folder_of_the_machine_that_made_them(name):
    for path in (REPO / "docs" / "results" / name).rglob("*.json"):
        text = path.read_text()
        assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text, path
        if path.name == "result.json":
            assert json.loads(text)["job"] == path.parent.name


def test_report_only_rebuilds_the_quick_report_elsewhere(elsewhere):
    dst = elsewhere / "quick"
    shutil.copytree(REPO / "docs" / "results" / "quick", dst)
    assert main(["experiments", "--quick", "--results", str(dst), "--report-only"]) == 0
    text = (dst / "report.md").read_text()
    assert "55 of 55 jobs finished" in text and "missing" not in text


def test_the_committed_accuracy_cost_runs_are_found_from_another_folder(elsewhere):
    from jazbat_jax.experiments import accuracy_cost

    dst = elsewhere / "accuracy-cost"
    shutil.copytree(REPO / "docs" / "results" / "accuracy-cost", dst)
    saved = json.loads((dst / "config.json").read_text())
    settings = accuracy_cost.Settings(**saved["settings"])
    result = accuracy_cost.collect(settings, dst)
    # S-754 trained one seed of three (the report says so): the other two are missing, not lost
    assert [r["run"] for r in result["runs"]] == ["jazbat_net-s0", "jazbat_net-s1", "jazbat_net-s2", "sota_surrogate-s0"]
    assert result["missing"] == ["sota_surrogate-s1", "sota_surrogate-s2"]
    assert all(r["trained_by"]["command"].startswith("jazbat accuracy-cost") for r in result["runs"])
    assert "/work/" not in json.dumps(result)


def test_the_committed_converged_comparison_finds_every_run_it_holds(elsewhere):
    """The five-model comparison (committed while it runs, across sessions): every committed run is found,
    the rest are listed as not finished, and its report says how far it got."""
    from jazbat_jax.experiments import accuracy_cost

    src = REPO / "docs" / "results" / "accuracy-cost-converged"
    dst = elsewhere / "accuracy-cost-converged"
    shutil.copytree(src, dst)
    settings = accuracy_cost.Settings(**json.loads((dst / "config.json").read_text())["settings"])
    result = accuracy_cost.collect(settings, dst)
    committed = sorted(p.parent.name for p in dst.glob("runs/*/result.json"))
    assert committed and sorted(r["job"] for r in result["runs"]) == committed
    assert len(result["runs"]) + len(result["missing"]) == len(settings.archs) * len(settings.seeds) == 15
    report = (src / "report.md").read_text()
    if result["missing"]:
        assert f"**In progress: {len(result['runs'])} of 15 runs finished**" in report
    assert all(r["trained_by"]["command"].startswith("jazbat accuracy-cost") for r in result["runs"])
