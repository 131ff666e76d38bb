"""Export parity and size gates (F=1 Jazbat-Net, one surrogate ONNX export). Conversions are slow,
so the source and its files are built once per session (``conftest.py``, shared with the deployment
profile's tests); the variables are perturbed off their initial values so that every bias and BatchNorm
statistic is exercised, and the standardizer is a real-looking one (|a| in m/s²: mean 9.81, std 2.5) so
that folding it into the files is exercised too."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

from conversion import export as export_mod  # noqa: E402
from conversion import manifest, onnx_native, parity, tflite  # noqa: E402
from conversion.source import RAW, STANDARDISED, fresh_source, perturbed  # noqa: E402
from tiny import EXPORT_INPUT_SPEC as INPUT_SPEC  # noqa: E402

TFLITE_FP32_MAX_BYTES = 160 * 1024  # the paper's file: 158 KB
ONNX_MAX_BYTES = 130 * 1024




@pytest.fixture(scope="module")
def source(jazbat_1d_source):
    return jazbat_1d_source


@pytest.fixture(scope="module")
def exported(jazbat_1d_export):
    return jazbat_1d_export


def _entry(m, file_suffix):
    (entry,) = [a for a in m["artifacts"] if a["file"].endswith(file_suffix)]
    return entry


def _assert_fp32_parity(entry):
    windows = {r["windows"] for r in entry["parity"]}
    assert windows == {"random", "real"}, "gates must run on random and real (bundled sample) windows"
    for r in entry["parity"]:
        assert r["max_abs_error"] <= parity.FP32_ATOL, r
        assert r["argmax_agreement"] == 1.0, r
        assert r["n"] == 64


def test_tflite_fp32_parity_size_and_builtins(exported, source):
    out, m = exported
    entry = _entry(m, ".tflite")
    _assert_fp32_parity(entry)
    data = (out / entry["file"]).read_bytes()
    assert entry["bytes"] == len(data) <= TFLITE_FP32_MAX_BYTES
    ops = tflite.builtin_op_names(data)
    assert not [o for o in ops if o.startswith("CUSTOM")], f"Flex / custom ops in the file: {ops}"
    assert "WHILE" in ops  # the GRU stays a loop (export-time unroll 8), not 256 copies
    assert entry["input_signature"] == {"name": "x", "shape": [1, 256, 1], "dtype": "float32", "values": RAW}
    # class names and standardizer travel inside the file
    assert tflite.read_metadata(data) == source.sidecar()


def test_tflite_conversion_is_deterministic(exported, source):
    out, m = exported
    again = tflite.to_tflite_bytes(source)
    assert hashlib.sha256(again).hexdigest() == _entry(m, ".tflite")["sha256"]


def test_tflite_runner_splits_into_the_fixed_batch(exported):
    out, m = exported
    runner = tflite.TFLiteRunner((out / _entry(m, ".tflite")["file"]).read_bytes())
    assert runner.batch_size == 1
    assert runner(np.zeros((3, 256, 1), np.float32)).shape == (3, 6)


def test_onnx_native_parity_size_and_dynamic_batch(exported, source):
    out, m = exported
    entry = _entry(m, ".onnx")
    _assert_fp32_parity(entry)
    data = (out / entry["file"]).read_bytes()
    assert entry["bytes"] == len(data) <= ONNX_MAX_BYTES
    assert entry["opset"] == onnx_native.OPSET
    # deterministic: the same variables give the same bytes
    assert hashlib.sha256(onnx_native.to_onnx_bytes(source)).hexdigest() == entry["sha256"]
    import onnx

    proto = onnx.load_from_string(data)
    assert [n.op_type for n in proto.graph.node].count("GRU") == 1
    (gru,) = [n for n in proto.graph.node if n.op_type == "GRU"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gru.attribute}
    assert attrs["linear_before_reset"] == 1 and attrs["direction"] == b"bidirectional"
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == list(source.class_names)
    assert json.loads(props["standardizer"]) == source.standardizer.to_dict()
    assert props["input_values"] == RAW and json.loads(props["input_spec"]) == INPUT_SPEC
    assert [n.op_type for n in proto.graph.node[:2]] == ["Sub", "Div"]  # the standardizer comes first
    # any batch size, same answers as the JAX model
    x = parity.random_windows(source, 5, seed=9)
    got = onnx_native.OnnxRunner(data)(x)
    ref = np.asarray(source.probabilities_fn()(x))
    np.testing.assert_allclose(got, ref, atol=parity.FP32_ATOL, rtol=0)


def test_saved_model_parity_and_sidecar(exported, source):
    out, m = exported
    entry = _entry(m, ".saved_model")
    _assert_fp32_parity(entry)
    assert json.loads((out / entry["file"] / entry["sidecar"]).read_text()) == source.sidecar()


def test_folded_files_take_raw_values_the_bare_model_standardised(exported, source, tmp_path):
    """The folded file on raw windows, the bare-model file on standardised ones and the JAX model
    on standardised ones give the same probabilities; each manifest says which input its files take."""
    out, m = exported
    assert m["model"]["input"]["values"] == RAW and m["model"]["input"]["standardizer_folded"]
    assert m["model"]["input_spec"] == INPUT_SPEC
    real = parity.real_windows(source, 16)
    assert real is not None and real.raw.min() >= 0  # raw |a| (a norm), not standardised
    folded = onnx_native.OnnxRunner((out / _entry(m, ".onnx")["file"]).read_bytes())(real.raw)
    bare_m = export_mod.export(source, tmp_path, ["onnx"], real=False, fold_standardizer=False)
    assert bare_m["model"]["input"]["values"] == STANDARDISED
    assert _entry(bare_m, ".onnx")["input_signature"]["values"] == STANDARDISED
    bare = onnx_native.OnnxRunner((tmp_path / _entry(bare_m, ".onnx")["file"]).read_bytes())
    standardised = source.standardizer(real.raw)
    bare_jax = dataclasses.replace(source, fold_standardizer=False).probabilities_fn()
    np.testing.assert_allclose(folded, bare(standardised), atol=parity.FP32_ATOL, rtol=0)
    np.testing.assert_allclose(folded, np.asarray(bare_jax(standardised)), atol=parity.FP32_ATOL, rtol=0)
    # and the folded file on standardised windows would be wrong: the fold is really there
    assert np.max(np.abs(bare(standardised) - bare(real.raw))) > 1e-3


def test_input_spec_must_be_json(source):
    with pytest.raises(ValueError, match="input_spec must be JSON"):
        dataclasses.replace(source, input_spec={"channels": {1, 2}})


def test_manifest_hashes_and_sidecar(exported, source):
    out, m = exported
    assert m["model"]["class_names"] == list(source.class_names)
    assert m["model"]["standardizer"] == source.standardizer.to_dict()
    assert "probabilities" in m["model"]["output"]["meaning"]
    for entry in m["artifacts"]:
        path = out / entry["file"]
        if path.is_file():
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest.verify(out)["artifacts"] == m["artifacts"]
    assert json.loads((out / f"{source.name}.sidecar.json").read_text()) == source.sidecar()
    assert not list(out.glob(".export-staging-*"))


def test_manifest_verify_detects_a_changed_file(exported, tmp_path):
    import shutil

    out, m = exported
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    onnx_file = copy / _entry(m, ".onnx")["file"]
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 1
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="differs from the manifest"):
        manifest.verify(copy)


def test_failing_parity_raises_and_writes_nothing(source, tmp_path, monkeypatch):
    """An ONNX file built from other weights must be rejected, leaving no artifact and no manifest."""
    wrong = perturbed(source, seed=99, scale=0.5)
    real_builder = onnx_native.to_onnx_bytes
    monkeypatch.setattr(export_mod.onnx_native, "to_onnx_bytes", lambda src, *a, **k: real_builder(wrong))
    with pytest.raises(parity.ParityError, match="fails the FP32 parity gate"):
        export_mod.export(source, tmp_path, ["onnx"], real=False)
    assert list(tmp_path.iterdir()) == []


def test_surrogate_onnx_parity(tmp_path):
    """The same exporter handles the S-754 surrogate (two stacked BiGRUs, Inception-style blocks)."""
    src = perturbed(fresh_source("sota_surrogate", "1d"), seed=4, scale=0.05)
    m = export_mod.export(src, tmp_path, ["onnx"], parity_windows=16, real=False)
    entry = _entry(m, ".onnx")
    assert entry["parity"][0]["max_abs_error"] <= parity.FP32_ATOL
    assert entry["parity"][0]["argmax_agreement"] == 1.0
    assert entry["bytes"] > 20 * ONNX_MAX_BYTES  # ~3 MB against Jazbat-Net's ~117 KB
    assert m["model"]["label"].startswith("S-754, a complexity-matched surrogate")


def test_formats_are_validated():
    assert export_mod.expand_formats("all") == ("tflite", "tflite-int8", "onnx", "saved_model")
    assert export_mod.expand_formats(["all", "tflite-full-int8"])[-1] == "tflite-full-int8"
    with pytest.raises(ValueError, match="unknown format"):
        export_mod.expand_formats(["tflite", "pdf"])


def test_default_int8_file_is_dynamic_range_only(tmp_path):
    """The full-INT8 file (docs/export.md: not to deploy) is written only when asked for by name."""
    src = _short_window_source(64, seed=2)
    m = export_mod.export(src, tmp_path, ["tflite-int8"], parity_windows=16)
    assert [a["quantization"] for a in m["artifacts"]] == ["dynamic_int8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "jazbat_net_1d_w64.dynamic_int8.tflite", "jazbat_net_1d_w64.sidecar.json", "manifest.json"]


def _short_window_source(window: int, seed: int):
    """Jazbat-Net on shorter windows: the fully unrolled paths (tf2onnx, full INT8) convert in seconds."""
    from conversion.source import ExportSource
    from jazbat_jax.model import init_variables, jazbat_net

    model = jazbat_net("1d", window=window)
    src = ExportSource(model, init_variables(model, seed), tuple(f"c{i}" for i in range(6)), name=f"jazbat_net_1d_w{window}")
    return perturbed(src, seed=seed)


@pytest.mark.slow  # the generic tf2onnx conversion
def test_tf2onnx_path_parity(tmp_path):
    """The generic path (fully unrolled TFLite -> tf2onnx) is exact too; it is only large and slow."""
    src = _short_window_source(32, seed=6)
    m = export_mod.export(src, tmp_path, ["onnx-tf2onnx"], parity_windows=16)
    entry = _entry(m, ".tf2onnx.onnx")
    assert {r["windows"] for r in entry["parity"]} == {"random", "real"}
    assert all(r["max_abs_error"] <= parity.FP32_ATOL and r["argmax_agreement"] == 1.0 for r in entry["parity"])
    assert entry["exporter"].startswith("jax2tf -> fully unrolled TFLite -> tf2onnx")
