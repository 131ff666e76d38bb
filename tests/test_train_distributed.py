"""Multi-host data parallelism for real: two processes on localhost joined by ``jax.distributed``
(one CPU device each, gloo collectives) take the trainer's sharded train step and evaluation, and
end with exactly what one process computes on one device from the whole global batch. The hosts also
check that their compiled step has no collective inside a loop; their GRU gradient sums its weight
gradients after the time loop, the single process in it (``kernels.weight_grads_after_loop``), so the
comparison covers both."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from distributed_worker import WINDOWS, one_step
from jazbat_jax.model import init_variables
from jazbat_jax.train.sharding import DataParallel
from jazbat_jax.trees import flatten
from tiny import tiny_model

WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = WORKER.parents[1]
TIMEOUT_S = 600  # generous: a loaded 2-core machine compiles slowly; a hung collective would wait for ever


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start_hosts(tmp_path: Path, n: int) -> list[tuple[subprocess.Popen, Path]]:
    """Start ``n`` worker processes on localhost, one CPU device each."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("XLA_FLAGS", None)  # one device per process, whatever the caller forces
    coordinator = f"localhost:{free_port()}"
    hosts = []
    for i in range(n):
        log = tmp_path / f"host{i}.log"
        cmd = [sys.executable, str(WORKER), coordinator, str(n), str(i), str(tmp_path / f"host{i}.npz")]
        with open(log, "w") as f:
            hosts.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT), log))
    return hosts


def wait_for_hosts(hosts: list[tuple[subprocess.Popen, Path]]) -> list[dict[str, np.ndarray]]:
    """What each host saved; on a crash or a hang (killed after ``TIMEOUT_S``), fail with every host's output."""
    deadline = time.monotonic() + TIMEOUT_S
    failed = []
    try:
        for i, (p, _) in enumerate(hosts):
            try:
                if p.wait(timeout=max(deadline - time.monotonic(), 1)) != 0:
                    failed.append(f"host {i} exited with {p.returncode}")
            except subprocess.TimeoutExpired:
                failed.append(f"host {i} still running after {TIMEOUT_S} s (a hung collective or coordinator?)")
    finally:
        for p, _ in hosts:
            if p.poll() is None:
                p.kill()
                p.wait()
    outputs = "".join(f"\n--- host {i} output (last 4000 characters):\n{log.read_text()[-4000:]}"
                      for i, (_, log) in enumerate(hosts))
    assert not failed, "; ".join(failed) + outputs
    return [dict(np.load(log.with_suffix(".npz"))) for _, log in hosts]


@pytest.mark.slow  # three processes compile the train step, on 2 shared cores
def test_two_processes_step_equals_single_device_step(tmp_path):
    procs = start_hosts(tmp_path, 2)
    try:  # the reference is computed while the hosts run
        reference = one_step(DataParallel.create(jax.devices()[:1]))
    finally:
        hosts = wait_for_hosts(procs)
    assert sorted(hosts[0]) == sorted(reference) and any(k.startswith("params/") for k in reference)
    for k in reference:
        np.testing.assert_array_equal(hosts[0][k], hosts[1][k], err_msg=f"{k}: the two hosts disagree")
        np.testing.assert_allclose(hosts[0][k], reference[k], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{k}: two hosts vs one device")
    # A real update of a batch whose 14 real windows span both hosts (the 2 padding rows are masked).
    init = flatten(init_variables(tiny_model(), 0)["params"])
    assert not np.allclose(reference["params/head/kernel"], init["head/kernel"])
    assert reference["metrics/count"] == WINDOWS and len(reference["eval/pred"]) == WINDOWS
