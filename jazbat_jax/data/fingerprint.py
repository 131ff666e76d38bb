"""Data named by what they are, not where they lie: ``quiroz@3f2a9c1b7d0e4a55``.

An experiment's job id and its committed results must not depend on the folder a machine keeps its
data in (the same job on another machine, or in a checkout in another folder, must find the same
results). A *data label* is the dataset's name and a fingerprint of its files' contents; a run config
may carry one in place of a folder (``DataConfig.root``), and ``locate`` finds the folder holding
those exact files among the places data are looked for: folders registered by this process (an
experiment config's ``data_root``), ``$JAZBAT_DATA_ROOT``, ``../shared/data`` and the bundled sample.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .paths import bundled_sample_root, shared_data_root

# Files that describe a dataset rather than hold it: a changed README does not change the data.
_NOT_DATA = {"README.md", "CITATION", "LICENSE", "NOTICE"}
_LABEL = re.compile(r"^(?P<dataset>[a-z0-9_]+)@(?P<fp>[0-9a-f]{16})$")
_CHUNK = 1 << 20

_registered: list[Path] = []
_cache: dict[tuple, str] = {}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.name not in _NOT_DATA and not any(part.startswith(".") for part in
                                                                          p.relative_to(folder).parts))


def fingerprint(folder: str | Path) -> str:
    """16 hex digits of a SHA-256 over the data files under ``folder``: their relative paths, sizes and
    contents (READMEs and licence files excluded). Cached per process while no file changes."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist")
    files = _files(folder)
    key = (str(folder), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _cache:
        h = hashlib.sha256()
        for p in files:
            h.update(f"{p.relative_to(folder).as_posix()}\0{p.stat().st_size}\0".encode())
            with open(p, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        if not files:
            raise FileNotFoundError(f"data folder {folder} holds no data files")
        _cache[key] = h.hexdigest()[:16]
    return _cache[key]


def label(dataset: str, folder: str | Path) -> str:
    """The data label of ``dataset`` (wisdm, quiroz, seecs) held in ``folder``."""
    return f"{dataset}@{fingerprint(folder)}"


def is_label(root: str | None) -> bool:
    return bool(root) and _LABEL.match(str(root)) is not None


def register_root(folder: str | Path) -> None:
    """Look for labelled data in ``folder`` too (a data root holding dataset folders, or a dataset folder)."""
    p = Path(folder).expanduser().resolve()
    if p not in _registered:
        _registered.append(p)


def search_roots() -> list[Path]:
    """Where ``locate`` looks, in order."""
    roots = list(_registered)
    env = os.environ.get("JAZBAT_DATA_ROOT")
    for r in ([Path(env)] if env else []) + [shared_data_root(), bundled_sample_root()]:
        if r is not None and r.resolve() not in roots:
            roots.append(r.resolve())
    return roots


def locate(data_label: str, folder_name: str | None = None) -> Path:
    """The folder holding the data of ``data_label``: each search root itself, or its ``folder_name``
    subfolder (the dataset's usual folder name in a data root), whose fingerprint matches."""
    m = _LABEL.match(data_label)
    if m is None:
        raise ValueError(f"{data_label!r} is not a data label (dataset@fingerprint)")
    looked = []
    for root in search_roots():
        sub = root / folder_name if folder_name else None
        for cand in [sub] if sub is not None and sub.is_dir() else [root]:
            if cand in looked or not cand.is_dir():
                continue
            looked.append(cand)
            try:
                if fingerprint(cand) == m["fp"]:
                    return cand
            except FileNotFoundError:
                continue
    raise FileNotFoundError(
        f"no folder holds the {m['dataset']} data {data_label} (looked in {len(looked)} folder(s): "
        f"{', '.join(str(p) for p in looked[:4])}{', ...' if len(looked) > 4 else ''}); set JAZBAT_DATA_ROOT to the "
        "folder that holds them, or give the results folder's config the data_root they came from")
