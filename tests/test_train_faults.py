"""A run folder never lies: SIGKILL at every phase of an epoch's commit and of the end of a run, then the
same call again, must give exactly the uninterrupted result (parameters, best epoch, metrics rows,
final evaluation). Also: one process per run folder, and the recovery that an error message advises."""
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from jazbat_jax.files import FolderBusyError, FolderLock
from jazbat_jax.train.checkpoint import CheckpointError, load_checkpoint
from tiny import fit_tiny, improving_config

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"windows_per_s", "train_seconds"}  # the only fields that differ between identical runs

# Runs the tiny training in a subprocess that SIGKILLs itself at one named phase of one epoch.
KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import orbax.checkpoint as ocp
    import tiny
    from jazbat_jax.train import checkpoint, loop, plots

    phase, when, epoch = {phase!r}, {when!r}, {epoch!r}

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner, name, matches):
        original = getattr(owner, name)
        def wrapped(*a, **k):
            hit = matches(*a, **k)
            if hit and when == "before":
                kill()
            out = original(*a, **k)
            if hit and when == "after":
                kill()
            return out
        setattr(owner, name, wrapped)

    if phase in ("save_last", "save_best") and when == "inside":
        # after the arrays are written, while the JSON item of that epoch is being written
        kind = phase.split("_")[1]
        original = ocp.JsonCheckpointHandler.save
        def save(self, directory, *a, **k):
            if f"/{{kind}}/{{epoch}}.orbax-checkpoint-tmp" in str(directory):
                kill()
            return original(self, directory, *a, **k)
        ocp.JsonCheckpointHandler.save = save
        if hasattr(ocp.JsonCheckpointHandler, "async_save"):
            original_async = ocp.JsonCheckpointHandler.async_save
            async def async_save(self, directory, *a, **k):
                if f"/{{kind}}/{{epoch}}.orbax-checkpoint-tmp" in str(directory):
                    kill()
                return await original_async(self, directory, *a, **k)
            ocp.JsonCheckpointHandler.async_save = async_save
    elif phase in ("save_last", "save_best"):
        wrap(checkpoint.Checkpoints, phase, lambda self, e, *a, **k: e == epoch)
    elif phase == "metrics":
        wrap(loop, "append_metrics", lambda run, row: row["epoch"] == epoch)
    elif phase == "final_eval":
        wrap(loop, "write_json", lambda path, obj, *a, **k: path.name == "final_eval.json")
    elif phase == "plots":
        wrap(plots, "plot_curves", lambda *a, **k: True)
    elif phase == "mid_epoch":  # the second batch of the epoch
        make = loop.jit_train_step
        def jit_train_step(*a, **k):
            step, calls = make(*a, **k), [0]
            def counted(state, batch, weights):
                calls[0] += 1
                if calls[0] == (epoch - 1) * 3 + 2:  # 40 windows, batch 16: 3 steps per epoch
                    kill()
                return step(state, batch, weights)
            return counted
        loop.jit_train_step = jit_train_step
    tiny.fit_tiny({run!r}, tiny.improving_config(), plots=True)
""")


def _outputs(run: Path) -> dict:
    rows = [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run / "metrics.jsonl").read_text().splitlines()]
    model, variables, meta = load_checkpoint(run)
    return {"rows": rows, "best_epoch": meta["epoch"], "params": jax.device_get(variables["params"]),
            "final": json.loads((run / "final_eval.json").read_text())}


def _same(a: dict, b: dict) -> None:
    assert a["rows"] == b["rows"]
    assert a["best_epoch"] == b["best_epoch"]
    assert a["final"] == b["final"]
    for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    fit_tiny(run, improving_config(), plots=True)
    out = _outputs(run)
    out["new_best"] = max(r["epoch"] for r in out["rows"] if r["best"])  # a save of a new best checkpoint
    assert 1 < out["new_best"] < len(out["rows"])  # after an earlier best, before a later epoch
    return out


PHASES = [(p, w) for p in ("save_last", "save_best", "metrics") for w in ("before", "inside", "after")
          if not (p == "metrics" and w == "inside")]
PHASES += [("final_eval", "before"), ("final_eval", "after"), ("plots", "before"), ("plots", "after"),
           ("mid_epoch", "during")]


@pytest.mark.slow
@pytest.mark.parametrize("phase, when", PHASES, ids=[f"{p}-{w}" for p, w in PHASES])
def test_kill_at_every_phase_resumes_to_the_uninterrupted_result(phase, when, uninterrupted, xla_cache_env, tmp_path):
    epoch = uninterrupted["new_best"]
    code = KILLER.format(tests=str(ROOT / "tests"), phase=phase, when=when, epoch=epoch, run=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=xla_cache_env)  # the killed subprocesses compile the same steps
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    fit_tiny(tmp_path, improving_config(), plots=True)  # the same call again
    _same(_outputs(tmp_path), uninterrupted)
    assert not list((tmp_path / "checkpoints").glob("*/*tmp*"))  # half-written saves are cleaned up


def test_one_process_per_run_folder(tmp_path):
    holder = FolderLock(tmp_path, "a test holding the folder")
    with pytest.raises(FolderBusyError, match=r"is in use by process \d+ on .*a test holding the folder"):
        fit_tiny(tmp_path)
    assert not (tmp_path / "checkpoints").exists()  # nothing was touched
    holder.release()
    fit_tiny(tmp_path, stop_after_epoch=1)  # free again; and a finished call releases it
    FolderLock(tmp_path).release()


def test_the_advised_recovery_works_on_the_first_try(uninterrupted, tmp_path):
    """A corrupted newest checkpoint is refused with advice to delete it; doing so resumes from the one
    before and ends with the uninterrupted result (no StepAlreadyExistsError, no lost metrics row)."""
    fit_tiny(tmp_path, improving_config(), plots=True)
    newest = max((tmp_path / "checkpoints" / "last").iterdir(), key=lambda p: int(p.name))
    for f in (newest / "variables").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(bytes(255 - b for b in f.read_bytes()))
    with pytest.raises(CheckpointError, match=f"Delete {newest}"):
        fit_tiny(tmp_path, improving_config(), plots=True)
    shutil.rmtree(newest)
    fit_tiny(tmp_path, improving_config(), plots=True)
    _same(_outputs(tmp_path), uninterrupted)


@pytest.fixture
def small_disk(tmp_path):
    """A real file system of its own (tmpfs, 16 MiB) to fill up; needs root (mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _bytes_used(folder: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file())


def test_a_full_disk_during_a_save_is_one_line_and_loses_nothing(uninterrupted, small_disk, capfd):
    """Disk full while epoch 2 is saved (a real ENOSPC): one line saying what, where and how much is free, no
    library traceback; once space is freed, the same call resumes to the uninterrupted result."""
    run = small_disk / "run"
    fit_tiny(run, improving_config(), plots=True, stop_after_epoch=1)
    one_checkpoint = _bytes_used(run / "checkpoints" / "last" / "1")
    filler = small_disk / "filler"  # leaves half a checkpoint's space free
    page = 4096
    filler.write_bytes(bytes((shutil.disk_usage(small_disk).free - one_checkpoint // 2) // page * page))
    capfd.readouterr()
    with pytest.raises(CheckpointError) as e:
        fit_tiny(run, improving_config(), plots=True)
    assert re.fullmatch(rf"no space left on the device while saving epoch 2's checkpoint in {run}/checkpoints/last "
                        r"\(\d+\.\d KiB free there; one checkpoint of this run takes \d+\.\d KiB\): free some space, "
                        r"then rerunning the same command resumes after epoch 1, the newest complete checkpoint",
                        str(e.value)), str(e.value)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "No space left" not in err and "Event loop" not in err, err
    assert not list((run / "checkpoints").glob("*/*tmp*"))  # the failed save's partial files are gone
    filler.unlink()
    fit_tiny(run, improving_config(), plots=True)  # the same call again
    _same(_outputs(run), uninterrupted)


def _corrupt_and_remove_as_advised(run: Path, epoch: int, config) -> None:
    """Flip one bit of the largest array file of ``last/<epoch>``; the resume refuses it and advises to delete
    it; delete it."""
    step_dir = run / "checkpoints" / "last" / str(epoch)
    largest = max((f for f in (step_dir / "variables").rglob("*") if f.is_file()), key=lambda f: f.stat().st_size)
    data = bytearray(largest.read_bytes())
    data[len(data) // 2] ^= 1
    largest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"Delete {step_dir} to resume from the epoch before it"):
        fit_tiny(run, config, plots=True)
    shutil.rmtree(step_dir)


def _keeping(keep_last: int):
    config = improving_config()
    return dataclasses.replace(config, train=dataclasses.replace(config.train, keep_last=keep_last))


def test_removing_a_damaged_newest_best_epoch_as_advised_loses_nothing(uninterrupted, tmp_path):
    """The newest epoch (3) is also the best; once it is removed, the best of the committed epochs is epoch 1,
    whose best checkpoint was replaced by epoch 3's: it is re-derived from last/1, and only then is best/3
    (an epoch trained again) dropped. It deleted best/3 first, then stopped: 'the best epoch 1 is missing'."""
    fit_tiny(tmp_path, _keeping(3), plots=True, stop_after_epoch=3)
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "best").iterdir()) == ["3"]
    _corrupt_and_remove_as_advised(tmp_path, 3, _keeping(3))
    fit_tiny(tmp_path, _keeping(3), plots=True)
    _same(_outputs(tmp_path), uninterrupted)


def test_a_resume_that_cannot_go_on_deletes_nothing(tmp_path):
    """With last/1 gone too (keep_last 2), epoch 1's state is nowhere: the resume stops, and the intact best/3
    is still there to evaluate."""
    fit_tiny(tmp_path, _keeping(2), plots=True, stop_after_epoch=3)
    _corrupt_and_remove_as_advised(tmp_path, 3, _keeping(2))
    before = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "checkpoints").rglob("*"))
    with pytest.raises(CheckpointError, match=r"cannot resume .* from epoch 2: the best of its committed epochs, 1, "
                                              r"is kept neither in .* Nothing was changed: the intact checkpoints "
                                              r"\(best/3, last/2\) still evaluate and export"):
        fit_tiny(tmp_path, _keeping(2), plots=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "checkpoints").rglob("*")) == before
    assert load_checkpoint(tmp_path)[2]["epoch"] == 3
