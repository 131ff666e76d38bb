"""Statistics at the right unit for the emotion experiments (pure NumPy/SciPy).

Test windows overlap heavily and come from a few recordings per participant, so windows are not
independent: a confidence interval or test that counts windows as independent observations is far
too narrow. This module pools window accuracy only as a point estimate and takes its uncertainty
from the independent unit:

- participants: a cluster bootstrap (whole participants resampled) for the pooled accuracy, and
  paired Wilcoxon tests over per-participant accuracies between two conditions;
- recordings: one majority-vote label per recording; the number right is tested against what each
  participant's own walk labels, permuted among that participant's walks, would get (a person's walks
  are not independent trials: same person, same day);
- runs (folds × seeds): the Nadeau–Bengio corrected resampled t-test, whose variance correction
  accounts for runs that share training and test data;
- Holm–Bonferroni adjustment when several comparisons are made.

``summarize`` and ``compare`` take a condition's runs as dicts of per-window arrays ``y_true``,
``y_pred``, ``participant``, ``recording`` and return JSON-serialisable dicts (Python numbers,
lists and dicts; integer participant ids become string keys after a JSON round trip).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

RUN_KEYS = ("y_true", "y_pred", "participant", "recording")


def _columns(*arrays) -> list[np.ndarray]:
    """Equal-length, non-empty 1-D arrays."""
    out = [np.asarray(a).reshape(-1) for a in arrays]
    n = {len(a) for a in out}
    if len(n) != 1 or 0 in n:
        raise ValueError(f"expected non-empty arrays of one length, got lengths {[len(a) for a in out]}")
    return out


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    """Class indices 0..K-1 (needed for counting votes)."""
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"{name} must hold non-negative integer class indices, got dtype {y.dtype}")
    return y


def accuracy(y_true, y_pred) -> float:
    """Fraction of windows whose prediction equals the true label."""
    y_true, y_pred = _columns(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def per_group_accuracy(y_true, y_pred, groups) -> dict[int, float]:
    """Accuracy within each group (e.g. participant), keyed by the group id in ascending order."""
    y_true, y_pred, groups = _columns(y_true, y_pred, groups)
    ids, inv = np.unique(groups, return_inverse=True)
    correct = np.bincount(inv, weights=y_true == y_pred)
    total = np.bincount(inv)
    return {int(g): float(c / t) for g, c, t in zip(ids, correct, total)}


def per_group_macro_f1(y_true, y_pred, groups) -> dict[int, float]:
    """Macro-F1 within each group (e.g. test subject), keyed by the group id in ascending order; the
    macro average runs over the classes in that group's labels or predictions (sklearn's default)."""
    from sklearn.metrics import f1_score

    y_true, y_pred, groups = _columns(y_true, y_pred, groups)
    return {int(g): float(f1_score(y_true[groups == g], y_pred[groups == g], average="macro", zero_division=0))
            for g in np.unique(groups)}


def cluster_bootstrap_ci(y_true, y_pred, clusters, n_boot: int = 2000, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the pooled window accuracy, resampling whole clusters.

    Each replicate draws as many clusters as there are, with replacement, and pools all their windows
    (sum of correct windows / sum of windows), so a cluster's windows stay together and their
    correlation widens the interval as it should (the cluster bootstrap: Davison & Hinkley 1997,
    *Bootstrap Methods and their Application*, §3.8; Field & Welsh 2007, JRSS B 69:369–390). The
    interval is the (1-level)/2 and (1+level)/2 percentiles of the replicates (Efron & Tibshirani 1993,
    ch. 13). Deterministic for a given ``seed``. Needs at least two clusters.
    """
    y_true, y_pred, clusters = _columns(y_true, y_pred, clusters)
    _, inv = np.unique(clusters, return_inverse=True)
    correct = np.bincount(inv, weights=y_true == y_pred)
    total = np.bincount(inv).astype(float)
    return _bootstrap(lambda pick: correct[pick].sum() / total[pick].sum(), len(total), n_boot, level, seed)


def _bootstrap(statistic, k: int, n_boot: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile interval of ``statistic(pick)`` over ``n_boot`` draws of k cluster indices with replacement."""
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got level={level}, n_boot={n_boot}")
    if k < 2:
        raise ValueError("a cluster bootstrap needs at least 2 clusters; with one there is no between-cluster spread")
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):  # one replicate at a time: memory stays O(clusters) however many there are
        reps[b] = statistic(rng.integers(0, k, size=k))
    low, high = np.percentile(reps, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def _correct_and_total(runs: list[dict], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per participant of ``ids`` (in that order): correct windows and windows, over all the runs."""
    y_true, y_pred, participant, _ = (np.concatenate(c) for c in zip(*(_run(r, i) for i, r in enumerate(runs))))
    inv = np.searchsorted(ids, participant)
    return (np.bincount(inv, weights=y_true == y_pred, minlength=len(ids)),
            np.bincount(inv, minlength=len(ids)).astype(float))


def paired_difference_ci(a: list[dict], b: list[dict], n_boot: int = 2000, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of pooled accuracy(a) - pooled accuracy(b) for two conditions that
    test the same participants (e.g. a model and its permuted-label control on the same runs).

    Each replicate draws participants with replacement and pools their windows in *both* conditions,
    so the pairing (the same people on both sides) is kept and the participants' correlation enters the
    interval, as in ``cluster_bootstrap_ci``. Needs at least two participants."""
    ids = np.unique(np.concatenate([np.asarray(r["participant"]).reshape(-1) for r in a]))
    ids_b = np.unique(np.concatenate([np.asarray(r["participant"]).reshape(-1) for r in b]))
    if not np.array_equal(ids, ids_b):
        raise ValueError("the two conditions test different participants; pass the runs both have (same fold and seed)")
    ca, ta = _correct_and_total(a, ids)
    cb, tb = _correct_and_total(b, ids)
    return _bootstrap(lambda pick: ca[pick].sum() / ta[pick].sum() - cb[pick].sum() / tb[pick].sum(),
                      len(ids), n_boot, level, seed)


def majority_vote(y_true, y_pred, recordings) -> tuple[np.ndarray, np.ndarray]:
    """One (true, predicted) label per recording, in ascending recording-id order.

    The predicted label is the class most windows of the recording voted for; a tie goes to the
    smallest class index (``argmax`` takes the first maximum). Raises ``ValueError`` if a recording's
    windows carry more than one true label.
    """
    y_true, y_pred, recordings = _columns(y_true, y_pred, recordings)
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    ids, inv = np.unique(recordings, return_inverse=True)
    n_classes = int(max(y_true.max(), y_pred.max())) + 1
    votes = np.zeros((len(ids), n_classes), np.int64)
    truths = np.zeros((len(ids), n_classes), np.int64)
    np.add.at(votes, (inv, y_pred), 1)
    np.add.at(truths, (inv, y_true), 1)
    mixed = (truths > 0).sum(axis=1) > 1
    if mixed.any():
        raise ValueError(f"recording {ids[mixed][0].item()!r} has windows with different true labels; "
                         "pass recording ids that identify one labelled recording each")
    return truths.argmax(axis=1), votes.argmax(axis=1)


def binomial_test(k: int, n: int, chance: float) -> float:
    """One-sided exact p-value that the success rate ``k / n`` exceeds ``chance``
    (``scipy.stats.binomtest``, alternative='greater'). Valid only for independent trials, e.g.
    one majority vote per recording, never overlapping windows."""
    if not (0 <= k <= n and n >= 1 and 0 < chance < 1):
        raise ValueError(f"need 0 <= k <= n, n >= 1 and 0 < chance < 1, got k={k}, n={n}, chance={chance}")
    return float(stats.binomtest(int(k), int(n), chance, alternative="greater").pvalue)


def within_person_permutation_test(y_true, y_pred, person, n_perm: int = 10_000, seed: int = 0) -> float:
    """One-sided p-value that more labels are right than when each person's true labels are permuted
    among that person's own items (e.g. one majority vote per walk).

    The items of one person (walks of the same day, by the same body) are not independent trials, so
    a binomial test over all items is too optimistic. Under the null that the predictions carry no
    information about the labels *within* a person, the person's labels are exchangeable among the
    person's items; the test permutes them inside each person only, so a person counts as one unit
    (a person whose items all get one prediction, or who has a single item, gets the same count under
    every permutation and adds no evidence). Monte Carlo over ``n_perm`` permutations with a fixed
    ``seed``; p = (1 + #{permuted count >= observed}) / (1 + n_perm) (Phipson & Smyth 2010, Stat.
    Appl. Genet. Mol. Biol. 9:39), so it is never 0.
    """
    y_true, y_pred, person = _columns(y_true, y_pred, person)
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    rng = np.random.default_rng(seed)
    observed = int(np.sum(y_true == y_pred))
    null = np.zeros(n_perm, np.int64)
    for p in np.unique(person):
        t, pred = y_true[person == p], y_pred[person == p]
        null += (rng.permuted(np.tile(t, (n_perm, 1)), axis=1) == pred).sum(axis=1)
    return float((1 + np.sum(null >= observed)) / (1 + n_perm))


def _all_equal(d: np.ndarray) -> bool:
    return bool(np.all(d == d[0]))


def corrected_resampled_ttest(differences, n_train: int, n_test: int) -> tuple[float, float]:
    """Nadeau & Bengio (2003, Machine Learning 52:239–281) corrected resampled t-test; two-sided.

    ``differences`` holds one accuracy difference between two conditions per run (J runs, e.g.
    folds × seeds, as Bouckaert & Frank 2004 use it for repeated cross-validation). Runs share
    training and test data, so the plain t-test's variance σ²/J is too small; the correction uses
    σ² (1/J + n_test/n_train), with σ² the sample variance (ddof=1) and n_test/n_train the ratio of
    test to training set sizes (count both in the same unit). t = mean / sqrt(that); df = J - 1.

    Zero variance (all differences exactly equal) makes t a division by zero, handled as:
    every difference 0 -> t = 0.0, p = 1.0 (the conditions agree in every run: no evidence of a
    difference); every difference the same nonzero value -> t = ±inf, p = 0.0 (the limit of the test
    as the spread goes to zero). The latter happens with small test sets, where accuracies are coarse
    fractions; look at the differences themselves before trusting it. Values equal only up to
    floating-point rounding give a very large finite t instead.
    """
    d = np.asarray(differences, float).reshape(-1)
    if len(d) < 2 or n_train < 1 or n_test < 1:
        raise ValueError(f"need at least 2 differences and positive set sizes, got {len(d)} differences, "
                         f"n_train={n_train}, n_test={n_test}")
    mean = float(d.mean())
    if _all_equal(d):
        return (0.0, 1.0) if mean == 0 else (float(np.sign(mean) * np.inf), 0.0)
    j = len(d)
    t = mean / np.sqrt((1 / j + n_test / n_train) * d.var(ddof=1))
    return float(t), float(2 * stats.t.sf(abs(t), j - 1))


def cohens_dz(differences) -> float:
    """Cohen's d_z for paired data: mean difference / its standard deviation (ddof=1)
    (Cohen 1988; Lakens 2013, Front. Psychol. 4:863). Zero spread: 0.0 if every difference is 0,
    else ±inf (as for ``corrected_resampled_ttest``)."""
    d = np.asarray(differences, float).reshape(-1)
    if len(d) < 2:
        raise ValueError(f"Cohen's dz needs at least 2 differences, got {len(d)}")
    mean = float(d.mean())
    if _all_equal(d):
        return 0.0 if mean == 0 else float(np.sign(mean) * np.inf)
    return float(mean / d.std(ddof=1))


def tost_paired(differences, margin: float, alpha: float = 0.05) -> dict:
    """Equivalence of two conditions from paired differences (e.g. per-participant accuracy of a model
    minus the reference's): two one-sided t-tests (Schuirmann 1987) of H0: mean <= -margin and
    H0: mean >= +margin (``scipy.stats.ttest_1samp`` with ``alternative``). Equivalent within ±margin
    when both reject at ``alpha``, i.e. when the (1 - 2·alpha) confidence interval of the mean lies
    inside ±margin. Also the ordinary two-sided t-test of no difference.

    Verdict: "equivalent" (the interval inside ±margin), "worse" / "better" (the interval entirely
    beyond -margin / +margin), else "inconclusive". Zero spread (every difference equal): the interval
    is that value, each p-value 0 or 1. Fewer than 2 differences: no test (verdict "too few pairs")."""
    d = np.asarray(differences, float).reshape(-1)
    out = {"n": int(len(d)), "margin": float(margin), "alpha": float(alpha), "level": 1 - 2 * alpha,
           "mean": float(d.mean()) if len(d) else None}
    if len(d) < 2:
        return {**out, "ci": None, "p_lower": None, "p_upper": None, "p": None, "p_difference": None,
                "verdict": "too few pairs"}
    mean = float(d.mean())
    if _all_equal(d):
        low = high = mean
        p_lower, p_upper = float(mean <= -margin), float(mean >= margin)
        p_difference = 1.0 if mean == 0 else 0.0
    else:
        p_lower = float(stats.ttest_1samp(d, -margin, alternative="greater").pvalue)
        p_upper = float(stats.ttest_1samp(d, margin, alternative="less").pvalue)
        test = stats.ttest_1samp(d, 0.0)
        ci = test.confidence_interval(confidence_level=1 - 2 * alpha)
        low, high, p_difference = float(ci.low), float(ci.high), float(test.pvalue)
    p = max(p_lower, p_upper)
    verdict = ("equivalent" if p < alpha else "worse" if high < -margin else "better" if low > margin
               else "inconclusive")
    return {**out, "ci": [low, high], "p_lower": p_lower, "p_upper": p_upper, "p": p,
            "p_difference": p_difference, "verdict": verdict}


def _paired(a, b) -> np.ndarray:
    a, b = _columns(a, b)
    return a.astype(float) - b.astype(float)


def wilcoxon_paired(a, b) -> tuple[float, float]:
    """Wilcoxon (1945) signed-rank test of paired values (e.g. per-participant accuracies under two
    conditions): ``scipy.stats.wilcoxon`` defaults (zero differences dropped, exact p for small
    samples without ties), two-sided. Returns (statistic, p); the statistic is min(R+, R-).
    If every pair is equal there is nothing to rank: (0.0, 1.0)."""
    d = _paired(a, b)
    if not d.any():
        return 0.0, 1.0
    res = stats.wilcoxon(d, alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def rank_biserial(a, b) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014, Compr. Psychol. 3:11.IT.3.1):
    (R+ - R-) / (R+ + R-) over the ranks of |a - b|, zero differences dropped as in ``wilcoxon_paired``.
    +1: a exceeds b in every differing pair; -1: b exceeds a; 0.0 also when no pair differs."""
    d = _paired(a, b)
    d = d[d != 0]
    if len(d) == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def holm(pvalues) -> list[float]:
    """Holm (1979, Scand. J. Statist. 6:65–70) step-down adjusted p-values, in the input order.

    With the m p-values sorted ascending, the i-th (from 0) becomes (m - i) p_(i), made non-decreasing
    by a running maximum and capped at 1. Reject where the adjusted p is below α."""
    p = np.asarray(pvalues, float).reshape(-1)
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def _run(run: dict, i: int) -> list[np.ndarray]:
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise ValueError(f"run {i} lacks {missing}; each run needs arrays {list(RUN_KEYS)}")
    return _columns(*(run[k] for k in RUN_KEYS))


def _per_participant(runs: list[dict]) -> dict[int, float]:
    """Each participant's accuracy, averaged over the runs that test them."""
    seen: dict[int, list[float]] = {}
    for i, run in enumerate(runs):
        y_true, y_pred, participant, _ = _run(run, i)
        for pid, acc in per_group_accuracy(y_true, y_pred, participant).items():
            seen.setdefault(pid, []).append(acc)
    return {pid: float(np.mean(accs)) for pid, accs in sorted(seen.items())}


def summarize(predictions: list[dict], n_classes: int, n_boot: int = 2000, seed: int = 0) -> dict:
    """Window, participant and recording statistics of one condition's runs (e.g. folds × seeds).

    - ``accuracy``: all runs' windows pooled; ``ci``: its participant-clustered bootstrap interval
      (95 %; a participant tested in several runs is one cluster, since its runs are correlated too;
      None with a single participant).
    - ``per_participant``: {id: accuracy averaged over the runs that test that participant}.
    - ``recordings``: one majority vote per walk (participant, recording) over all its test windows in
      all runs (per label it was given, when a permuted-label control gave it different labels in
      different runs), and ``p_vs_chance``: the within-person permutation test of the number of walks
      right (``within_person_permutation_test``), since the walks of one participant are not
      independent trials (same person, same day).
    """
    if not predictions:
        raise ValueError("no runs to summarize; pass a list of per-run prediction dicts")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    runs = [_run(r, i) for i, r in enumerate(predictions)]
    y_true, y_pred, participant, recording = (np.concatenate(c) for c in zip(*runs))
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if _labels(y, name).max() >= n_classes:
            raise ValueError(f"{name} holds class {y.max()} but n_classes={n_classes}")

    # One vote per walk: a walk tested in several runs (seeds, or the folds of a random split, which
    # spread its windows over every test fold) pools all its test windows, so that no walk counts twice.
    # A recording is identified within its participant, so ids reused across participants stay apart.
    # Under the permuted-label control each seed permutes differently, so one walk can carry different
    # labels in different runs: it then gives one vote per label it was given.
    keys, walk = np.unique(np.stack([participant, recording, y_true], axis=1), axis=0, return_inverse=True)
    vote_true, vote_pred = majority_vote(y_true, y_pred, walk.reshape(-1))
    vote_person = keys[:, 0]  # majority_vote returns the walks in ascending id order: the order of ``keys``
    n_rec, correct = len(vote_true), int(np.sum(vote_true == vote_pred))

    return {
        "accuracy": accuracy(y_true, y_pred),
        # one participant has no between-participant spread to resample: no interval
        "ci": (list(cluster_bootstrap_ci(y_true, y_pred, participant, n_boot=n_boot, seed=seed))
               if len(np.unique(participant)) > 1 else None),
        "per_participant": _per_participant(predictions),
        "recordings": {
            "n": n_rec, "correct": correct, "accuracy": correct / n_rec,
            "p_vs_chance": within_person_permutation_test(vote_true, vote_pred, vote_person, seed=seed),
        },
        "n_windows": int(len(y_true)),
        "n_participants": int(len(np.unique(participant))),
        "n_runs": len(runs),
        "chance": 1 / n_classes,
    }


def compare(a: list[dict], b: list[dict], n_train: int, n_test: int) -> dict:
    """Condition ``a`` against condition ``b`` (differences are a - b), at two units.

    - ``runs``: run i of ``a`` is paired with run i of ``b`` (same fold and seed, same order); the
      per-run accuracy differences go to the corrected resampled t-test (``n_train``, ``n_test``: a
      run's training and test set sizes) and Cohen's dz.
    - ``participants``: each participant's accuracy averaged over runs, paired across conditions,
      with the Wilcoxon signed-rank test and the rank-biserial correlation.
    t may be ±inf (see ``corrected_resampled_ttest``); ``json.dumps`` writes it as Infinity.
    """
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two lists of at least 2 matching runs, got {len(a)} and {len(b)}")
    diffs = []
    for i, (ra, rb) in enumerate(zip(a, b)):
        ta, pa, parta, _ = _run(ra, i)
        tb, pb, partb, _ = _run(rb, i)
        if set(np.unique(parta).tolist()) != set(np.unique(partb).tolist()):
            raise ValueError(f"run {i} tests different participants in the two conditions; "
                             "pass runs in the same (fold, seed) order")
        diffs.append(accuracy(ta, pa) - accuracy(tb, pb))
    t, p = corrected_resampled_ttest(diffs, n_train, n_test)
    return {
        "runs": {
            "n": len(diffs), "differences": diffs, "mean_difference": float(np.mean(diffs)),
            "t": t, "df": len(diffs) - 1, "p": p, "cohens_dz": cohens_dz(diffs),
            "n_train": int(n_train), "n_test": int(n_test),
        },
        "participants": compare_participants(a, b),
    }


def compare_participants(a: list[dict], b: list[dict]) -> dict:
    """Condition ``a`` against ``b`` over participants: each participant's accuracy averaged over the
    runs that test it, paired across the conditions, with the Wilcoxon signed-rank test and the
    rank-biserial correlation. Works from a single run per condition (the participants are the unit)."""
    per_a, per_b = _per_participant(a), _per_participant(b)
    if sorted(per_a) != sorted(per_b):
        raise ValueError("the two conditions test different participants; pass the runs both have (same fold and seed)")
    ids = sorted(per_a)
    acc_a = np.array([per_a[i] for i in ids])
    acc_b = np.array([per_b[i] for i in ids])
    w, wp = wilcoxon_paired(acc_a, acc_b)
    return {"n": len(ids), "mean_difference": float(np.mean(acc_a - acc_b)),
            "wilcoxon": w, "p": wp, "rank_biserial": rank_biserial(acc_a, acc_b)}
