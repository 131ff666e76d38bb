"""Parity gates: an exported artifact must reproduce the JAX model before it is kept.

FP32 artifacts: probabilities within ``FP32_ATOL`` (absolute) of the jitted JAX model and the same
predicted class on every window, on random windows and on real windows (the bundled sample) when
they are available. Both are fed as the artifact takes them: raw sensor values when the
standardizer is folded into the artifact, standardised windows for a bare model. Quantised
artifacts cannot meet that; they report agreement (share of windows with the same predicted
class), the largest probability error and, with labels, accuracy.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import numpy as np

from conversion.source import ExportSource, RealWindows

FP32_ATOL = 1e-5


class ParityError(RuntimeError):
    """An artifact disagrees with the JAX model; the exporter keeps nothing that looks valid."""


@dataclasses.dataclass
class ParityResult:
    windows: str  # "random" | "real"
    n: int
    origin: str
    max_abs_error: float
    argmax_agreement: float  # share of windows with the same predicted class
    accuracy_reference: float | None = None  # with labels: the JAX model's accuracy
    accuracy_candidate: float | None = None

    @property
    def passed_fp32(self) -> bool:
        return self.max_abs_error <= FP32_ATOL and self.argmax_agreement == 1.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def random_windows(source: ExportSource, n: int = 64, seed: int = 0) -> np.ndarray:
    """Random windows in the scale the artifact takes: standard normal after standardisation, i.e.
    ``mean + std * z`` for an artifact that folds the standardizer, ``z`` otherwise."""
    z = np.random.default_rng(seed).standard_normal(source.input_shape(n)).astype(np.float32)
    if source.folded:
        return (source.standardizer.mean + source.standardizer.std * z).astype(np.float32)
    return z


def real_windows(source: ExportSource, n: int = 64) -> RealWindows | None:
    """``n`` raw windows (and labels) spread evenly over the bundled real sample (Quiroz 2018
    walking), or None when the sample or its loader is not available."""
    try:
        from jazbat_jax.data.paths import bundled_sample_root
        from jazbat_jax.data.quiroz import load_quiroz

        kind = {1: "1d", 3: "3d", 6: "6d"}[source.input_dim]
        ws = load_quiroz(bundled_sample_root(), kind, window=source.window, step=source.window // 4)
    except (ImportError, FileNotFoundError, KeyError, ValueError):
        return None
    index = np.linspace(0, len(ws) - 1, min(n, len(ws))).astype(int)
    return RealWindows(np.asarray(ws.x[index], np.float32), np.asarray(ws.y[index]), tuple(ws.class_names),
                       "bundled sample: Quiroz 2018 walking")


def compare(reference: np.ndarray, candidate: np.ndarray, windows: str,
            labels: np.ndarray | None = None, origin: str = "") -> ParityResult:
    """Errors of ``candidate`` against ``reference`` probabilities; accuracies when ``labels`` are given."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.shape != candidate.shape:
        raise ParityError(f"output shape {candidate.shape} differs from the JAX model's {reference.shape}")
    result = ParityResult(
        windows=windows,
        n=int(len(reference)),
        origin=origin,
        max_abs_error=float(np.max(np.abs(reference - candidate))) if np.all(np.isfinite(candidate)) else float("inf"),
        argmax_agreement=float(np.mean(reference.argmax(-1) == candidate.argmax(-1))),
    )
    if labels is not None:
        result.accuracy_reference = float(np.mean(reference.argmax(-1) == labels))
        result.accuracy_candidate = float(np.mean(candidate.argmax(-1) == labels))
    return result


def check(
    source: ExportSource,
    candidate: Callable[[np.ndarray], np.ndarray],
    artifact: str,
    exact: bool = True,
    n: int = 64,
    real: RealWindows | None | bool = True,
) -> list[ParityResult]:
    """Run the gates. ``exact``: FP32 rule (raise ParityError on failure); else only report.

    ``real``: True for the source's test split (a checkpoint's, all of it) or else ``n`` windows of the
    bundled sample; False / None to skip; or the windows to use. Accuracies are reported only when the
    windows' class names are the model's (a model trained on them).
    """
    reference = jax.jit(source.probabilities_fn())
    scale = "raw scale: mean + std * z" if source.folded else "z"
    sets = [("random", random_windows(source, n), None, f"standard normal z, seed 0 ({scale})")]
    if real is True:
        real = source.test_windows or real_windows(source, n)
    if real:
        labels = real.y if tuple(real.class_names) == tuple(source.class_names) else None
        sets.append(("real", source.artifact_input(real.raw), labels, f"{real.origin} ({source.input_values})"))
    results = []
    for name, x, labels, origin in sets:
        result = compare(_batched(reference, x), candidate(x), name, labels, origin)
        results.append(result)
        if exact and not result.passed_fp32:
            raise ParityError(
                f"{artifact} fails the FP32 parity gate on {result.n} {name} windows: max |Δp| = "
                f"{result.max_abs_error:.3g} (limit {FP32_ATOL:g}), predicted class agrees on "
                f"{result.argmax_agreement:.1%} (must be 100%)"
            )
    return results


def _batched(fn, x: np.ndarray, size: int = 512) -> np.ndarray:
    """The JAX reference in fixed-size chunks (one compilation per shape, bounded memory)."""
    return np.concatenate([np.asarray(fn(x[i : i + size])) for i in range(0, len(x), size)])
