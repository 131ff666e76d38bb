"""Writing files so that a killed process never leaves half of one."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def write_atomically(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """``obj`` as JSON (NumPy scalars and arrays, paths allowed), written atomically."""
    return write_atomically(path, json.dumps(obj, indent=indent, default=_json_default))


def write_json_lines(path: str | Path, rows: list[dict]) -> Path:
    """One JSON object per line, written atomically (the whole file at once)."""
    return write_atomically(path, "".join(json.dumps(r, default=_json_default) + "\n" for r in rows))


def read_json_lines(path: str | Path) -> list[dict]:
    """The objects of a JSON-lines file (blank lines skipped); [] when there is no such file."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """NumPy arrays in one compressed ``.npz``, written atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return write_atomically(path, buffer.getvalue())


def window_predictions(ws, pred: np.ndarray, prob: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-window predictions with what statistics at the person and walk level need: true and
    predicted class, participant, recording and the window's first sample (and probabilities)."""
    out = {"y_true": np.asarray(ws.y), "y_pred": np.asarray(pred), "participant": np.asarray(ws.subject),
           "recording": np.asarray(ws.recording), "start": np.asarray(ws.start),
           "class_names": np.asarray(ws.class_names)}
    if prob is not None:
        out["prob"] = np.asarray(prob, np.float32)
    return out


PREDICTIONS_FILE = "test_predictions.npz"


class FolderBusyError(RuntimeError):
    """Another live process holds the folder's lock."""


class FolderLock:
    """A lock on ``folder/.lock`` (``filelock``: ``flock`` on POSIX), held for the life of the process or
    until ``release``: the kernel releases it when the process dies, so a killed run never leaves a stale
    lock. ``.lock.holder`` names the holder, so that a second process can say who it is waiting for."""

    def __init__(self, folder: str | Path, what: str = ""):
        import socket
        import sys
        import time

        from filelock import FileLock, Timeout

        self.path = Path(folder) / ".lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._holder = self.path.with_name(".lock.holder")
        self._lock = FileLock(self.path, timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            try:
                holder = self._holder.read_text().strip()
            except OSError:
                holder = ""
            raise FolderBusyError(f"{self.path.parent} is in use by {holder or 'another process'}; wait for it to "
                                  "finish, or use another folder") from None
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
        self._holder.write_text(f"process {os.getpid()} on {socket.gethostname()} ({what or command}, since "
                                f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n")

    def release(self) -> None:
        if self._lock.is_locked:
            self._holder.unlink(missing_ok=True)
            self._lock.release()
