"""The experiment pipeline on real Ray: a local Ray against one process, a two-node cluster on this
machine with a node killed mid-job, a killed driver, a stopped (hung) worker, a damaged result."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jazbat_jax.experiments import config, grid, runner

TINY = {
    "target": {"window": 32, "step": 64, "participants": [2, 3, 4, 5, 6, 7]},
    "pretrain": {"epochs": 2, "step": 64, "activities": "ABCD", "watch_subjects": [1600, 1604, 1606]},
    "finetune": {"epochs": 2, "batch_size": 32},
    "grid": {"n_folds": 3, "folds": [0], "protocols": ["subject"], "pretraining": ["none", "watch"],
             "labels": ["true"]},
    "baseline": {"n_estimators": 10},
    "latency": {"enabled": False},
    # one personal job: the study's forest on four participants (the personal networks are tested elsewhere)
    "personal": {"inputs": ["1d"], "splits": ["time_block"], "labels": ["true"], "deep_models": [],
                 "participants": [2, 3, 4, 5], "n_folds": 3, "forest_trees": 10},
}


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return config.load_config("quick", path)


@pytest.fixture
def no_ray_left():
    yield
    runner.shutdown()


def _numbers(results: Path, cfg: dict) -> dict:
    """What a job computed, per job id: its test confusion matrix, accuracy and stopping epoch."""
    return {r["job"]: (r["report"].get("confusion"), r["report"]["accuracy"], r.get("checkpoint_epoch"))
            for r in grid.load_results(results, cfg)}


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The tiny grid run in one process, without Ray: the reference."""
    path = tmp_path_factory.mktemp("cfg") / "tiny.json"
    path.write_text(json.dumps(TINY))
    cfg = config.load_config("quick", path)
    results = tmp_path_factory.mktemp("in-process")
    # in a process of its own with XLA on one thread, as `jazbat experiments --in-process` runs it (JAX reads
    # its flags once, and this test process loaded it long ago)
    script = ("import json, sys; from jazbat_jax.experiments import grid; "
              "grid.run_grid(json.loads(sys.argv[1]), sys.argv[2], progress=False, in_process=True, log=lambda _: None)")
    subprocess.run([sys.executable, "-c", script, json.dumps(cfg), str(results)], check=True, capture_output=True,
                   env={**os.environ, "XLA_FLAGS": runner.single_thread_xla_flags()}, timeout=900)
    return results, _numbers(results, cfg)


@pytest.mark.slow
def test_local_ray_gives_what_one_process_gives(cfg, tmp_path, in_process, no_ray_left):
    """Trunk, scratch cell, transfer cell, forest and personal job on a local Ray with two workers: the
    same job ids and the same numbers as one process; a rerun finds every job done."""
    ref_folder, reference = in_process
    assert [k for k in ("pretrain", "deep", "baseline", "personal")
            if any(j.kind == k for j in grid.plan(cfg))] == ["pretrain", "deep", "baseline", "personal"]
    results = tmp_path / "ray"
    summary = grid.run_grid(cfg, results, progress=False, ray_options=runner.RayOptions(workers=2))
    assert summary["runner"] == "ray" and sorted(summary["ran"]) == sorted(reference)
    assert _numbers(results, cfg) == reference
    assert list(results.rglob(runner.HEARTBEAT)) == []
    again = grid.run_grid(cfg, results, progress=False, ray_options=runner.RayOptions(workers=2))
    assert again["ran"] == [] and again["skipped_done"] == len(reference)


@pytest.mark.slow
def test_two_node_cluster_spreads_jobs_and_survives_a_killed_node(cfg, tmp_path, in_process, no_ray_left):
    """A head and a second node on this machine (one CPU each): both run jobs; the second node killed
    while it trains a job: every job still finishes exactly once, with the numbers of an uninterrupted run."""
    from ray.cluster_utils import Cluster

    _, reference = in_process
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        results = tmp_path / "cluster"
        out: dict = {}
        run = threading.Thread(target=lambda: out.update(grid.run_grid(
            cfg, results, progress=False, ray_options=runner.RayOptions(address=cluster.address))))
        run.start()
        killed, seen = None, set()  # the job killed with its node; the nodes seen running jobs
        deadline = time.time() + 300
        while killed is None and run.is_alive() and time.time() < deadline:
            for beat in results.rglob(runner.HEARTBEAT):
                try:
                    holder = json.loads(beat.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
                seen.add(holder["node"])
                if holder["node"] == worker.node_id:
                    time.sleep(2)  # well inside the job
                    cluster.remove_node(worker, allow_graceful=False)
                    killed = beat.parent.name
                    break
            time.sleep(0.2)
        run.join(timeout=600)
        assert killed is not None, "no job ran on the second node"
        assert not run.is_alive() and sorted(out["ran"]) == sorted(reference)  # each once
        assert _numbers(results, cfg) == reference
        # both nodes ran jobs; the survivor finished the rest, the killed node's job among them
        head = cluster.head_node.node_id
        assert worker.node_id in seen and out["jobs_per_node"].get(head, 0) >= 1  # a job ran on each node
        assert set(out["jobs_per_node"]) <= {head, worker.node_id}
        assert sum(out["jobs_per_node"].values()) == len(reference)
    finally:
        runner.shutdown()
        cluster.shutdown()


def _ray_workers() -> list[int]:
    """Pids of the Ray worker processes running a job on this machine."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::_run_task"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _start_driver(cfg: dict, results: Path, **options) -> subprocess.Popen:
    script = ("import json, sys; from jazbat_jax.experiments import grid, runner; "
              f"grid.run_grid(json.loads(sys.argv[1]), {str(results)!r}, progress=False, "
              f"ray_options=runner.RayOptions(**json.loads(sys.argv[2])))")
    return subprocess.Popen([sys.executable, "-c", script, json.dumps(cfg), json.dumps(options)])


def _wait_for_a_running_job(results: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        beats = list(results.rglob(runner.HEARTBEAT))
        if beats:
            return beats[0]
        time.sleep(0.2)
    raise AssertionError("no job started")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_driver_leaves_no_job_training_and_a_rerun_finishes_each_once(cfg, tmp_path, sig, in_process,
                                                                                no_ray_left):
    _, reference = in_process
    results = tmp_path / "results"
    others = set(_ray_workers())  # another Ray on this machine (an experiment grid) is not this test's
    ours = lambda: sorted(set(_ray_workers()) - others)  # noqa: E731
    driver = _start_driver(cfg, results, workers=2)
    _wait_for_a_running_job(results, driver)
    time.sleep(1)
    os.kill(driver.pid, sig)
    driver.wait(timeout=60)
    deadline = time.time() + 30
    while ours() and time.time() < deadline:
        time.sleep(0.5)
    assert ours() == []  # no job trains unobserved
    if sig == signal.SIGTERM:  # a plain kill still records the invocation and why it stopped
        line = json.loads((results / "invocations.jsonl").read_text().splitlines()[-1])
        assert line["stopped"].startswith("KeyboardInterrupt: stopped by signal 15") and line["wall_s"] > 0
    again = grid.run_grid(cfg, results, progress=False, ray_options=runner.RayOptions(workers=2))
    assert again["skipped_done"] + len(again["ran"]) == len(reference) and len(set(again["ran"])) == len(again["ran"])
    assert _numbers(results, cfg) == reference


@pytest.mark.slow
def test_a_stopped_worker_is_detected_and_its_job_run_again(cfg, tmp_path, in_process, no_ray_left):
    """SIGSTOP freezes a worker in the middle of a job: after the hang timeout the driver kills it and
    runs the job again elsewhere; the grid finishes with the uninterrupted numbers."""
    _, reference = in_process
    results = tmp_path / "results"
    logs: list[str] = []
    out: dict = {}
    run = threading.Thread(target=lambda: out.update(grid.run_grid(
        cfg, results, progress=False, log=logs.append, ray_options=runner.RayOptions(workers=2, hang_timeout_s=12))))
    t0 = time.time()
    run.start()
    frozen = None
    while frozen is None and time.time() - t0 < 240:
        for beat in results.rglob(runner.HEARTBEAT):
            try:
                frozen = json.loads(beat.read_text())["pid"], beat.parent.name
            except (OSError, json.JSONDecodeError):
                continue
            os.kill(frozen[0], signal.SIGSTOP)
            break
        time.sleep(0.2)
    assert frozen is not None, "no job started"
    run.join(timeout=600)
    assert not run.is_alive()
    hung = [line for line in logs if "no sign of life" in line]
    assert len(hung) == 1 and hung[0].startswith(f"job {frozen[1]}:")
    assert sorted(out["ran"]) == sorted(reference) and _numbers(results, cfg) == reference


def test_a_damaged_result_is_named_kept_and_its_job_run_again(cfg, tmp_path):
    """Only the forests (seconds): a result.json cut short is not a finished job."""
    cfg = {**cfg, "grid": {**cfg["grid"], "pretraining": ["none"]}, "personal": {**cfg["personal"], "enabled": False}}
    cfg["finetune"] = {**cfg["finetune"], "epochs": 1}
    results = tmp_path / "results"
    grid.run_grid(cfg, results, progress=False, compilation_cache=False, in_process=True, log=lambda _: None)
    forest = next(j for j in grid.plan(cfg) if j.kind == "baseline")
    path = forest.folder(results) / "result.json"
    before = json.loads(path.read_text())
    path.write_text('{"j')
    logs: list[str] = []
    again = grid.run_grid(cfg, results, progress=False, compilation_cache=False, in_process=True, log=logs.append)
    assert again["ran"] == [forest.id]
    assert any(str(path) in line and "damaged" in line for line in logs)
    assert path.with_name("result.json.damaged").read_text() == '{"j'
    assert json.loads(path.read_text())["report"] == before["report"]
