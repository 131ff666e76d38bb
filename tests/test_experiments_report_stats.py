"""The statistics of the grid's tables on the committed results: every row pools the same balanced runs,
true − control is paired on them, and each split's differences are tested."""
from pathlib import Path

import numpy as np
import pytest

from jazbat_jax.experiments import stats
from jazbat_jax.experiments.collect import collect
from jazbat_jax.experiments.config import load_config
from jazbat_jax.experiments.jobs import results_data_labels
from jazbat_jax.experiments.report.meaning import _predictions, balanced_runs, comparisons
from jazbat_jax.experiments.report.results import headline

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def _collected(name: str, config: str):
    folder = RESULTS / name
    return collect(folder, results_data_labels(load_config(None, folder / config), folder))


@pytest.fixture(scope="module")
def converged():
    c = _collected("converged", "config.toml")
    return c, headline(c)


def _keys(rows):
    return sorted((r["fold"], r["seed"]) for r in rows)


def test_balanced_runs_by_hand():
    run = lambda fold, seed: {"fold": fold, "seed": seed}  # noqa: E731
    forest = [run(f, 0) for f in range(5)] + [run(0, 1), run(0, 2)]
    none = [run(f, 0) for f in range(5)] + [run(0, 1)]
    phone = [run(f, 0) for f in range(4)]
    assert balanced_runs([forest, none, phone, []]) == ([0, 1, 2, 3], [0])  # a condition with no run is left aside
    # two seeds on two folds (4 runs) beat one seed on three folds (3 runs)
    a = [run(f, s) for f in (0, 1) for s in (0, 1)]
    assert balanced_runs([a, a + [run(2, 0)]]) == ([0, 1], [0, 1])
    assert balanced_runs([[run(0, 0)], [run(1, 0)]]) == ([], [])


def test_every_row_pools_the_same_balanced_runs(converged):
    # the committed converged grid: fold 0 ran with seeds 0, 1, 2 for the forest and 0, 1 for no pretraining,
    # the phone trunk's cells folds 0-3 only. Pooling each row's own runs counted fold 0 three times for the
    # forest and compared rows over different runs; every row now pools folds 0-3 of seed 0
    c, h = converged
    table = h[("subject", 16)]
    assert (table["folds"], table["seeds"]) == ([0, 1, 2, 3], [0])
    expected = [(f, 0) for f in range(4)]
    for (inp, pre), cell in table["cells"].items():
        assert _keys(cell["rows"]) == expected and _keys(cell["control_rows"]) == expected, pre
        preds = [_predictions(c.results, r) for r in cell["rows"]]
        right = sum(int(np.sum(p["y_true"] == p["y_pred"])) for p in preds)
        assert cell["summary"]["accuracy"] == pytest.approx(right / sum(len(p["y_true"]) for p in preds))
        assert cell["summary"]["n_runs"] == 4
    # what was left out is listed: the forest's fold-0 seeds 1 and 2 among them
    left = {(r["pretraining"], r["labels"], r["fold"], r["seed"]) for r in table["left_out"]}
    assert {("rf", "true", 0, 1), ("rf", "true", 0, 2), ("none", "true", 0, 1), ("none", "true", 4, 0)} <= left
    assert not any(r["fold"] in range(4) and r["seed"] == 0 for r in table["left_out"])


def test_true_minus_control_is_paired_on_the_same_runs(converged):
    c, h = converged
    for (inp, pre), cell in h[("subject", 16)]["cells"].items():
        true = [_predictions(c.results, r) for r in cell["rows"]]
        control = [_predictions(c.results, r) for r in cell["control_rows"]]
        difference = cell["summary"]["accuracy"] - cell["control_summary"]["accuracy"]
        low, high = cell["difference_ci"]
        assert low <= difference <= high
        assert (low, high) == stats.paired_difference_ci(true, control)
        assert cell["p_difference"] == stats.compare_participants(true, control)["p"]
        pooled = lambda preds: (sum(int(np.sum(p["y_true"] == p["y_pred"])) for p in preds)  # noqa: E731
                                / sum(len(p["y_true"]) for p in preds))
        assert difference == pytest.approx(pooled(true) - pooled(control))


def test_the_random_split_difference_is_tested():
    c = _collected("quick", "config.json")
    true, control = c.rows(predict="emotion", labels="true"), c.rows(predict="emotion", labels="permuted")
    rows = {(split, label): result for split, label, result in comparisons(c.results, c.cfg, true, control)}
    assert {split for split, _ in rows} == {"subject split, step 32", "random split, step 32"}
    forest = rows[("random split, step 32", "1D random forest: true − permuted labels")]
    assert forest["runs"]["n"] == 3  # the quick grid's three folds
    picked = lambda rs: sorted((r for r in rs if r["protocol"] == "random" and r["pretraining"] == "rf"),  # noqa: E731
                               key=lambda r: r["fold"])
    a = [_predictions(c.results, r) for r in picked(true)]
    b = [_predictions(c.results, r) for r in picked(control)]
    assert forest["runs"]["differences"] == [stats.accuracy(x["y_true"], x["y_pred"]) - stats.accuracy(y["y_true"], y["y_pred"])
                                             for x, y in zip(a, b)]
    assert forest["participants"]["p"] == stats.compare_participants(a, b)["p"]


def test_the_best_cell_and_the_differences_pool_the_balanced_runs(converged):
    # Ranked on each cell's own finished runs, WISDM watch came first with fold 4 (which the phone cells lack)
    # in its mean; over the folds every row has (0-3, seed 0) the phone trunk's cells rank first
    from jazbat_jax.experiments.report.best import best_jazbat_cells
    from jazbat_jax.experiments.report.differences import _differences_section

    c, h = converged
    key, rows = best_jazbat_cells(c)[("subject", 16)]
    cells = {k: cell["rows"] for k, cell in h[("subject", 16)]["cells"].items() if k[1] != "rf"}
    assert rows == cells[key] and _keys(rows) == [(f, 0) for f in range(4)]
    mean_f1 = lambda rs: float(np.mean([r["f1"] for r in rs]))  # noqa: E731
    assert all(mean_f1(rows) >= mean_f1(other) for other in cells.values())
    assert key == ("1d", "phone")
    accuracy = 100 * float(np.mean([r["acc"] for r in rows]))
    assert f"under `subject` (step 16, 4 balanced runs): {accuracy:.1f}% (1D, WISDM phone)" in "\n".join(_differences_section(c))
