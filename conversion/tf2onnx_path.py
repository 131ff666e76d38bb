"""The generic ONNX path through tf2onnx, kept for comparison; ``onnx_native`` is the default.

tf2onnx cannot read jax2tf's ``XlaCallModule``, so it is fed the TFLite flatbuffer instead. That
only works with the GRU scan *fully unrolled* at export: a rolled scan becomes an ONNX ``Loop``
around ``TFL_DYNAMIC_UPDATE_SLICE`` that ONNX Runtime refuses. The unrolled graph (256 steps ×
2 directions) is large and slow; see docs/export.md for the numbers.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from conversion import tflite
from conversion.source import ExportSource

OPSET = 17


def to_onnx_bytes(source: ExportSource, batch_size: int = 1, opset: int = OPSET) -> bytes:
    """jax2tf → fully unrolled TFLite (FP32) → tf2onnx → ONNX bytes (fixed batch)."""
    import tf2onnx.convert

    flatbuffer = tflite.to_tflite_bytes(source, batch_size=batch_size, gru_unroll=source.window, keep_names=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "unrolled.tflite"
        path.write_bytes(flatbuffer)
        proto, _ = tf2onnx.convert.from_tflite(str(path), opset=opset)
    return proto.SerializeToString()
