"""Splits: no subject in two parts (subject), stratified (random), gaps of >= one window (time)."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jazbat_jax.data import Split, Standardizer, WindowSet, format_split_summary, save_split_summary, split_windows


def make_ws(n_subjects=10, n_classes=3, per=(40, 70), T=16, step=4, seed=0):
    """Synthetic WindowSet with the loaders' structure: recordings of windows at a fixed step."""
    rng = np.random.default_rng(seed)
    y, subj, rec, start = [], [], [], []
    r = 0
    for s in range(n_subjects):
        for c in range(n_classes):
            k = int(rng.integers(*per))
            y += [c] * k
            subj += [100 + s] * k
            rec += [r] * k
            start += list(range(0, k * step, step))
            r += 1
    n = len(y)
    return WindowSet(x=rng.normal(size=(n, T, 1)).astype(np.float32), y=np.array(y, np.int32),
                     subject=np.array(subj, np.int32), recording=np.array(rec, np.int32),
                     start=np.array(start, np.int64), class_names=tuple("abc"[:n_classes]), channels=("m",))


def parts(sp: Split):
    return sp.train, sp.val, sp.test


@settings(max_examples=40, deadline=None)
@given(n_subj=st.integers(4, 25), seed=st.integers(0, 10_000), tf=st.sampled_from([0.1, 0.2, 0.3]),
       vf=st.sampled_from([0.0, 0.1, 0.2]))
def test_subject_holdout_no_subject_in_two_parts(n_subj, seed, tf, vf):
    ws = make_ws(n_subjects=n_subj, seed=seed % 7)
    sp = split_windows(ws, "subject", test_fraction=tf, val_fraction=vf, seed=seed)
    a, b, c = (set(ws.subject[p].tolist()) for p in parts(sp))
    assert not (a & b) and not (a & c) and not (b & c)
    assert len(sp.train) + len(sp.val) + len(sp.test) == len(ws)  # nothing lost
    assert len(c) >= 1 and len(a) >= 1 and (len(b) >= 1) == (vf > 0)
    assert sp.summary["subjects_shared_between_parts"] == []
    again = split_windows(ws, "subject", test_fraction=tf, val_fraction=vf, seed=seed)
    assert all(np.array_equal(p, q) for p, q in zip(parts(sp), parts(again)))  # reproducible


@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_subject_kfold_each_subject_tested_once(n_folds):
    ws = make_ws(n_subjects=11)
    tested = []
    for f in range(n_folds):
        sp = split_windows(ws, "subject", n_folds=n_folds, fold=f, val_fraction=0.1, seed=3)
        tr, va, te = (set(ws.subject[p].tolist()) for p in parts(sp))
        assert not (tr & te) and not (va & te) and not (tr & va)
        tested += sorted(te)
    assert sorted(tested) == sorted(set(ws.subject.tolist()))


def test_subject_kfold_validation_subjects_rotate_with_the_fold():
    """Each fold validates on other people (those of the next fold first), not the same few in every fold."""
    ws = make_ws(n_subjects=20)
    vals = [frozenset(ws.subject[split_windows(ws, "subject", n_folds=5, fold=f, val_fraction=0.1, seed=0).val].tolist())
            for f in range(5)]
    assert all(len(v) == 2 for v in vals) and len(set().union(*vals)) == 10  # 5 folds × 2 different people


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), tf=st.sampled_from([0.1, 0.2, 0.25]), vf=st.sampled_from([0.0, 0.1]))
def test_random_split_is_stratified_and_disjoint(seed, tf, vf):
    ws = make_ws(seed=seed % 5)
    sp = split_windows(ws, "random", test_fraction=tf, val_fraction=vf, seed=seed)
    allidx = np.concatenate(parts(sp))
    assert len(allidx) == len(ws) == len(np.unique(allidx))
    for c in range(3):
        n_c = (ws.y == c).sum()
        assert (ws.y[sp.test] == c).sum() == round(tf * n_c)


def test_random_kfold_partitions_windows():
    ws = make_ws()
    tests = np.concatenate([split_windows(ws, "random", n_folds=4, fold=f, seed=1).test for f in range(4)])
    assert np.array_equal(np.sort(tests), np.arange(len(ws)))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100), tf=st.sampled_from([0.2, 0.3]), vf=st.sampled_from([0.0, 0.1, 0.2]),
       folds=st.sampled_from([None, 3, 4]), fold=st.integers(0, 2))
def test_time_split_blocks_are_a_window_apart(seed, tf, vf, folds, fold):
    ws = make_ws(per=(60, 120), seed=seed)
    T = ws.x.shape[1]
    sp = split_windows(ws, "time", test_fraction=tf, val_fraction=vf,
                       n_folds=folds, fold=None if folds is None else fold)
    lab = np.full(len(ws), -1)
    for i, p in enumerate(parts(sp)):
        lab[p] = i
    assert len(sp.test) > 0 and len(sp.train) > 0
    for r in np.unique(ws.recording):
        m = np.flatnonzero((ws.recording == r) & (lab >= 0))
        for i in m:  # any two windows of different parts: >= T samples between them
            other = m[lab[m] != lab[i]]
            gap = np.maximum(ws.start[other] - (ws.start[i] + T), ws.start[i] - (ws.start[other] + T))
            assert np.all(gap >= 0)
    assert sp.summary["windows_in_gaps_dropped"] == int((lab == -1).sum())


def test_summary_printed_and_saved(tmp_path):
    ws = make_ws()
    sp = split_windows(ws, "subject", seed=0)
    text = format_split_summary(sp.summary)
    assert "train" in text and "subjects in more than one part: 0" in text
    d = json.loads(save_split_summary(sp, tmp_path / "split.json").read_text())
    assert d["protocol"] == "subject" and d["test"]["windows"] == len(sp.test)
    st_ = Standardizer.fit(ws.x[sp.train])
    assert np.allclose(Standardizer.from_dict(st_.to_dict()).mean, st_.mean)


@pytest.mark.parametrize("kw,msg", [
    (dict(protocol="leaky"), "protocol"), (dict(test_fraction=0.7, val_fraction=0.4), "sum"),
    (dict(n_folds=3), "both"), (dict(n_folds=3, fold=3), "fold"),
])
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        split_windows(make_ws(), **kw)


def test_too_few_subjects():
    with pytest.raises(ValueError, match="subjects"):
        split_windows(make_ws(n_subjects=2), "subject", n_folds=3, fold=0)
