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
    import matplotlib

    path = Path(path)
    written = []
    # No date and fixed element ids in the SVG: the same figure gives the same bytes, so rebuilding a
    # committed report leaves its unchanged figures unchanged.
    with matplotlib.rc_context({"svg.hashsalt": path.stem}):
        for fmt, options in (("png", {"dpi": PNG_DPI}), ("svg", {"metadata": {"Date": None}})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, **options)
            written.append(write_atomically(path.with_suffix(f".{fmt}"), buffer.getvalue()))
    return written
