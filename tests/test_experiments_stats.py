"""Statistics at the participant / recording / run unit: hand-computed cases, agreement with SciPy,
and the properties the module exists for (clustered intervals are wider, votes ignore window order)."""
import json
import math

import numpy as np
import pytest
from scipy import stats as sp

from jazbat_jax.experiments import stats


def _run(y_true, y_pred, participant, recording):
    return {"y_true": np.array(y_true), "y_pred": np.array(y_pred),
            "participant": np.array(participant), "recording": np.array(recording)}


# --- accuracy ---------------------------------------------------------------------------------------

def test_accuracy_and_per_group_accuracy_by_hand():
    y_true = [0, 1, 2, 2, 1, 0]
    y_pred = [0, 2, 2, 2, 1, 1]
    groups = [7, 7, 3, 3, 3, 9]
    assert stats.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    per = stats.per_group_accuracy(y_true, y_pred, groups)
    assert per == {3: 1.0, 7: 0.5, 9: 0.0}
    assert list(per) == [3, 7, 9] and all(type(k) is int for k in per)



def test_per_group_macro_f1_by_hand():
    # group 7: class 0 right (F1 1), class 1 missed and class 2 predicted wrongly (F1 0 each) -> 1/3;
    # group 3: all right over its two classes -> 1; group 9: one window, wrong -> 0
    per = stats.per_group_macro_f1([0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1], [7, 7, 3, 3, 3, 9])
    assert per == pytest.approx({3: 1.0, 7: 1 / 3, 9: 0.0}) and list(per) == [3, 7, 9]

def test_arrays_of_different_lengths_or_empty_are_refused():
    with pytest.raises(ValueError, match="one length"):
        stats.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="non-empty"):
        stats.accuracy([], [])


# --- cluster bootstrap ------------------------------------------------------------------------------

def test_cluster_bootstrap_with_two_clusters_spans_their_accuracies():
    # Cluster A: 1 of 4 correct; cluster B: 6 of 6. A replicate is AA (0.25), AB/BA (0.7) or BB (1.0),
    # each end with probability 1/4, far above 2.5 %, so the 95 % percentile interval is exactly [0.25, 1].
    y_true = np.zeros(10, int)
    y_pred = np.array([0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    clusters = np.array([0] * 4 + [1] * 6)
    assert stats.cluster_bootstrap_ci(y_true, y_pred, clusters) == (0.25, 1.0)


def test_cluster_bootstrap_contains_the_estimate_and_is_deterministic():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, (y_true + 1) % 3)
    clusters = rng.integers(0, 12, 300)
    low, high = stats.cluster_bootstrap_ci(y_true, y_pred, clusters, n_boot=500, seed=3)
    assert low < stats.accuracy(y_true, y_pred) < high
    assert stats.cluster_bootstrap_ci(y_true, y_pred, clusters, n_boot=500, seed=3) == (low, high)
    assert stats.cluster_bootstrap_ci(y_true, y_pred, clusters, n_boot=500, seed=4) != (low, high)
    narrow = stats.cluster_bootstrap_ci(y_true, y_pred, clusters, n_boot=500, level=0.5, seed=3)
    assert low < narrow[0] < narrow[1] < high


def test_clustering_by_participant_widens_the_interval_when_windows_are_correlated():
    # 10 participants x 20 windows; a participant's windows are all right (6 of them) or all wrong (4):
    # 200 windows but only 10 independent outcomes.
    participant = np.repeat(np.arange(10), 20)
    y_true = np.zeros(200, int)
    y_pred = np.where(participant < 6, 0, 1)
    assert stats.accuracy(y_true, y_pred) == 0.6
    by_person = stats.cluster_bootstrap_ci(y_true, y_pred, participant)
    by_window = stats.cluster_bootstrap_ci(y_true, y_pred, np.arange(200))
    for low, high in (by_person, by_window):
        assert low < 0.6 < high
    assert by_person[1] - by_person[0] > 3 * (by_window[1] - by_window[0])


def test_cluster_bootstrap_refuses_one_cluster_and_bad_level():
    with pytest.raises(ValueError, match="at least 2 clusters"):
        stats.cluster_bootstrap_ci([0, 1], [0, 0], [5, 5])
    with pytest.raises(ValueError, match="level"):
        stats.cluster_bootstrap_ci([0, 1], [0, 0], [1, 2], level=95)


# --- majority vote and binomial test ----------------------------------------------------------------

def test_majority_vote_by_hand_with_ties_to_the_smallest_class():
    recordings = [30, 30, 30, 10, 10, 10, 10, 20, 20]
    y_true = [2, 2, 2, 1, 1, 1, 1, 0, 0]
    y_pred = [2, 0, 2, 2, 1, 2, 1, 2, 1]  # 30: 2 wins; 10: 1 and 2 tie -> 1; 20: 1 and 2 tie -> 1
    true, pred = stats.majority_vote(y_true, y_pred, recordings)  # recordings in order 10, 20, 30
    assert true.tolist() == [1, 0, 2]
    assert pred.tolist() == [1, 1, 2]


def test_majority_vote_ignores_window_order_within_a_recording():
    rng = np.random.default_rng(0)
    recordings = np.repeat(np.arange(8), 25)
    y_true = np.repeat(rng.integers(0, 3, 8), 25)
    y_pred = rng.integers(0, 3, 200)
    before = stats.majority_vote(y_true, y_pred, recordings)
    shuffled = y_pred.copy()
    for r in range(8):
        idx = np.flatnonzero(recordings == r)
        shuffled[idx] = y_pred[rng.permutation(idx)]
    assert not np.array_equal(shuffled, y_pred)
    after = stats.majority_vote(y_true, shuffled, recordings)
    assert all(np.array_equal(b, a) for b, a in zip(before, after))


def test_majority_vote_refuses_a_recording_with_two_true_labels():
    with pytest.raises(ValueError, match="recording 4 has windows with different true labels"):
        stats.majority_vote([0, 0, 1], [0, 0, 0], [3, 4, 4])
    with pytest.raises(ValueError, match="non-negative integer"):
        stats.majority_vote([0.0, 1.0], [0, 1], [0, 1])


def test_binomial_test_by_hand():
    assert stats.binomial_test(3, 3, 1 / 3) == pytest.approx(1 / 27)  # P(X >= 3) = (1/3)^3
    assert stats.binomial_test(2, 3, 0.5) == pytest.approx(0.5)  # (3 + 1) / 8
    assert stats.binomial_test(0, 5, 1 / 3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        stats.binomial_test(4, 3, 0.5)


# --- runs: corrected resampled t-test, Cohen's dz ---------------------------------------------------

def test_corrected_ttest_by_hand():
    # d = 1, 2, 3: mean 2, variance 1; J = 3 and n_test/n_train = 1/2 -> t = 2 / sqrt(1/3 + 1/2).
    # For 2 degrees of freedom the two-sided p of t is 1 - t / sqrt(t^2 + 2) = 1 - sqrt(4.8 / 6.8).
    t, p = stats.corrected_resampled_ttest([1.0, 2.0, 3.0], n_train=2, n_test=1)
    assert t == pytest.approx(2 / math.sqrt(5 / 6))
    assert p == pytest.approx(1 - math.sqrt(12 / 17))


def test_corrected_ttest_is_the_plain_ttest_with_a_larger_variance():
    d = np.array([0.02, -0.01, 0.05, 0.03, 0.00, 0.04, 0.01, 0.02, -0.02, 0.03])  # e.g. 5 folds x 2 seeds
    plain = sp.ttest_1samp(d, 0.0)
    t, p = stats.corrected_resampled_ttest(d, n_train=40, n_test=10)
    j = len(d)
    assert t == pytest.approx(plain.statistic * math.sqrt((1 / j) / (1 / j + 10 / 40)))
    assert p == pytest.approx(2 * sp.t.sf(abs(t), j - 1))
    assert p > plain.pvalue


def test_zero_variance_gives_zero_or_infinite_t_and_dz():
    assert stats.corrected_resampled_ttest([0.0, 0.0, 0.0], 8, 2) == (0.0, 1.0)
    assert stats.corrected_resampled_ttest([0.1, 0.1, 0.1], 8, 2) == (math.inf, 0.0)
    assert stats.corrected_resampled_ttest([-0.1, -0.1], 8, 2) == (-math.inf, 0.0)
    assert stats.cohens_dz([0.0, 0.0]) == 0.0
    assert stats.cohens_dz([0.1, 0.1, 0.1]) == math.inf
    assert stats.cohens_dz([-0.1, -0.1]) == -math.inf
    with pytest.raises(ValueError, match="at least 2"):
        stats.corrected_resampled_ttest([0.1], 8, 2)


def test_cohens_dz_by_hand():
    assert stats.cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)  # mean 2, sd 1
    assert stats.cohens_dz([1.0, 3.0]) == pytest.approx(2 / math.sqrt(2))  # mean 2, sd sqrt(2)


# --- participants: Wilcoxon, rank-biserial ----------------------------------------------------------

def test_wilcoxon_and_rank_biserial_by_hand():
    a = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    b = a - np.array([0.1, 0.2, 0.3, 0.4, 0.5])  # every participant better under a
    stat, p = stats.wilcoxon_paired(a, b)
    assert stat == 0.0 and p == pytest.approx(2 / 32)  # exact: only the all-positive sign pattern, twice
    assert stats.rank_biserial(a, b) == 1.0
    assert stats.rank_biserial(b, a) == -1.0

    # d = 1, -2, 3, 4: R+ = 1 + 3 + 4 = 8, R- = 2. Exact two-sided p = 2 P(T <= 2) = 2 * 3/16
    # (sign patterns with negative-rank sum <= 2: none, {1}, {2}).
    a, b = np.array([1.0, 0.0, 3.0, 4.0]), np.array([0.0, 2.0, 0.0, 0.0])
    stat, p = stats.wilcoxon_paired(a, b)
    assert stat == 2.0 and p == pytest.approx(6 / 16)
    assert (stat, p) == pytest.approx(tuple(sp.wilcoxon(a, b)))
    assert stats.rank_biserial(a, b) == pytest.approx(0.6)  # (8 - 2) / 10
    # a zero difference is dropped, as in the test; tied |d| share their rank
    assert stats.rank_biserial([0.0, 1.0, 0.0, 3.0, 4.0, 7.0], [0.0, 0.0, 2.0, 0.0, 0.0, 7.0]) == pytest.approx(0.6)
    assert stats.rank_biserial([1.0, 1.0, 0.0], [0.0, 0.0, 2.0]) == 0.0  # ranks 1.5, 1.5 vs 3


def test_wilcoxon_with_no_differing_pair():
    assert stats.wilcoxon_paired([0.5, 0.7], [0.5, 0.7]) == (0.0, 1.0)
    assert stats.rank_biserial([0.5, 0.7], [0.5, 0.7]) == 0.0


# --- Holm -------------------------------------------------------------------------------------------

def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # 0.02*3 = 0.06, 0.4*2 = 0.8, 0.9*1 = 0.9
    assert stats.holm([0.4, 0.9, 0.02]) == pytest.approx([0.8, 0.9, 0.06])
    assert stats.holm([0.7, 0.8]) == [1.0, 1.0]  # 1.4 capped at 1, and monotone after it
    assert stats.holm([0.2]) == [0.2] and stats.holm([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.holm([0.1, float("nan")])


# --- summarize and compare --------------------------------------------------------------------------

def _two_seeds():
    """Two runs (seeds) testing participants 1 (recording 10, class 0) and 2 (recordings 20: class 2,
    21: class 1)."""
    part = [1, 1, 1, 1, 2, 2, 2, 2, 2]
    rec = [10, 10, 10, 10, 20, 20, 20, 21, 21]
    y = [0, 0, 0, 0, 2, 2, 2, 1, 1]
    return [
        _run(y, [0, 0, 1, 2, 1, 1, 2, 1, 1], part, rec),  # correct 2/4, 1/3, 2/2; votes 0 (right), 1, 1 (right)
        _run(y, [1, 1, 0, 0, 2, 2, 2, 0, 1], part, rec),  # correct 2/4, 3/3, 1/2; votes 0 (tie, right), 2 (right), 0
    ]


def test_summarize_by_hand():
    s = stats.summarize(_two_seeds(), n_classes=3)
    assert s["accuracy"] == pytest.approx(11 / 18)
    # participant 1 pools 4/8 = 0.5, participant 2 pools 7/10 = 0.7; with two clusters the 95 % interval
    # is exactly their span (see the two-cluster bootstrap test)
    assert s["ci"] == [0.5, 0.7]
    assert s["per_participant"] == pytest.approx({1: 0.5, 2: (3 / 5 + 4 / 5) / 2})
    rec = s["recordings"]
    # one vote per walk over both runs' windows: walk 10 votes 0 (4 of 8), walk 20 votes 2 (4 of 6),
    # walk 21 votes 1 (3 of 4): all three right
    assert (rec["n"], rec["correct"]) == (3, 3)
    assert rec["accuracy"] == 1.0
    # within people: participant 1's one walk is right under every permutation (no evidence); participant
    # 2's two walks are both right unpermuted and both wrong swapped, so P(3 right) = 1/2 under the null
    # (as if the three walks were independent trials the binomial test would give 1/27)
    assert rec["p_vs_chance"] == pytest.approx(1 / 2, abs=0.02)
    assert (s["n_windows"], s["n_participants"], s["n_runs"]) == (18, 2, 2)
    assert s["chance"] == pytest.approx(1 / 3)
    back = json.loads(json.dumps(s, allow_nan=False))
    assert back["per_participant"] == {"1": 0.5, "2": pytest.approx(0.7)}


def test_summarize_keeps_recordings_of_different_participants_apart():
    # both participants number their recording 0, with different labels: two votes (one each), no error
    run = _run([0, 0, 1, 1], [0, 0, 1, 0], [1, 1, 2, 2], [0, 0, 0, 0])
    rec = stats.summarize([run], n_classes=2, n_boot=50)["recordings"]
    assert (rec["n"], rec["correct"]) == (2, 1)  # participant 2 ties 1-0 -> class 0
    with pytest.raises(ValueError, match="different true labels"):  # while pooled by recording alone they clash
        stats.majority_vote(run["y_true"], run["y_pred"], run["recording"])


def test_summarize_gives_a_walk_one_vote_per_label_when_controls_permute_differently():
    # the permuted-label control of two seeds gave walk (1, 0) label 0 in one run and label 1 in the other
    seed0 = _run([0, 0, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0])
    seed1 = _run([1, 1, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0])
    rec = stats.summarize([seed0, seed1], n_classes=2, n_boot=50)["recordings"]
    assert (rec["n"], rec["correct"]) == (2, 1)  # seed 0's vote (0, right), seed 1's vote (0, wrong)


def test_summarize_one_participant_has_no_interval():
    run = _run([0, 0, 1], [0, 1, 1], [7, 7, 7], [0, 0, 1])
    s = stats.summarize([run], n_classes=2)
    assert s["ci"] is None and s["accuracy"] == pytest.approx(2 / 3) and s["n_participants"] == 1


def test_summarize_refuses_bad_runs():
    with pytest.raises(ValueError, match="lacks"):
        stats.summarize([{"y_true": np.zeros(2, int)}], n_classes=3)
    with pytest.raises(ValueError, match="n_classes=2"):
        stats.summarize(_two_seeds(), n_classes=2)
    with pytest.raises(ValueError, match="no runs"):
        stats.summarize([], n_classes=3)


def _condition(correct_per_run):
    """Runs testing participants 1 and 2 (two class-0 windows each, one recording each); run i gets
    the given (participant 1, participant 2) numbers of windows right."""
    runs = []
    for c1, c2 in correct_per_run:
        y_pred = [0 if i < c1 else 1 for i in range(2)] + [0 if i < c2 else 1 for i in range(2)]
        runs.append(_run([0, 0, 0, 0], y_pred, [1, 1, 2, 2], [1, 1, 2, 2]))
    return runs


def test_compare_by_hand():
    a = _condition([(2, 2), (2, 2), (2, 2)])  # accuracy 1 in every run
    b = _condition([(2, 1), (1, 1), (0, 1)])  # 0.75, 0.5, 0.25
    c = stats.compare(a, b, n_train=2, n_test=1)
    runs = c["runs"]
    assert runs["differences"] == [0.25, 0.5, 0.75]
    assert runs["mean_difference"] == 0.5 and runs["df"] == 2
    # the t-test's hand example scaled by 1/4: t = 0.5 / (0.25 sqrt(5/6))
    assert runs["t"] == pytest.approx(2 / math.sqrt(5 / 6))
    assert runs["p"] == pytest.approx(1 - math.sqrt(12 / 17))
    assert runs["cohens_dz"] == pytest.approx(2.0)
    people = c["participants"]
    # participant 1: 1 vs (1 + 0.5 + 0) / 3 = 0.5; participant 2: 1 vs 0.5. Two positive differences:
    # exact two-sided p = 2 * (1/2)^2
    assert people["n"] == 2 and people["mean_difference"] == 0.5
    assert (people["wilcoxon"], people["p"], people["rank_biserial"]) == (0.0, pytest.approx(0.5), 1.0)
    json.dumps(c, allow_nan=False)


def test_compare_refuses_unmatched_runs():
    a = _condition([(2, 2), (2, 2)])
    with pytest.raises(ValueError, match="at least 2 matching runs"):
        stats.compare(a, a[:1], n_train=2, n_test=1)
    other = [_run([0, 0], [0, 0], [3, 3], [1, 1])] * 2
    with pytest.raises(ValueError, match="different participants"):
        stats.compare(a, other, n_train=2, n_test=1)


def test_paired_comparison_uses_the_runs_both_conditions_have():
    from jazbat_jax.experiments.report import matched_runs

    run = lambda fold, seed, name: {"fold": fold, "seed": seed, "name": name}  # noqa: E731
    true = [run(1, 0, "t10"), run(0, 1, "t01"), run(0, 0, "t00"), run(2, 0, "t20")]
    control = [run(0, 0, "c00"), run(2, 0, "c20"), run(3, 0, "c30")]  # fold 1 and seed 1 not run yet; fold 3 only here
    a, b = matched_runs(true, control)
    assert [r["name"] for r in a] == ["t00", "t20"] and [r["name"] for r in b] == ["c00", "c20"]
    assert matched_runs(true, []) == ([], [])


# --- walks within people, paired differences ---------------------------------------------------------

def _people_walks(right_per_person):
    """One vote per walk: each person has three walks labelled 0, 1, 2, and predictions that are a
    permutation of those labels with the given number right (0, 1 or 3)."""
    pred_for = {0: [1, 2, 0], 1: [0, 2, 1], 3: [0, 1, 2]}
    y_true = np.tile([0, 1, 2], len(right_per_person))
    y_pred = np.concatenate([pred_for[k] for k in right_per_person])
    person = np.repeat(np.arange(len(right_per_person)), 3)
    return y_true, y_pred, person


def test_walk_level_test_counts_people_not_walks():
    # 44 people, 132 walks, 54 right (7 people all three right, 33 one right, 4 none): as if the walks were
    # independent the binomial test says above chance, but inside a person the right walks come together
    right = [3] * 7 + [1] * 33 + [0] * 4
    y_true, y_pred, person = _people_walks(right)
    assert int(np.sum(y_true == y_pred)) == 54
    assert stats.binomial_test(54, 132, 1 / 3) < 0.05
    # the exact null: each person's number right under a random permutation of their three labels is
    # 0, 1 or 3 with probabilities 2/6, 3/6, 1/6; summed over 44 independent people
    null = np.array([1.0])
    for _ in right:
        null = np.convolve(null, [2 / 6, 3 / 6, 0, 1 / 6])
    exact = null[54:].sum()
    assert exact > 0.05
    p = stats.within_person_permutation_test(y_true, y_pred, person, n_perm=20_000)
    assert p == pytest.approx(exact, abs=0.01)


def test_summarize_tests_the_walks_within_people():
    # the people of the test above, one window per walk in one run: the walk-level p-value the report prints
    y_true, y_pred, person = _people_walks([3] * 7 + [1] * 33 + [0] * 4)
    run = _run(y_true, y_pred, person, np.tile([0, 1, 2], 44))
    rec = stats.summarize([run], n_classes=3, n_boot=20)["recordings"]
    assert (rec["n"], rec["correct"]) == (132, 54)
    assert rec["p_vs_chance"] > 0.05


def test_walk_level_test_gives_no_evidence_for_one_walk_or_one_prediction_per_person():
    # a person with a single walk, or whose walks all get one prediction, is right the same number of times
    # under every permutation: all right or constant, the permutation p-value is 1
    y_true, person = np.array([0, 1, 2, 0, 1, 2, 1]), np.array([1, 1, 1, 2, 2, 2, 3])
    y_pred = np.array([0, 0, 0, 2, 2, 2, 1])
    assert stats.within_person_permutation_test(y_true, y_pred, person, n_perm=200) == 1.0
    # all right (7 of 7) happens under the null only when both three-walk people keep their labels: 1/36
    assert stats.within_person_permutation_test(y_true, y_true, person, n_perm=5000) == pytest.approx(1 / 36, abs=0.01)
    with pytest.raises(ValueError, match="n_perm"):
        stats.within_person_permutation_test(y_true, y_pred, person, n_perm=0)


def test_paired_difference_ci_with_two_participants_spans_their_differences():
    # participant 1: a right 2/2, b 1/2 (difference 0.5); participant 2: both 1/2 (difference 0)
    a = [_run([0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 2, 2], [1, 1, 2, 2])]
    b = [_run([0, 0, 0, 0], [0, 1, 0, 1], [1, 1, 2, 2], [1, 1, 2, 2])]
    assert stats.paired_difference_ci(a, b) == (0.0, 0.5)
    other = [_run([0, 0], [0, 0], [3, 3], [1, 1])]
    with pytest.raises(ValueError, match="different participants"):
        stats.paired_difference_ci(a, other)


def test_compare_participants_works_from_one_run():
    a = _condition([(2, 2)])
    b = _condition([(1, 0)])
    c = stats.compare_participants(a, b)
    assert c["n"] == 2 and c["mean_difference"] == pytest.approx(0.75) and c["p"] == pytest.approx(0.5)
