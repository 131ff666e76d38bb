"""One host of the two-process data-parallel test (``test_train_distributed.py``), run as a script:

    python tests/distributed_worker.py COORDINATOR NUM_PROCESSES PROCESS_ID OUT.npz

It joins the cluster, takes one training step and one whole-set evaluation with the trainer's own
pieces (``DataParallel``, ``jit_train_step``, ``Evaluator``) and saves what it holds afterwards.
It also checks that the compiled step has no collective inside a loop (see ``collectives_in_loops``).
The test calls ``one_step`` in its own process too, on one device, for the reference.
Not collected by pytest (the name does not start with ``test_``).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tiny.py, when run as a script

from jazbat_jax.train.sharding import DataParallel, initialize_distributed  # noqa: E402

BATCH = 16
WINDOWS = 14  # fewer than the batch: the last two rows are masked padding, fed by the second host


def collectives_in_loops(hlo: str) -> list[str]:
    """The loop bodies of a compiled HLO module that hold a cross-device collective, one entry per
    collective. Across hosts each is a network round trip at every iteration (the GRU scans: every time step)."""
    bodies = set(re.findall(r"\bbody=%?([\w.\-]+)", hlo))
    found, computation = [], None
    for line in hlo.splitlines():
        if header := re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line):
            computation = header.group(1)
        elif computation in bodies and re.search(r"\b(all-reduce|all-gather|reduce-scatter|all-to-all|collective-permute)(-start)?\(", line):
            found.append(computation)
    return found


def one_step(dp: DataParallel) -> dict[str, np.ndarray]:
    """One train step then a whole-set evaluation, placed on ``dp`` exactly as ``loop.prepare`` and
    ``loop.train_epoch`` place them; every result as a flat dict of numpy arrays."""
    import jax
    import optax

    from jazbat_jax.data.core import Standardizer
    from jazbat_jax.model import init_variables
    from jazbat_jax.train.evaluate import Evaluator
    from jazbat_jax.train.input_pipeline import batches
    from jazbat_jax.train.state import create_train_state
    from jazbat_jax.train.steps import class_weights, jit_train_step
    from jazbat_jax.trees import flatten
    from tiny import tiny_model, tiny_windowset

    ws = tiny_windowset(WINDOWS)
    std = Standardizer.fit(ws.x)
    model = tiny_model()
    # SGD, not the trainer's Adam: the update is linear in the gradient, so the comparison checks the
    # cross-host all-reduce itself (Adam's g/sqrt(v) turns float reordering of near-zero gradients,
    # e.g. of a bias before BatchNorm, into whole learning-rate steps).
    state = dp.put_state(create_train_state(model, init_variables(model, 0), optax.sgd(0.1), seed=0))
    step = jit_train_step(dp.state_sharding(state), dp.data, dp.replicated)
    weights = jax.device_put(class_weights(ws.y, 3, "balanced"), dp.replicated)
    batch = dp.put_batch(next(batches(ws.x, ws.y, BATCH, standardizer=std)))
    local = batch["x"].addressable_shards
    assert len(local) == len(jax.local_devices()) and local[0].data.shape[0] == BATCH // dp.num_devices, local
    compiled = step.lower(state, batch, weights).compile()
    assert not collectives_in_loops(compiled.as_text()), collectives_in_loops(compiled.as_text())
    state, metrics = compiled(state, batch, weights)
    # An eval batch of 6 (3 rows per host): 3 batches, the last one padded, as validation runs them.
    ev = Evaluator(dp, 6)(state, ws.x, ws.y, std)
    out = {f"params/{k}": v for k, v in flatten(jax.device_get(state.params)).items()}
    out.update({f"batch_stats/{k}": v for k, v in flatten(jax.device_get(state.batch_stats)).items()})
    out.update({f"metrics/{k}": v for k, v in jax.device_get(metrics).items()})
    out.update({"eval/loss": np.float32(ev["loss"]), "eval/pred": ev["pred"], "eval/prob": ev["prob"]})
    return {k: np.asarray(v) for k, v in out.items()}


def main(coordinator: str, num_processes: str, process_id: str, out_path: str) -> None:
    initialize_distributed(coordinator, int(num_processes), int(process_id))
    import jax

    assert jax.process_count() == int(num_processes), jax.process_count()
    dp = DataParallel.create()
    assert dp.num_devices == jax.device_count() > len(jax.local_devices()), (jax.devices(), jax.local_devices())
    np.savez(out_path, **one_step(dp))


if __name__ == "__main__":
    main(*sys.argv[1:])
