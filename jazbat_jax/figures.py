"""Saving figures: a PNG to look at and an SVG beside it to zoom into, print or put in a paper.

``save_figure(fig, "runs/x/curves.png")`` writes ``curves.png`` (200 dpi) and ``curves.svg``, each atomically
(a killed process leaves the previous file, never half of one). Works for a ``matplotlib.figure.Figure`` made
without pyplot as well as for a pyplot figure.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from jazbat_jax.files import write_atomically

PNG_DPI = 200


def save_figure(fig: Any, path: str | Path) -> list[Path]:
    """Write ``fig`` as ``path`` with the suffix .png (``PNG_DPI``) and .svg; return both paths, PNG first."""
    path = Path(path)
    written = []
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, **({"dpi": PNG_DPI} if fmt == "png" else {}))
        written.append(write_atomically(path.with_suffix(f".{fmt}"), buffer.getvalue()))
    return written
