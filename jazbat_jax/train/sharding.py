"""Data parallelism with ``jax.sharding``: one mesh axis ``data`` over every device of every host.

The batch is split along its first axis across the mesh; parameters, BatchNorm statistics and
optimizer state are replicated. The same code runs on 1 CPU, 8 GPUs, or several hosts (each
host feeds its own slice of the global batch). On one CPU, try it with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Multi-host start-up: call once per host, before any other JAX call.

    With no arguments JAX auto-detects the cluster (SLURM, Cloud TPU, ...); otherwise give the
    coordinator ``host:port`` and this host's id out of ``num_processes``.
    """
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """A 1-D device mesh and the two shardings training needs."""

    mesh: Mesh

    @classmethod
    def create(cls, devices: list | None = None) -> "DataParallel":
        devices = jax.devices() if devices is None else devices
        return cls(Mesh(np.asarray(devices), ("data",)))

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    @property
    def data(self) -> NamedSharding:
        """Split along the batch axis."""
        return NamedSharding(self.mesh, P("data"))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def state_sharding(self, state: Any) -> Any:
        return jax.tree.map(lambda _: self.replicated, state)

    def put_state(self, state: Any) -> Any:
        """Replicate the state on the mesh, as a copy: the train step donates (deletes) its input
        state, and the caller's arrays must survive that."""
        return jax.device_put(state, self.state_sharding(state), may_alias=False)

    def check_batch_size(self, global_batch_size: int) -> None:
        if global_batch_size % self.num_devices:
            raise ValueError(
                f"batch size {global_batch_size} must be a multiple of the {self.num_devices} devices "
                f"(data parallelism splits every batch evenly); try {self.num_devices * max(1, global_batch_size // self.num_devices)}"
            )

    def put_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """Place a *global* batch (the same on every host) on the mesh; each host sends only its own rows."""
        n_proc, pid = jax.process_count(), jax.process_index()
        out = {}
        for k, v in batch.items():
            rows = v.shape[0] // n_proc
            local = v[pid * rows:(pid + 1) * rows]
            out[k] = jax.make_array_from_process_local_data(self.data, local, v.shape)
        return out
