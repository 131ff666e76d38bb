"""Fixed-shape batches from a WindowSet, without per-window Python loops.

Each batch is gathered with one fancy-indexing call (``x[idx]``), so only the batch is copied,
never the whole dataset (``WindowSet.x`` may be a read-only strided view of the recordings);
standardisation is applied to the batch. The order is padded to a whole number of batches by
wrapping around, and a ``mask`` marks the padding rows: every window counts exactly once per
epoch, the last batch has the same shape as the others, and the jitted step never recompiles.
A background thread prepares the next batches while the device works on the current one.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import numpy as np

from jazbat_jax.data.core import Standardizer


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The window order for one epoch: a pure function of (seed, epoch), so a resumed run
    sees exactly the batches an uninterrupted run would have seen."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def num_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    order: np.ndarray | None = None,
    standardizer: Standardizer | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield ``{'x': (B,T,F) float32, 'y': (B,) int32, 'mask': (B,) float32}`` in ``order``.

    The last batch is completed with windows from the start of ``order`` (real data, so
    BatchNorm batch statistics stay sensible) and those rows get mask 0.
    """
    n = len(y)
    if n == 0:
        raise ValueError("cannot make batches from an empty set of windows")
    order = np.arange(n) if order is None else np.asarray(order)
    steps = num_batches(n, batch_size)
    padded = np.resize(order, steps * batch_size)  # np.resize repeats the order cyclically
    mask = (np.arange(steps * batch_size) < n).astype(np.float32)
    for s in range(steps):
        idx = padded[s * batch_size:(s + 1) * batch_size]
        xb = x[idx]
        xb = standardizer(xb) if standardizer is not None else np.asarray(xb, np.float32)
        yield {"x": xb, "y": np.asarray(y[idx], np.int32), "mask": mask[s * batch_size:(s + 1) * batch_size]}


def prefetch(it: Iterator, put: Callable = lambda b: b, size: int = 2) -> Iterator:
    """Run ``it`` (and ``put``, e.g. the device transfer) in a background thread, ``size`` batches ahead."""
    q: queue.Queue = queue.Queue(maxsize=size)
    done = object()
    stop = threading.Event()

    def worker():
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(put(item))
            q.put(done)
        except BaseException as e:  # re-raised in the consumer thread
            q.put(e)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not q.empty():  # unblock a worker waiting on a full queue so it can see `stop`
            q.get_nowait()
