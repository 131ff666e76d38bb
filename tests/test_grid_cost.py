"""benchmarks/grid_cost.py: the window-passes of a grid, and the unfinished jobs costed at the fraction of
the maximum epochs its finished jobs trained."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import grid_cost  # noqa: E402
from jazbat_jax.data.config import split_of  # noqa: E402
from jazbat_jax.experiments import config, grid  # noqa: E402


def _cost(capsys, *args) -> dict:
    assert grid_cost.main(["--profile", "quick", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_unfinished_jobs_are_costed_at_the_measured_epoch_fraction(tmp_path, capsys):
    whole = _cost(capsys)
    assert whole["training_runs"] == 1 + 24 and whole["window_passes"] > 0  # the trunk and the 24 deep cells
    # one deep cell finished after 2 of its maximum epochs, nothing else: deep jobs are costed at that fraction,
    # the trunk (no finished pretraining to measure) at its maximum
    fraction = 2 / config.load_config("quick")["finetune"]["epochs"]
    cell = next(j for j in grid.plan(config.load_config("quick")) if j.kind == "deep")
    cell.folder(tmp_path).mkdir(parents=True)
    (cell.folder(tmp_path) / "result.json").write_text(json.dumps({"stopped_epoch": 2}))
    part = _cost(capsys, "--results", str(tmp_path), "--rate", "100")
    assert part["finished_training_runs"] == 1
    assert part["epoch_fraction_trained"] == {"pretrain": 1.0, "deep": round(fraction, 3)}
    trunk = next(j for j in grid.plan(config.load_config("quick")) if j.kind == "pretrain")
    run = grid.run_config(trunk, Path("."))
    trunk_passes = len(split_of(run.data, grid.DataCache().windows(run.data))[1].train) * run.train.epochs
    deep_left = part["remaining_window_passes_at_max"] - trunk_passes
    assert part["remaining_window_passes_at_max"] < whole["window_passes"]
    assert part["remaining_window_passes_expected"] == round(trunk_passes + fraction * deep_left)
    assert part["remaining_hours_expected"] == round(part["remaining_window_passes_expected"] / 100 / 3600, 1)
