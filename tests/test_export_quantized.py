"""Quantised TFLite: no FP32 gate, but agreement with the JAX model is measured and reported."""
from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

pytestmark = pytest.mark.slow  # INT8 calibration and conversion with TensorFlow

from conversion import export as export_mod  # noqa: E402
from conversion import parity, tflite  # noqa: E402
from conversion.source import fresh_source, perturbed  # noqa: E402


@pytest.fixture(scope="module")
def source():
    return perturbed(fresh_source("jazbat_net", "1d"), seed=3)


def test_dynamic_range_int8_reports_agreement(source):
    data = tflite.to_tflite_bytes(source, quantization="dynamic_int8")
    assert not [o for o in tflite.builtin_op_names(data) if o.startswith("CUSTOM")]
    fp32 = tflite.to_tflite_bytes(source)
    assert len(data) < 0.75 * len(fp32)  # INT8 weights: ~90 KB against ~150 KB
    results = parity.check(source, tflite.TFLiteRunner(data), "dynamic_int8", exact=False, n=32)
    assert {r.windows for r in results} == {"random", "real"}
    for r in results:
        assert 0.0 < r.max_abs_error < 0.1  # quantised: not exact, but close
        assert r.argmax_agreement >= 0.8
    assert tflite.read_metadata(data) == source.sidecar()


def test_full_int8_export_reports_and_is_labelled(tmp_path):
    """Full INT8 (calibrated on the bundled real windows; scan fully unrolled, see tflite.py), on
    64-sample windows so that the unrolled conversion takes seconds."""
    from conversion.source import ExportSource
    from jazbat_jax.model import init_variables, jazbat_net

    model = jazbat_net("1d", window=64)
    source = perturbed(ExportSource(model, init_variables(model, 1), tuple("abcdef"), name="w64"), seed=1)
    m = export_mod.export(source, tmp_path, ["tflite-int8", "tflite-full-int8"], parity_windows=32)
    rows = {a["quantization"]: a for a in m["artifacts"]}
    assert set(rows) == {"dynamic_int8", "int8"}
    assert rows["int8"]["gru_unroll"] == source.window
    assert rows["int8"]["representative_windows"].startswith("bundled sample")
    for row in rows.values():
        assert row["parity_gate"].startswith("report only")
        assert all(r["argmax_agreement"] >= 0.8 for r in row["parity"])
