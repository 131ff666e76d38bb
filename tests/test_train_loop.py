"""The epoch loop: run folder, resume determinism (stop + resume, and SIGKILL during a save)."""
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from jazbat_jax.train.checkpoint import CheckpointError, load_checkpoint
from tiny import fit_tiny, tiny_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("full")
    result = fit_tiny(run, plots=True)
    return run, jax.device_get(result["state"].params), result


def test_run_folder_contents(uninterrupted):
    run, _, result = uninterrupted
    for name in ("config.json", "metrics.jsonl", "final_eval.json", "curves.png", "confusion.png", "per_class.png"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1", "windows_per_s"} <= set(rows[0])
    final = json.loads((run / "final_eval.json").read_text())
    assert final["report"]["n"] == 10 and "algorithm1_batch_averaged" in final
    best_epoch = max(rows, key=lambda r: (r["val_macro_f1"], -r["epoch"]))["epoch"]
    assert final["checkpoint_epoch"] == best_epoch
    model, variables, meta = load_checkpoint(run)
    assert meta["run"] == tiny_config().to_dict() and meta["class_names"] == ["class_0", "class_1", "class_2"]
    assert meta["input"]["kind"] == "1d" and meta["input"]["gravity"] == "removed"


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_stop_and_resume_equals_uninterrupted(tmp_path, uninterrupted):
    _, params, _ = uninterrupted
    stopped = fit_tiny(tmp_path, stop_after_epoch=1)
    assert stopped["stopped_after_epoch"] == 1
    resumed = fit_tiny(tmp_path)
    assert _same(jax.device_get(resumed["state"].params), params)
    assert [json.loads(l)["epoch"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_resume_refuses_a_different_configuration(tmp_path):
    fit_tiny(tmp_path, stop_after_epoch=1)
    with pytest.raises(CheckpointError, match="train.learning_rate: 0.001 in the run folder vs 0.1 now"):
        fit_tiny(tmp_path, tiny_config(learning_rate=0.1))
    fit_tiny(tmp_path, tiny_config(epochs=2))  # more or fewer epochs may change on resume


KILL_DURING_SAVE = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import orbax.checkpoint as ocp
    import tiny

    # SIGKILL this process in the middle of epoch 2's checkpoint: after the arrays of
    # 'variables' and 'train' are written, while the JSON item is being written.
    original = ocp.JsonCheckpointHandler.save
    def save(self, directory, *a, **k):
        if "/2.orbax-checkpoint-tmp" in str(directory):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, directory, *a, **k)
    ocp.JsonCheckpointHandler.save = save
    if hasattr(ocp.JsonCheckpointHandler, "async_save"):
        original_async = ocp.JsonCheckpointHandler.async_save
        async def async_save(self, directory, *a, **k):
            if "/2.orbax-checkpoint-tmp" in str(directory):
                os.kill(os.getpid(), signal.SIGKILL)
            return await original_async(self, directory, *a, **k)
        ocp.JsonCheckpointHandler.async_save = async_save
    tiny.fit_tiny({run!r})
""")


def test_sigkill_during_save_resumes_from_last_complete_checkpoint(tmp_path, uninterrupted, xla_cache_env):
    _, params, _ = uninterrupted
    code = KILL_DURING_SAVE.format(tests=str(ROOT / "tests"), run=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=xla_cache_env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    last = tmp_path / "checkpoints" / "last"
    assert sorted(p.name for p in last.iterdir() if p.name.isdigit()) == ["1"]
    assert any("tmp" in p.name for p in last.iterdir())  # the half-written save is still there
    resumed = fit_tiny(tmp_path)
    assert _same(jax.device_get(resumed["state"].params), params)
    assert not any("tmp" in p.name for p in last.iterdir())  # and was cleaned up on resume
