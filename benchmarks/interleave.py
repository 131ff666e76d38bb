"""Interleaved timing: the reference and every candidate in many short alternating rounds.

Two medians taken minutes apart on a shared machine differ by whatever the machine did in between.
Here every round times one short block of each callable, in one order on even rounds and in the
reverse order on odd ones, so a candidate and its reference see the same machine state and drift
cancels in their ratio. Each round gives one time per call for every callable; the gate's ratios
are taken within a round: (candidate time per call) / (reference time per call).

Fixed hardware: all threads of the process are pinned to one CPU while measuring (``one_cpu``). The
jitted JAX forward is multi-threaded by default, and on a shared 2-core machine its time otherwise
depends on whether the second core happens to be free.

CPU time, not wall time: a block is timed with the process's CPU time (all threads), which leaves
out the time the pinned CPU spends on other processes. With wall time, a block that the scheduler
shared with another job grew by a random part of its length, and under load the per-round ratios
spread so wide that a 25% slowdown could no longer be told apart (numbers in docs/benchmarks.md).
What stays in CPU time is what a slower candidate changes: the work each call does, and the cache
and memory stalls it suffers.

The gate (``benchmarks/gate.py``) decides on the distribution of the per-round ratios; the
measurement goes on in chunks of rounds while a decision is still open (``measure_until_decided``).
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Callable, Iterator

CLOCK = time.process_time  # CPU time of the whole process (all its threads): see the module's docstring
BLOCK_S = 0.01  # target length of one block: long enough for a stable time, short enough to alternate often


def _threads() -> list[int]:
    return [int(tid) for tid in os.listdir("/proc/self/task")]


@contextlib.contextmanager
def one_cpu() -> Iterator[int]:
    """Pin every thread of this process (thread pools included) to one CPU; restore the affinities after."""
    before = {tid: os.sched_getaffinity(tid) for tid in _threads()}
    cpu = max(os.sched_getaffinity(0))
    try:
        for tid in before:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(tid, {cpu})
        yield cpu
    finally:
        for tid, cpus in before.items():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(tid, cpus)


def calls_per_block(call: Callable[[], object], block_s: float = BLOCK_S, warmup: int = 5) -> int:
    """How many calls fill about ``block_s`` seconds (from the median of a few warm calls)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(5):
        start = CLOCK()
        call()
        times.append(CLOCK() - start)
    per_call = sorted(times)[len(times) // 2]
    return max(1, round(block_s / per_call))


def _block(call: Callable[[], object], n: int) -> float:
    start = CLOCK()
    for _ in range(n):
        call()
    return (CLOCK() - start) / n


def interleaved_rounds(calls: dict[str, Callable[[], object]], rounds: int,
                       block_calls: dict[str, int]) -> dict[str, list[float]]:
    """Time per call of every entry of ``calls`` in each of ``rounds`` rounds (``rounds`` values each), the
    entries in their order on even rounds and in reverse on odd ones."""
    order = list(calls)
    times: dict[str, list[float]] = {name: [] for name in order}
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(_block(calls[name], block_calls[name]))
    return times


def measure_until_decided(calls: dict[str, Callable[[], object]],
                          undecided: Callable[[dict[str, list[float]], int], list[str]],
                          chunk_rounds: int, max_chunks: int) -> tuple[dict[str, list[float]], int]:
    """Measure chunks of rounds until ``undecided(times, looks)`` returns no name or the cap is reached.

    Returns the per-round times per call of all chunks and the number of chunks measured.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    with one_cpu():
        block_calls = {name: calls_per_block(call) for name, call in calls.items()}
        for chunk in range(1, max_chunks + 1):
            for name, values in interleaved_rounds(calls, chunk_rounds, block_calls).items():
                times[name] += values
            if not undecided(times, chunk):
                break
    return times, chunk
