"""Quiroz et al.'s own protocol: personal models, their two splits, the permuted control, jobs and report."""
import json

import numpy as np
import pytest

from jazbat_jax.data.config import DataConfig, load_windows
from jazbat_jax.data.controls import permute_labels
from jazbat_jax.experiments import config, grid, personal, report


@pytest.fixture(scope="module")
def happy_sad():
    """The bundled sample's happy and sad walks in the study's 1-s windows (25 samples, step 12)."""
    ws = load_windows(DataConfig(dataset="quiroz", root="bundled", window=25, step=12))
    return personal.select_classes(ws, ["happy", "sad"])


def _person(ws, pid):
    return ws.subset(np.flatnonzero(ws.subject == pid))


def test_select_classes_keeps_and_relabels_in_the_given_order(happy_sad):
    full = load_windows(DataConfig(dataset="quiroz", root="bundled", window=25, step=12))
    assert happy_sad.class_names == ("happy", "sad")
    happy, sad = full.class_names.index("happy"), full.class_names.index("sad")
    assert len(happy_sad) == int(np.isin(full.y, [happy, sad]).sum())
    assert np.array_equal(np.bincount(happy_sad.y), [(full.y == happy).sum(), (full.y == sad).sum()])
    swapped = personal.select_classes(full, ["sad", "happy"])
    assert np.array_equal(swapped.y, 1 - happy_sad.y)
    with pytest.raises(ValueError, match="not in the data"):
        personal.select_classes(happy_sad, ["neutral"])


def test_time_blocks_share_no_sample_between_train_and_test(happy_sad):
    pw = _person(happy_sad, 2)
    length = pw.x.shape[1]
    folds = personal.time_block_folds(pw, 5)
    tested = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(pw)))  # every window tested exactly once
    for f in folds:
        assert f.dropped == len(pw) - len(f.train) - len(f.test) > 0
        for r in np.unique(pw.recording):
            tr = f.train[pw.recording[f.train] == r]
            te = f.test[pw.recording[f.test] == r]
            assert len(te) and len(tr)  # every walk in both parts
            # sample sets [start, start + length) of the two sides never intersect
            a = np.zeros(pw.start.max() + length, bool)
            b = a.copy()
            for i in tr:
                a[pw.start[i]:pw.start[i] + length] = True
            for i in te:
                b[pw.start[i]:pw.start[i] + length] = True
            assert not (a & b).any()
            # the test block is contiguous: consecutive windows of the walk
            walk = np.sort(pw.start[pw.recording == r])
            starts = np.sort(pw.start[te])
            assert np.array_equal(starts, walk[np.searchsorted(walk, starts[0]):][:len(starts)])
        # only windows that touch the test samples were dropped: the nearest kept ones just clear them
        dropped = np.setdiff1d(np.arange(len(pw)), np.concatenate([f.train, f.test]))
        for i in dropped:
            te = f.test[pw.recording[f.test] == pw.recording[i]]
            assert pw.start[i] < pw.start[te].max() + length and pw.start[i] + length > pw.start[te].min()


def test_time_blocks_need_enough_windows(happy_sad):
    with pytest.raises(ValueError, match="fewer than the 500 time blocks"):
        personal.time_block_folds(_person(happy_sad, 2), 500)


def test_shuffled_split_is_stratified_and_repeated(happy_sad):
    pw = _person(happy_sad, 3)
    folds = personal.shuffled_folds(pw.y, 10, 3, seed=0)
    assert [(f.repeat, f.fold) for f in folds] == [(r, k) for r in range(3) for k in range(10)]
    share = np.bincount(pw.y) / len(pw)
    for r in range(3):
        tests = [f.test for f in folds if f.repeat == r]
        assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(len(pw)))  # each window once per repeat
        for f in (f for f in folds if f.repeat == r):
            assert len(np.intersect1d(f.train, f.test)) == 0 and len(f.train) + len(f.test) == len(pw)
            # stratified: each class's count in the fold is its share of the fold, to within one window
            assert np.all(np.abs(np.bincount(pw.y[f.test], minlength=2) - share * len(f.test)) < 1)
    assert not np.array_equal(folds[0].test, folds[10].test)  # another repeat, another shuffle
    again = personal.shuffled_folds(pw.y, 10, 3, seed=0)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(folds, again))


def test_permuted_labels_of_two_walks_swap_them(happy_sad):
    permuted = permute_labels(happy_sad, seed=5)
    for pid in np.unique(happy_sad.subject):
        walks = np.unique(happy_sad.recording[happy_sad.subject == pid])
        assert len(walks) == 2
        before = [np.unique(happy_sad.y[happy_sad.recording == w]).tolist() for w in walks]
        after = [np.unique(permuted.y[permuted.recording == w]).tolist() for w in walks]
        assert sorted(before) == [[0], [1]] and after == before[::-1]


def test_non_overlapping_windows():
    start = np.array([0, 12, 24, 36, 48, 60, 0, 12, 30])
    recording = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    assert personal.non_overlapping(start, recording, 25).tolist() == [0, 3, 6, 8]
    assert personal.non_overlapping(start, recording, 12).tolist() == list(range(9))


def test_participant_summary_counts_one_repeat_of_separate_windows():
    y_true = np.array([0, 0, 0, 1, 1, 1] * 2)
    y_pred = np.array([0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1])
    repeat = np.repeat([0, 1], 6)
    start = np.tile([0, 12, 24, 0, 12, 24], 2)
    recording = np.tile([0, 0, 0, 1, 1, 1], 2)
    s = personal.participant_summary(y_true, y_pred, repeat, start, recording, 20)
    assert s["accuracy"] == 11 / 12 and s["per_repeat"] == [5 / 6, 1.0]
    # repeat 0, windows starting 0 and 24 of each walk: predictions 0, 1 | 1, 1 against 0, 0 | 1, 1
    assert (s["trials"], s["correct"], s["chance"]) == (4, 3, 0.5)
    assert s["p_vs_chance"] == pytest.approx(5 / 16)


@pytest.mark.parametrize("change, match", [
    ({"splits": ["random"]}, "personal.splits"),
    ({"classes": ["happy"]}, "at least two"),
    ({"classes": ["happy", "angry"]}, "personal.classes"),
    ({"deep_models": ["rf"]}, "personal.deep_models"),
    ({"n_folds": 1}, "personal.n_folds"),
    ({"deep_folds": [10]}, "personal.deep_folds"),
    ({"participants": [2, 3], "deep_participants": [4]}, "among personal.participants"),
    ({"forest_window": 8}, "personal.forest_window"),
])
def test_config_errors(tmp_path, change, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"personal": change}))
    with pytest.raises(config.ConfigError, match=match):
        config.load_config("quick", path)


def test_plan_adds_personal_jobs_without_changing_the_others(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"grid": {"pretraining": ["none"]}, "personal": {"enabled": False}}))
    off = grid.plan(config.load_config("quick", path))
    path.write_text(json.dumps({"grid": {"pretraining": ["none"]}}))
    on = grid.plan(config.load_config("quick", path))
    trunk = grid.pretrain_job(config.load_config("quick"), "watch", "1d")
    # the grid has no watch trunk: the personal jobs add it, before themselves
    assert [j.id for j in on if j.kind != "personal"] == [j.id for j in off] + [trunk.id]
    assert on.index(next(j for j in on if j.kind == "personal")) == len(off) + 1
    names = [j.name for j in on if j.kind == "personal"]
    assert names == [f"personal-1d-{m}-{s}{lab}" for m in ("rf", "none", "watch") for s in ("shuffled", "time_block")
                     for lab in ("", "-permuted")]
    deep = [j for j in on if j.kind == "personal" and j.settings["model"] == "watch"]
    assert {j.settings["pretrain_job"] for j in deep} == {trunk.id}
    forest = {j.settings["split"]: j.settings["repeats"] for j in on if j.settings.get("model") == "rf"}
    assert forest == {"shuffled": 1, "time_block": 1}
    assert all(j.folder(tmp_path).parent == tmp_path / "personal" for j in on if j.kind == "personal")


TINY = {
    "target": {"window": 32, "step": 64, "participants": [2, 3, 4, 5, 6, 7]},
    "pretrain": {"epochs": 1, "step": 64, "activities": "ABCD", "watch_subjects": [1600, 1604, 1606]},
    "finetune": {"epochs": 1},
    "grid": {"pretraining": ["none"], "protocols": ["subject"], "folds": [0], "labels": ["true"],
             "identity_probes": False},
    "baseline": {"enabled": False},
    "latency": {"enabled": False},
    "personal": {"participants": [2, 3, 4], "n_folds": 3, "repeats": 2, "forest_trees": 10,
                 "deep_models": ["watch"], "deep_epochs": 1, "deep_step": 32, "deep_folds": [0],
                 "deep_participants": [2]},
}


@pytest.mark.slow  # a WISDM trunk, two grid cells, eight forest jobs' fits and four personal networks
def test_tiny_run_on_the_bundled_sample(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    cfg = config.load_config("quick", path)
    results = tmp_path / "results"
    summary = grid.run_grid(cfg, results, progress=False, compilation_cache=False, log=lambda _: None, in_process=True)
    jobs = [j for j in grid.plan(cfg) if j.kind == "personal"]
    assert len(jobs) == 8 and all(j.id in summary["ran"] for j in jobs)
    out = {j.settings["model"] + "-" + j.settings["split"] + "-" + j.settings["labels"]:
           json.loads((j.folder(results) / "result.json").read_text()) for j in jobs}
    forest = out["rf-shuffled-true"]
    assert sorted(forest["participants"]) == ["2", "3", "4"] and forest["runs"] == 3 * 3 * 2
    with np.load(jobs[0].folder(results) / "test_predictions.npz") as z:
        assert len(z["y_pred"]) == forest["n_test_total"] == sum(v["n_test"] for v in forest["participants"].values())
        assert set(np.unique(z["repeat"])) == {0, 1} and set(np.unique(z["participant"])) == {2, 3, 4}
        assert z["class_names"].tolist() == ["happy", "sad"]
    assert out["rf-time_block-true"]["runs"] == 3 * 3 and out["rf-time_block-true"]["dropped_train_windows"]["total"] > 0
    assert out["rf-shuffled-true"]["dropped_train_windows"]["total"] == 0
    assert out["rf-shuffled-permuted"]["label_permutation"]["kept_true_label"] == 0
    deep = out["watch-shuffled-true"]
    assert list(deep["participants"]) == ["2"] and deep["runs"] == 1 and deep["windows"]["window"] == 32
    run = jobs[0].folder(results).parent / next(j for j in jobs if j.settings["model"] == "watch").id / "runs" / "p2-r0-f0"
    meta = json.loads((run / "config.json").read_text())
    assert meta["personal"]["participant"] == 2 and meta["transfer_source"] is not None
    # a second invocation skips every finished job
    again = grid.run_grid(cfg, results, progress=False, compilation_cache=False, log=lambda _: None, in_process=True)
    assert again["ran"] == []
    text = report.build_report(results, cfg).read_text()
    assert "## Quiroz et al.'s own protocol: personal models, happy vs sad" in text
    assert "median > 78 (Quiroz et al. 2018); 86.6 (Nur et al., tuned forest)" in text
    assert "What the comparison shows" in text and "figures/personal.png" in text
    assert (results / "figures" / "personal.png").stat().st_size > 0
    median = 100 * float(np.median([v["accuracy"] for v in forest["participants"].values()]))
    assert f"| {median:.1f} [" in text


def test_run_seeds_are_fixed_and_differ_between_participants():
    seeds = {(p, r, f): personal.run_seed(0, p, r, f) for p in (2, 3) for r in (0, 1) for f in (0, 1)}
    assert len(set(seeds.values())) == len(seeds) and seeds[(2, 0, 0)] == personal.run_seed(0, 2, 0, 0)
    assert personal.run_seed(1, 2, 0, 0) != seeds[(2, 0, 0)] and all(0 <= s < 2**31 for s in seeds.values())


def test_neutral_halves_cut_each_neutral_walk_in_two_without_a_shared_sample():
    full = load_windows(DataConfig(dataset="quiroz", root="bundled", window=25, step=12))
    halves = personal.neutral_halves(full)
    neutral = personal.select_classes(full, ["neutral"])
    assert halves.class_names == ("first half", "second half") and set(np.unique(halves.y)) == {0, 1}
    assert len(halves) + halves.report["neutral_halves"]["straddling_windows_dropped"] == len(neutral)
    end = halves.start + halves.x.shape[1]
    for walk in np.unique(neutral.recording):
        first, second = halves.recording == 2 * walk, halves.recording == 2 * walk + 1
        assert np.all(halves.y[first] == 0) and np.all(halves.y[second] == 1)
        assert end[first].max() <= halves.start[second].min()  # no sample in both halves
        assert abs(int(first.sum()) - int(second.sum())) <= 1
    # two walks per person, one per class: the personal splits apply as they are
    for pid in np.unique(halves.subject):
        person = _person(halves, pid)
        assert len(np.unique(person.recording)) == 2
        assert len(personal.time_block_folds(person, 3)) == 3


def test_the_neutral_halves_null_adds_jobs_and_changes_no_other_id(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"grid": {"pretraining": ["none"]}}))
    without = grid.plan(config.load_config("quick", path))
    path.write_text(json.dumps({"grid": {"pretraining": ["none"]}, "personal": {"neutral_halves": True}}))
    with_null = grid.plan(config.load_config("quick", path))
    null = [j for j in with_null if j.name.endswith("-neutral-halves")]
    assert [j.id for j in with_null if j not in null] == [j.id for j in without]
    assert [j.name for j in null] == [f"personal-1d-{m}-{s}-neutral-halves" for m in ("rf", "none", "watch")
                                      for s in ("shuffled", "time_block")]
    # each beside its condition: true labels, permuted, null
    assert with_null.index(null[0]) == with_null.index(next(j for j in with_null if j.name == "personal-1d-rf-shuffled-permuted")) + 1
    assert all(j.settings["contrast"] == "neutral_halves" and j.settings["labels"] == "true" for j in null)
    # and with the grid off, the personal jobs alone
    path.write_text(json.dumps({"grid": {"enabled": False}, "personal": {"deep_models": []}}))
    only = grid.plan(config.load_config("quick", path))
    assert {j.kind for j in only} == {"personal"} and len(only) == 4


def test_personal_forest_alone_with_the_null_on_the_bundled_sample(tmp_path):
    """No grid cell, the forest only, with the neutral-halves null: the report gives the null beside happy vs sad."""
    path = tmp_path / "personal.json"
    path.write_text(json.dumps({"grid": {"enabled": False}, "latency": {"enabled": False},
                                "personal": {"participants": [2, 3, 4], "n_folds": 3, "forest_trees": 10,
                                             "deep_models": [], "neutral_halves": True}}))
    cfg = config.load_config("quick", path)
    results = tmp_path / "results"
    summary = grid.run_grid(cfg, results, progress=False, compilation_cache=False, log=lambda _: None, in_process=True)
    jobs = grid.plan(cfg)
    assert len(jobs) == 6 and sorted(summary["ran"]) == sorted(j.id for j in jobs)
    null = next(j for j in jobs if j.name == "personal-1d-rf-shuffled-neutral-halves")
    result = json.loads((null.folder(results) / "result.json").read_text())
    assert result["report"]["class_names"] == ["first half", "second half"] and sorted(result["participants"]) == ["2", "3", "4"]
    from jazbat_jax.experiments.collect import collect
    from jazbat_jax.experiments.report.personal import _personal_conditions

    conditions = _personal_conditions(cfg, collect(results, cfg).done)
    shuffled = next(x for x in conditions if x["split"] == "shuffled")
    assert shuffled["null"]["job"] == null.id
    assert shuffled["nst"]["median"] == float(np.median([v["accuracy"] for v in result["participants"].values()]))
    text = report.build_report(results, cfg).read_text()
    assert "## Results" not in text and "## Quiroz et al.'s own protocol" in text
