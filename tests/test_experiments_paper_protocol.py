"""The report's first table: the paper's random split at step 16, every model against its control on
matched runs, the difference paired over participants."""
import json

import numpy as np
import pytest

from jazbat_jax.experiments import config, grid, report, stats
from jazbat_jax.experiments.collect import collect
from jazbat_jax.experiments.report import paper_protocol


def _run(correct_per_participant: dict[int, int], windows: int = 10) -> dict:
    """A run's predictions: participant p has ``windows`` windows of class 0, the first k predicted right."""
    y_true, y_pred, participant = [], [], []
    for p, k in correct_per_participant.items():
        y_true += [0] * windows
        y_pred += [0] * k + [1] * (windows - k)
        participant += [p] * windows
    n = len(y_true)
    return {"y_true": np.array(y_true), "y_pred": np.array(y_pred), "participant": np.array(participant),
            "recording": np.zeros(n, int)}


def test_paired_difference_resamples_participants_together():
    # Each participant gets exactly one more window right with the true labels: every paired replicate
    # is then +0.1, while the two accuracies alone vary widely between participants (an unpaired
    # bootstrap would give a wide interval around +0.1).
    control = {1: 1, 2: 9, 3: 4, 4: 6, 5: 2, 6: 8}
    true = {p: k + 1 for p, k in control.items()}
    assert stats.paired_difference_ci([_run(true)], [_run(control)]) == pytest.approx((0.1, 0.1))
    assert stats.compare_participants([_run(true)], [_run(control)])["p"] == pytest.approx(
        stats.wilcoxon_paired([0.2, 1.0, 0.5, 0.7, 0.3, 0.9], [0.1, 0.9, 0.4, 0.6, 0.2, 0.8])[1])
    with pytest.raises(ValueError, match="different participants"):
        stats.paired_difference_ci([_run({1: 3, 2: 4})], [_run({1: 3, 3: 4})])


TINY_RANDOM = {
    "target": {"window": 32, "step": 64, "participants": [2, 3, 4, 5, 6, 7]},
    "finetune": {"epochs": 2, "batch_size": 32, "patience": 1},
    "grid": {"n_folds": 3, "folds": [0], "protocols": ["random"], "random_steps": [16], "pretraining": ["none"],
             "identity_probes": False},
    "baseline": {"n_estimators": 10},
    "latency": {"enabled": False},
    "personal": {"enabled": False},
}


@pytest.mark.slow  # a tiny real grid: two networks and two forests under the random split at step 16
def test_the_report_opens_with_the_paper_protocol_against_its_control(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY_RANDOM))
    cfg = config.load_config("quick", path)
    results = tmp_path / "results"
    grid.run_grid(cfg, results, progress=False, compilation_cache=False, in_process=True)
    c = collect(results, cfg)
    rows = paper_protocol.headline(c)
    assert [(r["model"], r["runs"]) for r in rows] == [("rf", 1), ("none", 1)]
    for r, cell in zip(rows, paper_protocol.paper_protocol_cells(c)):
        assert r["difference"] == pytest.approx(r["accuracy"] - r["control"])
        true_job, control_job = cell["true"][0], cell["control"][0]
        assert (true_job["labels"], control_job["labels"]) == ("true", "permuted")
        assert (true_job["fold"], true_job["seed"]) == (control_job["fold"], control_job["seed"])
        assert r["accuracy"] == pytest.approx(100 * true_job["acc"])
        assert r["control"] == pytest.approx(100 * control_job["acc"])
        assert r["ci"][0] <= r["accuracy"] <= r["ci"][1]
        assert r["difference_ci"][0] <= r["difference"] <= r["difference_ci"][1]
        assert r["paper"] == (None if r["model"] == "rf" else 85.10)
    text = report.build_report(results, cfg).read_text()
    assert text.index("## The paper's protocol") < text.index("## Results")
    assert (results / "figures" / "paper_protocol.png").exists()
