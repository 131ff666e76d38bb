"""`jazbat export` / `jazbat profile` through argparse, and the checkpoint hook."""
from __future__ import annotations

import argparse
import json

import pytest

pytest.importorskip("onnxruntime")

from conversion import cli  # noqa: E402


def parse(argv):
    parser = argparse.ArgumentParser(prog="jazbat")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_export_fresh_onnx(tmp_path, capsys):
    args = parse(["export", "--fresh", "--format", "onnx", "--out", str(tmp_path / "out"), "--input", "3d"])
    assert args.func(args) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    (entry,) = manifest["artifacts"]
    assert entry["file"] == "jazbat_net_3d.onnx"
    assert entry["input_signature"]["shape"] == ["batch", 256, 3]
    assert "jazbat_net_3d.onnx" in capsys.readouterr().out


def test_export_needs_exactly_one_source(tmp_path):
    args = parse(["export", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="CHECKPOINT path or --fresh"):
        args.func(args)
    with pytest.raises(SystemExit):  # argparse rejects unknown formats
        parse(["export", "--fresh", "--format", "pdf", "--out", str(tmp_path)])


def test_load_source_reports_a_missing_checkpoint(tmp_path):
    from jazbat_jax.train.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint"):
        cli.load_source(tmp_path / "nothing-here")


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
