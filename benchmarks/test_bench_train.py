"""Train-step throughput, batch 256: jazbat-jax's jitted step against the Keras 3 twin's ``model.fit``
(the paper's toolchain), each side in its own process (see train_throughput.py), alternated over
ROUNDS rounds so that every side sees the same machine load. Run:

    .venv/bin/pytest benchmarks/test_bench_train.py --benchmark-enable -s

Sides: ``jax`` and both Keras configurations run with huge-page malloc where the machine supports
it (what the ``jazbat`` command sets up for itself; see machine.py); ``jax-default-malloc`` and
``keras-xla-default-malloc`` run without it: the process setup behind the engineering notes' numbers.

Target: at least 3x the Keras twin's ``fit``, the configuration a Keras user gets (``keras``: on a
CPU-only machine Keras does not use XLA), with the same process setup. This machine does not reach
it, so the benchmark records the ratio, its spread over the rounds and the target in ``extra_info``
(``meets_target``) and prints them, rather than failing the suite. Each round's ratio divides the
``jax`` rate by the ``keras`` rate of the same round, so it sees one machine state. The issue
quotes 2.7x for a first Flax version against ~290 windows/s (shared/spec/engineering-notes.md);
that reference is what ``fit`` gives here with ``jit_compile=True`` and glibc's default malloc
(``keras-xla-default-malloc``), in some processes only: it is bimodal, 300-400 or 600-800.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from jazbat_jax.machine import hugepage_malloc_env, transparent_hugepage_mode

pytestmark = pytest.mark.bench

ROUNDS = 3
TARGET_RATIO = 3.0
SIDES = ("jax", "keras", "keras-xla", "jax-default-malloc", "keras-xla-default-malloc")
SCRIPT = Path(__file__).with_name("train_throughput.py")


def _env(side: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if side.endswith("-default-malloc"):
        return base
    return hugepage_malloc_env(base, transparent_hugepage_mode(), platform.libc_ver()) or base


def _run(side: str) -> dict:
    script_side = side.removesuffix("-default-malloc")
    out = subprocess.run([sys.executable, str(SCRIPT), script_side], env=_env(side), capture_output=True,
                         text=True, timeout=600)
    if out.returncode:
        raise RuntimeError(f"{side}: train_throughput.py failed\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_all() -> dict[str, dict]:
    results: dict[str, dict] = {side: {"windows_per_s": [], "round_medians": []} for side in SIDES}
    for _ in range(ROUNDS):
        for side in SIDES:
            r = _run(side)
            results[side]["windows_per_s"] += r["windows_per_s"]
            results[side]["round_medians"].append(statistics.median(r["windows_per_s"]))
            results[side]["malloc_hugepages"] = r["malloc_hugepages"]
    for r in results.values():
        r["median"] = statistics.median(r["windows_per_s"])
    return results


def round_ratios(results: dict[str, dict], side: str, reference: str) -> list[float]:
    """One ratio per round: ``side``'s median rate over ``reference``'s, both from that round."""
    return [a / b for a, b in zip(results[side]["round_medians"], results[reference]["round_medians"])]


def test_train_step_throughput_vs_keras(benchmark):
    holder = {}
    benchmark.pedantic(lambda: holder.update(measure_all()), rounds=1, iterations=1)  # the whole measurement
    med = {side: r["median"] for side, r in holder.items()}
    per_round = round_ratios(holder, "jax", "keras")
    vs_default = statistics.median(per_round)
    benchmark.group = "train step batch 256"
    benchmark.extra_info.update(
        {f"{side}_windows_per_s": round(m, 1) for side, m in med.items()},
        ratio_vs_keras=round(vs_default, 2),
        ratio_vs_keras_per_round=[round(x, 3) for x in per_round],
        target_ratio_vs_keras=TARGET_RATIO,
        meets_target=vs_default >= TARGET_RATIO,
        ratio_vs_keras_xla=round(med["jax"] / med["keras-xla"], 2),
        ratio_default_malloc_vs_keras_xla_default_malloc=round(
            med["jax-default-malloc"] / med["keras-xla-default-malloc"], 2),
        hugepage_speedup=round(med["jax"] / med["jax-default-malloc"], 2),
        all={side: [round(x, 1) for x in r["windows_per_s"]] for side, r in holder.items()},
        malloc_hugepages={side: r["malloc_hugepages"] for side, r in holder.items()},
    )
    print(f"\nwindows/s, batch 256 (median of {5 * ROUNDS} blocks of 6 steps per side):")
    for side, m in med.items():
        print(f"  {side:26s} {m:7.0f}   huge-page malloc: {holder[side]['malloc_hugepages']}")
    met = "met" if vs_default >= TARGET_RATIO else "NOT met"
    print(f"jazbat-jax is {vs_default:.2f}x Keras fit (per round {min(per_round):.2f}-{max(per_round):.2f}x; "
          f"target >= {TARGET_RATIO:g}x: {met}), {med['jax'] / med['keras-xla']:.2f}x Keras fit with XLA, "
          f"{med['jax-default-malloc'] / med['keras-xla-default-malloc']:.2f}x the notes' reference setup; "
          f"huge-page malloc is worth {med['jax'] / med['jax-default-malloc']:.2f}x")
