"""The permuted-label control: each walk gets another walk's label of the same participant."""
import numpy as np
import pytest

from jazbat_jax.data.config import DataConfig, SplitConfig, load_split, load_windows
from jazbat_jax.data.controls import permute_labels
from tests.tiny import tiny_windowset


@pytest.fixture(scope="module")
def quiroz():
    return load_windows(DataConfig(dataset="quiroz", root="bundled", window=64, step=64))


def _walk_labels(ws):
    return {int(r): np.unique(ws.y[ws.recording == r]).tolist() for r in np.unique(ws.recording)}


def test_every_walk_gets_another_walks_label_of_the_same_person(quiroz):
    permuted = permute_labels(quiroz, seed=3)
    before, after = _walk_labels(quiroz), _walk_labels(permuted)
    assert all(len(v) == 1 for v in after.values())  # one consistent label per walk
    for subject in np.unique(quiroz.subject):
        walks = np.unique(quiroz.recording[quiroz.subject == subject])
        assert sorted(before[w][0] for w in walks) == sorted(after[w][0] for w in walks)  # same labels per person
        assert all(before[w] != after[w] for w in walks)  # 3 walks, 3 emotions: a derangement
    record = permuted.report["label_permutation"]
    assert record["seed"] == 3 and record["kept_true_label"] == 0 and record["recordings"] == len(before)
    assert np.array_equal(permuted.x, quiroz.x) and np.array_equal(quiroz.y, load_windows(
        DataConfig(dataset="quiroz", root="bundled", window=64, step=64)).y)  # the input is not modified


def test_seeded_and_recorded(quiroz):
    a, b = permute_labels(quiroz, 0), permute_labels(quiroz, 0)
    assert np.array_equal(a.y, b.y)
    # 12 participants with two derangements each: another seed draws another permutation
    assert any(not np.array_equal(a.y, permute_labels(quiroz, s).y) for s in range(1, 4))


def test_repeated_labels_keep_as_few_as_possible():
    ws = tiny_windowset(n=40, seed=0)
    # one participant, four walks labelled 0, 0, 0, 1: at most two can change label
    ws.subject[:] = 1
    ws.recording[:] = np.repeat(np.arange(4), 10)
    ws.y[:] = np.repeat([0, 0, 0, 1], 10)
    permuted = permute_labels(ws, seed=1)
    assert permuted.report["label_permutation"]["kept_true_label"] == 2
    assert sorted(np.bincount(permuted.y)) == sorted(np.bincount(ws.y))


def test_a_walk_with_two_labels_is_refused():
    ws = tiny_windowset(n=20, seed=0)
    ws.recording[:] = 0
    ws.subject[:] = 1
    ws.y[:] = np.arange(20) % 2
    with pytest.raises(ValueError, match="one label per recording"):
        permute_labels(ws)


def test_data_config_labels():
    config = DataConfig(dataset="quiroz", root="bundled", window=64, step=64, labels="permuted", label_seed=2,
                        split=SplitConfig("subject", n_folds=3, fold=0))
    assert DataConfig.from_dict(config.to_dict()) == config
    assert "labels" not in DataConfig(dataset="quiroz").to_dict()  # the default is not stored: old hashes hold
    assert config.without_split() == DataConfig(dataset="quiroz", root="bundled", window=64, step=64)
    ws, split = load_split(config)
    assert ws.report["label_permutation"]["seed"] == 2
    with pytest.raises(ValueError, match="labels must be one of"):
        DataConfig(labels="shuffled")
