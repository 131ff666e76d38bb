"""`jazbat export` / `jazbat profile` through argparse, and the checkpoint hook."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from conversion import cli  # noqa: E402
from jazbat_jax.cli import build_parser  # noqa: E402


def parse(argv):
    """`jazbat` itself: the export commands join it through their entry point."""
    return build_parser().parse_args(argv)


def test_export_fresh_onnx(tmp_path, capsys):
    args = parse(["export", "--fresh", "--format", "onnx", "--out", str(tmp_path / "out"), "--input", "3d"])
    assert args.func(args) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (entry,) = manifest["artifacts"]
    assert entry["file"] == "jazbat_net_3d.onnx"
    assert entry["input_signature"]["shape"] == ["batch", 256, 3]
    out = capsys.readouterr().out
    assert "jazbat_net_3d.onnx" in out
    # each phase is announced as it starts, so a long export shows where it is
    assert "[1/1] ONNX: the graph from the parameter tree, then the parity gate" in out
    assert "every file passed its gate (last step" in out


def test_export_needs_exactly_one_source(tmp_path):
    args = parse(["export", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="CHECKPOINT path or --fresh"):
        args.func(args)
    with pytest.raises(SystemExit):  # argparse rejects unknown formats
        parse(["export", "--fresh", "--format", "pdf", "--out", str(tmp_path)])


def test_load_source_reports_a_missing_checkpoint(tmp_path):
    from conversion.source import load_source
    from jazbat_jax.train.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_source(tmp_path / "nothing-here")


def test_profile_small(tmp_path):
    args = parse(["profile", "--models", "jazbat_net:1d", "--batch", "1", "--runs", "3", "--warmup", "1",
                  "--runtimes", "onnx", "--out", str(tmp_path)])
    assert args.func(args) == 0
    report = json.loads((tmp_path / "profile.json").read_text())
    (row,) = report["models"]
    assert row["params_total"] == 28360 and row["macs"] == 6955044
    assert [t["runtime"] for t in row["latency"]] == ["onnx"]
    assert (tmp_path / "profile.png").stat().st_size > 0
    assert "jazbat_net_1d" in (tmp_path / "profile.md").read_text()


def test_export_from_a_checkpoint(tmp_path):
    """A checkpoint written by the training code exports with its class names and standardizer;
    with the bundled sample's classes, the real-window gate also reports accuracy."""
    import numpy as np

    from jazbat_jax.data.core import Standardizer
    from jazbat_jax.model import init_variables, jazbat_net
    from jazbat_jax.model import model_config
    from jazbat_jax.train.checkpoint import Checkpoints
    from jazbat_jax.train.config import RunConfig
    from jazbat_jax.data.config import DataConfig
    from jazbat_jax.train.state import create_train_state
    from jazbat_jax.train.steps import make_optimizer

    model = jazbat_net("1d", num_classes=3, reduce_filters=3)
    state = create_train_state(model, init_variables(model, 1), make_optimizer(), seed=0)
    std = Standardizer(np.array([1.5], np.float32), np.array([2.0], np.float32))
    # the data stored with it cannot be found here: the gate uses the bundled sample
    run = RunConfig(data=DataConfig(dataset="quiroz", root=str(tmp_path / "elsewhere")))
    meta = {"run": run.to_dict(), "model": model_config(model), "class_names": ["happy", "neutral", "sad"],
            "standardizer": std.to_dict(), "input": None}
    ck = Checkpoints(tmp_path / "run" / "checkpoints")
    ck.save_last(1, state, meta)
    ck.save_best(1, state, meta)
    ck.close()

    args = parse(["export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["model"]["class_names"] == ["happy", "neutral", "sad"]
    assert manifest["model"]["standardizer"] == std.to_dict()
    assert manifest["model"]["origin"] == f"{tmp_path / 'run' / 'checkpoints' / 'best' / '1'} (epoch 1)"
    (real,) = [r for r in manifest["artifacts"][0]["parity"] if r["windows"] == "real"]
    assert real["accuracy_reference"] is not None and real["accuracy_candidate"] == real["accuracy_reference"]
