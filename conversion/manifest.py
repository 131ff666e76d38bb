"""The export manifest: what was written, how big, its sha256, opset, input signature, parity.

``manifest.json`` is written last, after every artifact passed its gate, so a folder with a
manifest is a complete export; ``verify`` re-hashes the files against it.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from conversion.source import ExportSource
from jazbat_jax.files import write_atomically

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder (sorted relative paths and contents, e.g. a SavedModel)."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f.relative_to(path).as_posix().encode() + b"\0")
            digest.update(f.read_bytes())
    else:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def size_of(path: Path) -> int:
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def tool_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("jax", "flax", "tensorflow-cpu", "onnx", "onnxruntime", "ai-edge-litert", "tf2onnx"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def artifact_entry(path: Path, root: Path, **fields: Any) -> dict[str, Any]:
    """One manifest row for a written artifact: file (relative to ``root``), bytes, sha256, fields."""
    path = Path(path)
    return {"file": path.relative_to(root).as_posix(), "bytes": size_of(path), "sha256": sha256_of(path), **fields}


def write_manifest(out_dir: Path, source: ExportSource, artifacts: list[dict[str, Any]]) -> Path:
    manifest = {
        "format_version": FORMAT_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": source.sidecar(),
        "tools": tool_versions(),
        "artifacts": artifacts,
    }
    path = Path(out_dir) / MANIFEST
    write_atomically(path, (json.dumps(manifest, indent=2) + "\n").encode())
    return path


def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {out_dir}: not a complete export")
    return json.loads(path.read_text())


def verify(out_dir: Path) -> dict[str, Any]:
    """Re-hash every artifact; raise ValueError naming the first file that changed or is missing."""
    manifest = read_manifest(out_dir)
    for entry in manifest["artifacts"]:
        path = Path(out_dir) / entry["file"]
        if not path.exists():
            raise ValueError(f"{path} is listed in the manifest but missing")
        if sha256_of(path) != entry["sha256"] or size_of(path) != entry["bytes"]:
            raise ValueError(f"{path} differs from the manifest (sha256 / size)")
    return manifest
