"""The machine a number was measured on, recorded next to every report (profile, experiments)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def machine_info() -> dict:
    import jax

    cpu = platform.processor() or platform.machine()
    try:  # a readable CPU name on Linux
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = jax.devices()[0]
    return {"host_cpu": cpu, "cpu_count": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
            "jax_backend": dev.platform,
            "jax_devices": f"{jax.device_count()} × {getattr(dev, 'device_kind', dev.platform)}",
            "python": platform.python_version(), "jax": jax.__version__}
