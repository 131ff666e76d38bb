"""The machine a number was measured on, recorded next to every report (profile, experiments),
and the one process setting that changes training speed on it: huge pages for malloc.

Why huge pages: XLA:CPU allocates a train step's temporaries afresh at every step and glibc
hands them back to the kernel when they are freed, so every step faults its zeroed 4 KiB pages
back in, a large share of the step on a small CPU (measured in docs/training.md).
With transparent huge pages in ``madvise`` mode (the common default) glibc >= 2.35 can ask for
2 MiB pages instead: ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``. Tunables are read at process
start, so the ``jazbat`` commands that train re-execute themselves once with that variable set.
Set ``JAZBAT_HUGEPAGE_MALLOC=0`` to opt out.
"""
from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
HUGEPAGE_OPT_OUT = "JAZBAT_HUGEPAGE_MALLOC"  # set to 0 to keep glibc's default


def transparent_hugepage_mode() -> str | None:
    """The kernel's THP mode ('always', 'madvise' or 'never'), or None where it cannot be read."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return None
    return text[text.index("[") + 1 : text.index("]")] if "[" in text else None


def hugepage_malloc_active(environ: Mapping[str, str] = os.environ) -> bool:
    return "glibc.malloc.hugetlb=" in environ.get("GLIBC_TUNABLES", "")


def hugepage_malloc_env(environ: Mapping[str, str], thp_mode: str | None,
                        libc: tuple[str, str]) -> dict[str, str] | None:
    """The environment to restart with, or None where huge-page malloc would not change anything
    (THP 'always' or 'never', not glibc >= 2.35), is already set, or the user opted out."""
    if environ.get(HUGEPAGE_OPT_OUT) == "0" or hugepage_malloc_active(environ) or thp_mode != "madvise":
        return None
    name, version = libc
    try:
        if name != "glibc" or tuple(int(v) for v in version.split(".")[:2]) < (2, 35):
            return None
    except ValueError:
        return None
    env = dict(environ)
    env["GLIBC_TUNABLES"] = ":".join(t for t in (environ.get("GLIBC_TUNABLES"), HUGEPAGE_TUNABLE) if t)
    return env


def reexec_with_hugepage_malloc(argv: list[str]) -> None:
    """Restart ``python -m jazbat_jax.cli ARGV`` with huge-page malloc where that helps; else return."""
    env = hugepage_malloc_env(os.environ, transparent_hugepage_mode(), platform.libc_ver())
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", "jazbat_jax.cli", *argv], env)


def machine_info() -> dict:
    import jax

    from jazbat_jax.kernels import kernel_choice

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
            "python": platform.python_version(), "jax": jax.__version__,
            "transparent_hugepages": transparent_hugepage_mode(), "malloc_hugepages": hugepage_malloc_active(),
            # what `jazbat pretrain / finetune / experiments` run with (they re-execute with it, see above)
            "training_malloc_hugepages": hugepage_malloc_active() or hugepage_malloc_env(
                os.environ, transparent_hugepage_mode(), platform.libc_ver()) is not None,
            # the GRU kernels asked for (jazbat_jax.kernels.native_selected decides, building them if needed)
            "gru_kernels": kernel_choice()}


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (``uptime``), or None where the system has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def busy(start: list[float] | None, end: list[float] | None, cpu_count: int | None = None) -> bool:
    """Whether other work probably competed with a timing: the 1-minute load average was above half the
    cores before it started, or above all the cores at its end (when the timed work itself may fill them)."""
    cores = cpu_count or os.cpu_count() or 1
    return bool((start and start[0] > cores / 2) or (end and end[0] > cores))
