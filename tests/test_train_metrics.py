"""Whole-set metrics against hand-computed values, and the paper's batch-averaged variant."""
import numpy as np
import pytest

from jazbat_jax.train.metrics import algorithm1_batch_averaged, classification_report, confusion_matrix

Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def test_confusion_matrix_counts():
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_report_matches_hand_computed_values():
    r = classification_report(Y_TRUE, Y_PRED, ["a", "b", "c"])
    # class a: P 2/2, R 2/3; class b: P 1/2, R 1/2; class c: P 1/2, R 1/1
    p = np.array([1.0, 0.5, 0.5])
    rc = np.array([2 / 3, 0.5, 1.0])
    f1 = 2 * p * rc / (p + rc)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert r["macro"]["f1"] == pytest.approx(f1.mean())
    assert r["macro"]["precision"] == pytest.approx(2 / 3)
    assert r["weighted"]["recall"] == pytest.approx(4 / 6)  # weighted recall = accuracy
    assert r["weighted"]["f1"] == pytest.approx((f1 * [3, 2, 1]).sum() / 6)
    assert r["confusion_row_pct"][0] == pytest.approx([200 / 3, 100 / 3, 0.0], abs=1e-3)


def test_absent_class_counts_zero_in_macro():
    r = classification_report(np.array([0, 1]), np.array([0, 1]), ["a", "b", "never"])
    assert r["per_class"]["never"]["f1"] == 0.0
    assert r["macro"]["f1"] == pytest.approx(2 / 3)
    assert r["weighted"]["f1"] == pytest.approx(1.0)


def test_algorithm1_is_batch_averaged_and_labelled():
    a = algorithm1_batch_averaged(Y_TRUE, Y_PRED, batch_size=3)
    # batch 1: all class 0 true, preds [0,0,1] -> classes {0,1}: P=(1,0), R=(2/3,0) -> macro P .5, R 1/3, F1 .4
    # batch 2: true [1,1,2], pred [1,2,2] -> P=(1,.5), R=(.5,1), F1=(2/3,2/3)
    assert a["num_batches"] == 2
    assert a["accuracy"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert a["macro_precision"] == pytest.approx((0.5 + 0.75) / 2)
    assert a["macro_recall"] == pytest.approx((1 / 3 + 0.75) / 2)
    assert a["macro_f1"] == pytest.approx((0.4 + 2 / 3) / 2)
    assert "batch-averaged" in a["label"] and "comparison only" in a["label"]
