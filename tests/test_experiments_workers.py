"""Several single-threaded worker processes on one grid: claims, waiting for a trunk, resuming after a
killed worker, and a real tiny grid trained by two workers (the same jobs and folders as one process)."""
import json
import subprocess
import sys

import pytest

from jazbat_jax.experiments import config, grid, workers

TINY = {
    "target": {"window": 32, "step": 64, "participants": [2, 3, 4, 5, 6, 7]},
    "pretrain": {"epochs": 1, "step": 64, "activities": "ABCD", "watch_subjects": [1600, 1604, 1606]},
    "finetune": {"epochs": 1, "batch_size": 32},
    "grid": {"n_folds": 3, "folds": [0], "protocols": ["subject"], "pretraining": ["none", "watch"],
             "labels": ["true"]},
    "baseline": {"enabled": False},
    "latency": {"enabled": False},
    "personal": {"enabled": False},
}


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return config.load_config("quick", path)


def test_a_claim_is_exclusive_and_released(tmp_path):
    assert workers.claim(tmp_path, "job-a")
    assert not workers.claim(tmp_path, "job-a")
    assert workers.claimed(tmp_path, "job-a")
    workers.release(tmp_path, "job-a")
    assert not workers.claimed(tmp_path, "job-a") and workers.claim(tmp_path, "job-a")


def test_claims_of_stopped_processes_are_cleared(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    (tmp_path / workers.CLAIMS).mkdir()
    (tmp_path / workers.CLAIMS / "job-dead.json").write_text(json.dumps({"pid": dead_pid, "host": __import__(
        "socket").gethostname()}))
    (tmp_path / workers.CLAIMS / "job-half.json").write_text("")  # killed while claiming
    assert workers.claim(tmp_path, "job-live")  # this process: alive
    assert workers.clear_stale_claims(tmp_path) == ["job-dead", "job-half"]
    assert workers.claimed(tmp_path, "job-live") and not workers.claimed(tmp_path, "job-dead")


def test_next_job_waits_for_a_trunk_another_worker_trains(tmp_path, cfg):
    jobs = grid.plan(cfg)
    trunk, scratch, transfer = jobs[0], jobs[1], jobs[2]
    assert (trunk.kind, scratch.settings["pretraining"], transfer.settings["pretraining"]) == ("pretrain", "none", "watch")
    assert grid.needs(transfer, tmp_path) == [trunk.folder(tmp_path) / "result.json"] and grid.needs(scratch, tmp_path) == []
    assert workers.claim(tmp_path, trunk.id)  # another worker trains the trunk
    assert workers.next_job(jobs, tmp_path) is scratch  # the one job that needs no trunk
    assert workers.next_job(jobs, tmp_path) == "wait"  # the transfer cell waits for the trunk
    trunk.folder(tmp_path).mkdir(parents=True)
    (trunk.folder(tmp_path) / "result.json").write_text("{}")  # the trunk is done
    assert workers.next_job(jobs, tmp_path) is transfer
    assert workers.next_job(jobs, tmp_path) is None  # all that is left is claimed


def test_workers_and_runs_per_program_do_not_combine(tmp_path, cfg):
    with pytest.raises(config.ConfigError, match="either workers or runs_per_program"):
        grid.run_grid(cfg, tmp_path, progress=False, compilation_cache=False, workers=2, runs_per_program=2)



def test_a_stopped_grid_records_its_invocation(tmp_path, cfg, monkeypatch):
    def fail(group, *args, **kwargs):
        raise RuntimeError(f"out of memory in {group[0].name}")

    monkeypatch.setattr(grid, "run_group", fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        grid.run_grid(cfg, tmp_path, progress=False, compilation_cache=False, command="jazbat experiments")
    line = json.loads((tmp_path / "invocations.jsonl").read_text())
    assert line["stopped"] == "RuntimeError: out of memory in wisdm-watch-1d" and line["ran"] == []
    assert line["command"] == "jazbat experiments" and line["jobs"] == 3

@pytest.mark.slow
def test_two_workers_train_the_grid(tmp_path, cfg):
    """A real tiny grid (a WISDM trunk, then a scratch and a transfer cell) by two worker processes: every
    job of the plan finished once, in the folders one process would use, and no claim left behind."""
    results = tmp_path / "results"
    summary = grid.run_grid(cfg, results, progress=False, compilation_cache=False, workers=2)
    jobs = grid.plan(cfg)
    assert sorted(summary["ran"]) == sorted(j.id for j in jobs)
    for job in jobs:
        result = json.loads((job.folder(results) / "result.json").read_text())
        assert 0 <= result["report"]["accuracy"] <= 1
    assert list((results / workers.CLAIMS).glob("*.json")) == []
    logs = [(results / workers.LOGS / f"worker-{k}.log").read_text() for k in (1, 2)]
    assert sum(log.count("\n=== ") for log in logs) == len(jobs)  # each job run by exactly one worker
    assert all("worker done" in log for log in logs)
    again = grid.run_grid(cfg, results, progress=False, compilation_cache=False, workers=2)
    assert again["ran"] == [] and again["skipped_done"] == len(jobs)


def _processes_on(results) -> list[int]:
    """Pids of the processes whose command line names ``results`` (the workers of that grid)."""
    from pathlib import Path

    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(results) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_a_killed_grid_stops_its_workers(tmp_path, cfg):
    """`kill PID` of the grid (SIGTERM) stops its workers too, and a rerun resumes the grid to the end."""
    import os
    import signal
    import time

    results = tmp_path / "results"
    script = ("import json, sys; from jazbat_jax.experiments import grid; "
              f"grid.run_grid(json.loads(sys.argv[1]), {str(results)!r}, progress=False, compilation_cache=False, "
              "workers=2)")
    parent = subprocess.Popen([sys.executable, "-c", script, json.dumps(cfg)])
    deadline = time.time() + 120
    while len([p for p in _processes_on(results) if p != parent.pid]) < 2 and time.time() < deadline:
        time.sleep(0.5)
    workers_pids = [p for p in _processes_on(results) if p != parent.pid]
    assert len(workers_pids) == 2, "the workers did not start"
    os.kill(parent.pid, signal.SIGTERM)
    parent.wait(timeout=60)
    time.sleep(1)
    assert [p for p in workers_pids if p in _processes_on(results)] == []
    # the killed invocation still records itself: when it started, how long it ran, why it stopped
    line = json.loads((results / "invocations.jsonl").read_text().splitlines()[-1])
    assert line["stopped"].startswith("KeyboardInterrupt: stopped by signal 15") and line["wall_s"] > 0
    summary = grid.run_grid(cfg, results, progress=False, compilation_cache=False, workers=2)
    assert all(job.done(results) for job in grid.plan(cfg)) and summary["skipped_done"] + len(summary["ran"]) == 3
