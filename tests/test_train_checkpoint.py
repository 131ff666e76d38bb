"""Checkpoint round trip, corruption and incompatibility detection, resolution of paths."""
import json
import shutil
from contextlib import closing
from pathlib import Path

import jax
import numpy as np
import pytest

from jazbat_jax.data.core import Standardizer
from jazbat_jax.model import init_variables, model_config
from jazbat_jax.train.checkpoint import CheckpointError, Checkpoints, load_checkpoint, resolve_checkpoint
from jazbat_jax.train.input_pipeline import batches
from jazbat_jax.train.state import create_train_state
from jazbat_jax.train.steps import jit_train_step, make_optimizer
from tiny import tiny_model, tiny_windowset

MODEL = tiny_model()


@pytest.fixture(scope="module")
def trained_state():
    ws = tiny_windowset(16)
    state = create_train_state(MODEL, init_variables(MODEL, 0), make_optimizer(), seed=3)
    state, _ = jit_train_step()(state, next(batches(ws.x, ws.y, 16)), np.ones(3, np.float32))
    return state


def _meta():
    return {
        "model": model_config(MODEL),
        "class_names": ["class_0", "class_1", "class_2"],
        "standardizer": Standardizer(np.array([1.5], np.float32), np.array([2.0], np.float32)).to_dict(),
        "data": {"source": "test"},
    }


def _save(ck: Checkpoints, epoch: int, state, meta: dict, is_best: bool) -> None:
    """What the epoch loop does: commit the epoch, then keep it as the best if it is."""
    ck.save_last(epoch, state, meta)
    if is_best:
        ck.save_best(epoch, state, meta)


def _save_and_edit_best_meta(tmp_path, state, keys: tuple, value) -> None:
    """Save epoch 1 as last and best, then set ``meta[k0][k1]... = value`` in the best's stored meta JSON."""
    ck = Checkpoints(tmp_path, keep_last=1)
    _save(ck, 1, state, _meta(), is_best=True)
    ck.close()
    meta_file = tmp_path / "best" / "1" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    node = meta
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    meta_file.write_text(json.dumps(meta))


def _fresh():
    return create_train_state(MODEL, init_variables(MODEL, 7), make_optimizer(), seed=3)


def _equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b))))


def test_round_trip_resume_and_load(tmp_path, trained_state):
    ck = Checkpoints(tmp_path / "checkpoints", keep_last=2)
    for epoch in (1, 2, 3):
        _save(ck, epoch, trained_state, {**_meta(), "metrics": {"epoch": epoch}}, is_best=(epoch == 2))
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints" / "last").iterdir()) == [2, 3]  # last N
    state, meta = ck.restore_latest(_fresh())
    ck.close()
    assert meta["epoch"] == 3 and meta["step"] == 1
    assert _equal(state.params, trained_state.params)
    assert _equal(state.batch_stats, trained_state.batch_stats)
    assert _equal(state.opt_state, trained_state.opt_state)
    assert int(state.step) == 1 and np.array_equal(state.dropout_key, trained_state.dropout_key)

    model, variables, meta = load_checkpoint(tmp_path)  # the run folder: picks best
    assert meta["epoch"] == 2 and model == MODEL
    assert meta["class_names"] == ["class_0", "class_1", "class_2"]
    assert Standardizer.from_dict(meta["standardizer"]).std.tolist() == [2.0]
    assert _equal(variables["params"], trained_state.params)
    assert resolve_checkpoint(tmp_path, "last").name == "3"
    assert meta["checkpoint"] == str(tmp_path / "checkpoints" / "best" / "2")


def _data_files(step_dir: Path, item: str):
    return [p for p in (step_dir / item).rglob("*") if p.is_file() and p.parent.name == "d"]


def test_corrupted_checkpoint_raises_clear_error(tmp_path, trained_state):
    ck = Checkpoints(tmp_path, keep_last=1)
    _save(ck, 1, trained_state, _meta(), is_best=True)
    ck.close()
    step_dir = tmp_path / "last" / "1"
    # Overwrite every array data file with garbage of the same size.
    for f in _data_files(step_dir, "variables"):
        f.write_bytes(bytes(255 - b for b in f.read_bytes()))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(step_dir)
    with pytest.raises(CheckpointError, match="corrupted"), closing(Checkpoints(tmp_path, keep_last=1)) as ck:
        ck.restore_latest(_fresh())


def test_tampered_values_fail_the_fingerprint(tmp_path, trained_state):
    # as if the arrays had silently changed
    _save_and_edit_best_meta(tmp_path, trained_state, ("fingerprint", "variables"), "0" * 64)
    with pytest.raises(CheckpointError, match="fingerprint"):
        load_checkpoint(tmp_path / "best")


def test_incompatible_model_lists_the_mismatches(tmp_path, trained_state):
    ck = Checkpoints(tmp_path, keep_last=1)
    _save(ck, 1, trained_state, _meta(), is_best=True)
    ck.close()
    other = tiny_model(num_classes=5, reduce_filters=4)
    wrong = create_train_state(other, init_variables(other, 0), make_optimizer())
    with pytest.raises(CheckpointError) as e, closing(Checkpoints(tmp_path, keep_last=1)) as ck:
        ck.restore_latest(wrong)
    assert "wrong shape" in str(e.value) and "head/kernel (4, 3) vs (4, 5) expected" in str(e.value)


def test_missing_or_half_written_checkpoint(tmp_path, trained_state):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")
    ck = Checkpoints(tmp_path, keep_last=2)
    _save(ck, 1, trained_state, _meta(), is_best=True)
    ck.close()
    # A save killed half-way leaves orbax's temporary folder: it must be ignored (and cleaned up).
    shutil.copytree(tmp_path / "last" / "1", tmp_path / "last" / "2.orbax-checkpoint-tmp-123")
    with closing(Checkpoints(tmp_path, keep_last=2)) as ck:
        assert ck.latest_epoch() == 1
        state, meta = ck.restore_latest(_fresh())
    assert meta["epoch"] == 1 and _equal(state.params, trained_state.params)


def test_edited_meta_fails_its_fingerprint(tmp_path, trained_state):
    """One changed digit of the stored standardizer would change every prediction: it must not load."""
    _save_and_edit_best_meta(tmp_path, trained_state, ("standardizer", "mean", 0), 1.6)
    with pytest.raises(CheckpointError, match="meta .* does not match the fingerprint"):
        load_checkpoint(tmp_path / "best")


def test_damaged_best_is_an_error_not_a_silent_fallback(tmp_path, trained_state):
    ck = Checkpoints(tmp_path / "checkpoints", keep_last=2)
    _save(ck, 1, trained_state, _meta(), is_best=True)
    _save(ck, 2, trained_state, _meta(), is_best=False)
    ck.close()
    shutil.rmtree(tmp_path / "checkpoints" / "best" / "1" / "variables")
    with pytest.raises(CheckpointError, match="--checkpoint-kind last"):
        load_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path, "last")[2]["epoch"] == 2  # the explicit choice works


def test_older_format_is_refused_with_a_message(tmp_path, trained_state):
    _save_and_edit_best_meta(tmp_path, trained_state, ("format_version",), 1)
    with pytest.raises(CheckpointError, match="has format 1, this version of jazbat-jax reads format 2"):
        load_checkpoint(tmp_path / "best")


def test_a_results_folder_of_many_runs_says_how_to_pick_one(tmp_path, trained_state):
    """`jazbat experiments` and `accuracy-cost` write folders of runs; given one where a run is expected,
    the error says what it is and names run folders to give instead."""
    grid = tmp_path / "grid"
    for job in ("cells/c1", "cells/c2", "pretrain/t1"):
        (grid / job / "run").mkdir(parents=True)
        (grid / job / "run" / "config.json").write_text("{}")
    with closing(Checkpoints(grid / "cells" / "c2" / "run" / "checkpoints", keep_last=1)) as ck:
        _save(ck, 1, trained_state, _meta(), is_best=True)
    (grid / "invocations.jsonl").write_text("{}\n")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(grid)
    assert str(e.value) == (f"{grid} is an experiment grid's results folder, not one run: give one of its 1 run "
                            f"folder (cells/c2/run), e.g. {grid}/cells/c2/run; `jazbat experiments --results {grid} "
                            "--report-only` rebuilds its report")
    with pytest.raises(CheckpointError, match=f"^{grid}/cells/c2 holds its run folder in run/: give {grid}/cells/c2/run$"):
        load_checkpoint(grid / "cells" / "c2")
    assert load_checkpoint(grid / "cells" / "c2" / "run")[2]["epoch"] == 1
    committed = Path(__file__).resolve().parents[1] / "docs" / "results" / "quick"  # reports, no checkpoints
    with pytest.raises(CheckpointError, match=r"is an experiment grid's results folder, and none of its \d+ runs kept "
                                              r"its checkpoints .*`jazbat experiments --results .* --report-only`"):
        load_checkpoint(committed)


def test_an_unfinished_save_is_named_as_such_with_the_finished_ones(tmp_path, trained_state):
    with closing(Checkpoints(tmp_path / "checkpoints", keep_last=2)) as ck:
        _save(ck, 1, trained_state, _meta(), is_best=True)
        _save(ck, 2, trained_state, _meta(), is_best=False)
    last = tmp_path / "checkpoints" / "last"
    # What a run stopped during the save of epoch 3 leaves behind (the manager that would clean it up never opened).
    shutil.copytree(last / "2", last / "3.orbax-checkpoint-tmp-17")
    with pytest.raises(CheckpointError, match=rf"^{last}/3.orbax-checkpoint-tmp-17 is an unfinished save .*: give a "
                                              rf"finished checkpoint of {last}: epochs 1, 2 \({last}/2\)$"):
        load_checkpoint(last / "3.orbax-checkpoint-tmp-17")
    shutil.copytree(last / "2", tmp_path / "copy_of_2")
    with pytest.raises(CheckpointError, match="copy_of_2 is not an epoch's checkpoint folder"):
        load_checkpoint(tmp_path / "copy_of_2")
