"""Run a plan's jobs as Ray tasks: on this machine by default, on any Ray cluster by address.

Each job is one Ray task (one CPU, XLA:CPU on one thread: on 2 cores two single-threaded processes
trained 1.4-1.5x the windows/s of one multi-threaded run, docs/training.md). A job that starts from
a pretrained trunk takes the trunk's task as an argument, so Ray itself holds it back until the
trunk is trained. Every task runs its job exactly as one process would (the same folders, resuming
from the run folder's newest checkpoint, ``result.json`` written last), so:

- a worker or node that dies is Ray's to retry (``max_retries``), and the retry resumes the job;
- a worker that stops answering (stopped, swapped out, deadlocked) no longer touches its job's
  heartbeat file; after ``hang_timeout_s`` the driver kills it (``ray.cancel(force=True)``) and runs
  the job again, with the jobs waiting for it;
- a driver that is killed takes its workers with it (Ray ends a dead driver's tasks), so no job
  trains unobserved; the next invocation finds every finished ``result.json`` and resumes the rest.

The results folder must be one folder that every node reads and writes (a shared file system on a
cluster; docs/experiments.md).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import signal
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the runner itself imports nothing of JAX: the CLI sets XLA's flags before JAX loads
    from jazbat_jax.experiments.jobs import Job

SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def single_thread_xla_flags() -> str:
    """``XLA_FLAGS`` for one XLA:CPU thread. Every job of the pipeline runs so, on Ray and in process alike:
    XLA's multi-threaded matrix products sum in another order, so a job trained with more threads ends with
    other numbers under the same id. Set before JAX is imported (it reads the flags once)."""
    return f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREAD_XLA}".strip()
HEARTBEAT = ".heartbeat"
HEARTBEAT_S = 5.0
POLL_S = 1.0


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Where and how the jobs run."""

    address: str | None = None  # None: start a local Ray on this machine; "auto" or HOST:PORT: a running cluster
    workers: int | None = None  # local Ray only: jobs at a time (None: one per core)
    gpus_per_job: float = 0.0  # > 0: each job asks Ray for this share of a GPU (and XLA may use all its threads)
    hang_timeout_s: float = 600.0  # a running job whose heartbeat is older than this is restarted
    max_retries: int = 3  # restarts of a job whose worker or node died
    verbose: bool = False  # Ray's own logs and the workers' output on this terminal


class JobFailed(RuntimeError):
    """A job raised: the run stops (its finished jobs are kept; a rerun resumes)."""


def heartbeat_path(job: Job, results: Path) -> Path:
    return job.folder(results) / HEARTBEAT


def _run_task(execute: Callable[[Job, str], dict], job: Job, results: str, *trunks: Any) -> dict:
    """The body of a job's Ray task: run it while a thread touches its heartbeat file."""
    import ray

    beat = heartbeat_path(job, Path(results))
    beat.parent.mkdir(parents=True, exist_ok=True)
    node = ray.get_runtime_context().get_node_id()
    beat.write_text(json.dumps({"pid": os.getpid(), "node": node}))  # who runs it: for people and tests
    stop = threading.Event()

    def touch() -> None:
        while not stop.wait(HEARTBEAT_S):
            beat.touch()

    thread = threading.Thread(target=touch, daemon=True)
    thread.start()
    try:
        return {"result": execute(job, results), "node": node}
    finally:
        stop.set()
        beat.unlink(missing_ok=True)


def connect(opts: RayOptions) -> dict:
    """Start (or join) Ray; the resources it offers."""
    import ray

    env = {} if opts.gpus_per_job else {"XLA_FLAGS": single_thread_xla_flags()}
    for name in ("JAZBAT_DATA_ROOT", "JAZBAT_KERNELS"):
        if name in os.environ:
            env[name] = os.environ[name]
    kwargs: dict[str, Any] = dict(runtime_env={"env_vars": env}, log_to_driver=opts.verbose,
                                  logging_level=logging.INFO if opts.verbose else logging.ERROR,
                                  include_dashboard=False, configure_logging=True)
    if opts.address is None:
        kwargs["num_cpus"] = opts.workers or os.cpu_count() or 1
    elif opts.workers is not None:
        raise ValueError("--workers sizes a local Ray; a cluster's size is its own (leave --workers out with --address)")
    if not ray.is_initialized():
        ray.init(address=opts.address, **kwargs)
    return ray.cluster_resources()


def run_jobs(jobs: list[Job], results: Path, execute: Callable[[Job, str], dict], opts: RayOptions,
             on_done: Callable[[Job, dict, str], None], stop_after: int | None = None,
             log: Callable[[str], None] = print) -> list[str]:
    """Run ``jobs`` (in plan order: a trunk before the jobs that need it) as Ray tasks; call
    ``on_done(job, result, node)`` on this process as each finishes (``node``: the Ray node that ran it);
    return the ids finished, in order. ``stop_after``: stop (cancelling the rest) once that many finished."""
    import ray
    from ray.exceptions import RayTaskError, TaskCancelledError

    results = Path(results).resolve()
    connect(opts)
    task = ray.remote(_run_task).options(num_cpus=1, num_gpus=opts.gpus_per_job, max_retries=opts.max_retries,
                                         retry_exceptions=False)
    by_id = {j.id: j for j in jobs}
    refs: dict[str, Any] = {}  # job id -> its task

    def submit(job: Job) -> None:
        heartbeat_path(job, results).unlink(missing_ok=True)  # left by a killed earlier invocation
        trunk = [refs[job.trunk]] if job.trunk in refs else []
        refs[job.id] = task.remote(execute, job, str(results), *trunk)

    # A plain `kill` of this process must stop its jobs too (the `finally` below), not orphan them.
    signals: list[int] = []

    def interrupt(signum, frame):
        signals.append(signum)
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    pending: dict[Any, str] = {}  # task -> job id, of the jobs not finished yet
    finished: list[str] = []
    next_check = time.monotonic()
    try:
        for job in jobs:
            submit(job)
        pending.update({ref: job_id for job_id, ref in refs.items()})
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                job_id = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except TaskCancelledError:
                    continue  # restarted below as a hung job; its new task is pending
                except RayTaskError as e:
                    cause = e.cause if e.cause is not None else e
                    raise JobFailed(f"job {job_id} failed: {type(cause).__name__}: "
                                    f"{' '.join(str(cause).split())[:300]}; rerun the same command to resume") from e
                finished.append(job_id)
                on_done(by_id[job_id], result["result"], result["node"])
                if stop_after is not None and len(finished) >= stop_after:
                    return finished
            if time.monotonic() < next_check:
                continue
            next_check = time.monotonic() + HEARTBEAT_S  # one look at the heartbeats per period, not per poll
            for job_id in _hung(pending, by_id, results, opts.hang_timeout_s):
                log(f"job {job_id}: no sign of life for {opts.hang_timeout_s:.0f} s; killing its worker and "
                    "running it again (it resumes from its last checkpoint)")
                restart = [job_id] + [j for j in pending.values() if by_id[j].trunk == job_id]
                for jid in restart:
                    ray.cancel(refs[jid], force=True)
                    pending.pop(refs[jid], None)
                for jid in restart:
                    submit(by_id[jid])
                    pending[refs[jid]] = jid
        return finished
    except KeyboardInterrupt as e:
        # Raised inside ray.wait, the handler's exception comes back as a bare KeyboardInterrupt: say the signal.
        if signals and not str(e):
            raise KeyboardInterrupt(f"stopped by signal {signals[0]}") from None
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for ref in pending:  # stopped early, failed or interrupted: nothing trains unobserved
            ray.cancel(ref, force=True)


def _hung(pending: dict, by_id: dict[str, Job], results: Path, timeout: float) -> list[str]:
    now = time.time()
    out = []
    for job_id in pending.values():
        beat = heartbeat_path(by_id[job_id], results)
        try:
            if now - beat.stat().st_mtime > timeout:
                out.append(job_id)
        except FileNotFoundError:
            continue  # not started yet (or just finished)
    return out


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
