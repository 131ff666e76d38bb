"""Several single-threaded processes working through one grid's jobs side by side.

On a 2-core CPU one batch-32 training run leaves part of the machine idle, and training many runs in
one vmapped program was slower still (docs/training.md); two single-threaded processes, each training
its own job, were the fastest way measured. ``run_grid(..., workers=N)`` (``jazbat experiments
--workers N``) starts N worker processes, ``python -m jazbat_jax.experiments.workers RESULTS``, with
XLA:CPU on one thread each.

A worker reads the grid's config from ``RESULTS/config.json`` and repeatedly takes the first job of
the plan that is not finished, not claimed by another worker, and whose trunk (if it needs one) is
finished. It claims the job with a file created exclusively in ``RESULTS/.claims/``, runs it exactly
as a one-process grid would (the same folders and ``result.json``, resuming from the job's newest
checkpoint), and removes the claim. When only jobs waiting for a trunk that another worker is
training are left, it waits; when every job left is claimed, it stops.

The parent clears claims left by killed processes before it starts the workers (so no two workers
race over a stale claim), shows the progress over all of them, and stops the others with a one-line
error when one fails.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
CLAIMS = ".claims"
LOGS = "workers"
POLL_S = 2.0


def _claim_path(results: Path, job_id: str) -> Path:
    return results / CLAIMS / f"{job_id}.json"


def claim(results: Path, job_id: str) -> bool:
    """Claim a job for this process; False when another process holds it."""
    path = _claim_path(results, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f)
    return True


def release(results: Path, job_id: str) -> None:
    _claim_path(results, job_id).unlink(missing_ok=True)


def claimed(results: Path, job_id: str) -> bool:
    return _claim_path(results, job_id).exists()


def _holder_alive(path: Path) -> bool:
    try:
        holder = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False  # half-written by a process killed while claiming
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: it cannot be checked from here
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_stale_claims(results: Path) -> list[str]:
    """Remove the claims of processes that no longer run (a killed grid); their jobs resume from their
    checkpoints. Returns the job ids freed."""
    freed = []
    for path in sorted((results / CLAIMS).glob("*.json")):
        if not _holder_alive(path):
            path.unlink(missing_ok=True)
            freed.append(path.stem)
    return freed


def next_job(jobs: list, results: Path):
    """The first job to run now (claimed for this process), "wait" when only jobs waiting for another
    worker's trunk are left, or None when nothing is left for this worker."""
    from jazbat_jax.experiments.grid import needs

    pending = [j for j in jobs if not j.done(results)]
    for job in pending:
        if all(p.exists() for p in needs(job, results)) and claim(results, job.id):
            return job
    return "wait" if any(not claimed(results, j.id) for j in pending) else None


def work(results: Path, log: Callable[[str], None] = print) -> list[str]:
    """The worker loop: run jobs of the grid in ``results`` until none is left for this process."""
    from jazbat_jax.experiments import grid

    cfg = json.loads((results / "config.json").read_text())
    grid.enable_compilation_cache(results)
    data, ran = grid.DataCache(), []
    jobs = grid.plan(cfg)
    while True:
        job = next_job(jobs, results)
        if job is None:
            return ran
        if job == "wait":
            time.sleep(POLL_S)
            continue
        try:
            ran += grid.run_group([job], results, data, log)
        finally:
            release(results, job.id)


def run_workers(results: Path, n: int, todo: list, bar: Any, log: Callable[[str], None] = print) -> list[str]:
    """Start ``n`` single-threaded workers on ``results``, follow them, and return the ids of the
    jobs of ``todo`` they finished."""
    freed = clear_stale_claims(results)
    if freed:
        log(f"resuming {len(freed)} job(s) whose process was stopped: {', '.join(freed)}")
    logs = results / LOGS
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREAD_XLA}".strip()}
    procs = []
    for k in range(n):
        with open(logs / f"worker-{k + 1}.log", "a") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", __name__, str(results)], stdout=out,
                                          stderr=subprocess.STDOUT, env=env))
    log(f"{n} workers, one thread each; their logs: {logs}/worker-K.log")
    # A plain `kill` of this process must stop the workers too (the `finally` below), not orphan them.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while True:
            codes = [p.poll() for p in procs]
            bar.n = sum(j.done(results) for j in todo)
            bar.refresh()
            failed = [k for k, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                k = failed[0]
                last = (logs / f"worker-{k + 1}.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
                raise RuntimeError(f"worker {k + 1} failed (exit {codes[k]}): {last[0][:300]}; see "
                                   f"{logs / f'worker-{k + 1}.log'}; rerun the same command to resume")
            if all(c == 0 for c in codes):
                return [j.id for j in todo if j.done(results)]
            time.sleep(POLL_S)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m jazbat_jax.experiments.workers RESULTS (started by `jazbat experiments --workers N`)",
              file=sys.stderr)
        return 2
    try:
        ran = work(Path(args[0]), log=lambda line: print(line, flush=True))
    except Exception as e:  # noqa: BLE001 - the parent shows this worker's last line
        print(f"error: {type(e).__name__}: {' '.join(str(e).split())}", flush=True)
        return 1
    print(f"worker done: {len(ran)} job(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
