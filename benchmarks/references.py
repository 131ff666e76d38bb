"""The regression references: the benchmark model as the last accepted code built it, one file per runtime.

A timing gate against the Keras twin's TFLite says "still N× faster than the paper's toolchain", but the
twin runs in another runtime, and on this shared machine the ratio between two runtimes moves with the
machine's state and the installed wheels by up to 12–25% from pass to pass (docs/benchmarks.md): a bound
wide enough for that cannot catch a 25% slowdown. A candidate timed against *its own runtime running the
accepted artifact* has no such drift: on unchanged code both sides are the same bytes in the same runtime,
so the ratio sits at 1 and a 25% regression moves it to 1.25.

    python -m benchmarks.gate references           # check the committed files against the current code
    python -m benchmarks.gate references --write   # accept the current code's artifacts as the references

Files (``benchmarks/reference/``): ``jazbat_net_1d.onnx`` and ``.tflite`` (our exports),
``jazbat_net_1d.jax_export`` (the jitted forward with the pure-JAX GRU, serialized with ``jax.export``:
StableHLO with the weights as constants, compiled by the installed XLA when loaded), and the native GRU
kernels' reference as two files: ``bigru_reference.cc``, the accepted kernels' source (built by the
installed compiler like ``jazbat_jax/native/bigru.cc``, registered under ``*_reference`` target names), and
``jazbat_net_1d_native.jax_export``, the jitted forward with its GRUs as custom calls to those targets.
``references.json`` gives their SHA-256, the commit and the package versions that made them. A file whose
hash does not match is refused.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

FOLDER = Path(__file__).with_name("reference")
MANIFEST = FOLDER / "references.json"
FILES = {"onnx": "jazbat_net_1d.onnx", "tflite": "jazbat_net_1d.tflite", "jax": "jazbat_net_1d.jax_export",
         "jax_native": "jazbat_net_1d_native.jax_export", "native_source": "bigru_reference.cc"}
PACKAGES = ("jax", "jaxlib", "flax", "tensorflow", "tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert")


class ReferenceError(Exception):
    """A reference file is missing, altered or unloadable: reported on one line with what to do."""


def benchmark_source():
    """The benchmark model: Jazbat-Net 1D, 6 classes, every variable moved off its initial value."""
    from conversion.source import fresh_source, perturbed

    return perturbed(fresh_source("jazbat_net", "1d"), seed=3)


def build(source=None) -> dict[str, bytes]:
    """The current code's artifacts of the benchmark model, keyed by runtime."""
    import jax

    from conversion import onnx_native, runtime, tflite
    from jazbat_jax import kernels, native

    source = source or benchmark_source()
    window = runtime.windows(source, 1)
    x = jax.ShapeDtypeStruct(window.shape, window.dtype)
    with kernels.pure_jax():
        exported = jax.export.export(jax.jit(source.probabilities_fn()))(x)
    if not kernels.native_selected():
        raise ReferenceError("the native GRU kernels are not in use here (JAZBAT_KERNELS=xla, or no compiler: "
                             f"{native.unavailable_reason() or 'not selected'}); build the references where they are")
    allow = [jax.export.DisabledSafetyCheck.custom_call(name) for name in native.exported_targets()]
    with native.exporting_custom_calls():
        exported_native = jax.export.export(jax.jit(source.probabilities_fn()), disabled_checks=allow)(x)
    return {"onnx": onnx_native.to_onnx_bytes(source), "tflite": tflite.to_tflite_bytes(source),
            "jax": bytes(exported.serialize()), "jax_native": bytes(exported_native.serialize()),
            "native_source": native.SOURCE.read_bytes()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=FOLDER.parent, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write(artifacts: dict[str, bytes], folder: Path = FOLDER) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "about": "Regression references of the timing gates: the benchmark model built by the accepted code. "
                 "Rewrite with `python -m benchmarks.gate references --write` when a change to the model or "
                 "the exporters is accepted (commit them with that change).",
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "built_at_commit": _commit(), "packages": _versions(),
        "files": {name: {"file": FILES[name], "bytes": len(data), "sha256": sha256(data)}
                  for name, data in artifacts.items()},
    }
    for name, data in artifacts.items():
        (folder / FILES[name]).write_bytes(data)
    (folder / MANIFEST.name).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load(folder: Path = FOLDER) -> dict[str, bytes]:
    """The committed reference artifacts, each checked against its recorded SHA-256."""
    fix = "restore it with `git checkout benchmarks/reference` or rewrite all with " \
          "`python -m benchmarks.gate references --write`"
    try:
        manifest = json.loads((folder / MANIFEST.name).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ReferenceError(f"cannot read {folder / MANIFEST.name} ({e}); {fix}") from None
    out = {}
    for name, entry in _entries(manifest, folder / MANIFEST.name, fix).items():
        path = folder / entry["file"]
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ReferenceError(f"cannot read the {name} reference {path} ({e.strerror}); {fix}") from None
        if sha256(data) != entry["sha256"]:
            raise ReferenceError(f"{path} does not match its SHA-256 in {MANIFEST.name} (altered or corrupted); {fix}")
        out[name] = data
    return out


def _entries(manifest: Any, path: Path, fix: str) -> dict[str, dict]:
    """The manifest's entry for every runtime, each with its file and SHA-256. A missing entry is refused:
    skipping it would check, and time against, fewer references than the gates expect."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise ReferenceError(f"{path} has no 'files' entry (each reference's file and SHA-256); {fix}")
    for name in FILES:
        entry = files.get(name)
        if not isinstance(entry, dict):
            raise ReferenceError(f"{path} has no entry files.{name} (the {FILES[name]} reference); {fix}")
        for key in ("file", "sha256"):
            if not isinstance(entry.get(key), str):
                raise ReferenceError(f"{path} has no entry files.{name}.{key}; {fix}")
    unknown = sorted(set(files) - set(FILES))
    if unknown:
        raise ReferenceError(f"{path} has entries for unknown runtimes {', '.join(unknown)} (expected "
                             f"{', '.join(FILES)}); {fix}")
    return {name: files[name] for name in FILES}


def calls(artifacts: dict[str, bytes], x) -> dict[str, Callable[[], Any]]:
    """Callables running each reference on ``x`` in its runtime, set up like the candidates'
    (conversion/runtime.py): ONNX Runtime and LiteRT/XNNPACK on 1 thread, the JAX export jitted."""
    import jax

    from conversion import runtime
    from jazbat_jax import native

    try:
        native.load_reference(artifacts["native_source"])  # the targets the native export calls
    except RuntimeError as e:
        raise ReferenceError(f"{e}; the native reference is timed only where the native kernels build") from None
    exported = {}
    for name in ("jax", "jax_native"):
        try:
            exported[name] = jax.export.deserialize(bytearray(artifacts[name]))
        except Exception as e:  # a serialization version this JAX no longer reads
            raise ReferenceError(f"the installed JAX cannot load the {name} reference ({type(e).__name__}: {e}); "
                                 "rewrite the references with `python -m benchmarks.gate references --write`") from None
    return {"jax": runtime.jit_call(exported["jax"].call, x),
            "jax_native": runtime.jit_call(exported["jax_native"].call, x),
            "tflite": runtime.tflite_call(artifacts["tflite"], x),
            "onnx": runtime.onnx_call(artifacts["onnx"], x)}


def compare(current: dict[str, bytes], committed: dict[str, bytes]) -> list[str]:
    """One line per runtime: whether the current code builds the committed artifact byte for byte."""
    lines = []
    for name in FILES:
        same = name in committed and sha256(current[name]) == sha256(committed[name])
        lines.append(f"{name}: {'identical to' if same else 'DIFFERS from'} the committed reference "
                     f"({len(current[name]):,} bytes now, {len(committed.get(name, b'')):,} committed)")
    return lines
