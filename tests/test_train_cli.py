"""The training commands end to end on the bundled real sample (T = 32, one epoch, few windows)."""
import json

import numpy as np
import pytest

from jazbat_jax.cli import build_parser
from jazbat_jax.data import bundled_sample_root

SAMPLE = bundled_sample_root()
SHORT = ["--window", "32", "--step", "32", "--max-windows", "300", "--epochs", "1", "--batch-size", "32",
         "--no-progress", "--no-plots"]


def _run(argv):
    """The command's function itself (errors raise, as the library raises them)."""
    args = build_parser().parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("command", ["pretrain", "finetune", "evaluate", "predict"])
def test_help_is_complete(command, capsys):
    with pytest.raises(SystemExit) as e:
        _run([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "default" in out and "(default: None)" not in out


@pytest.mark.slow  # four commands end to end on the bundled sample
def test_pretrain_finetune_evaluate_predict(tmp_path, capsys):
    pre, tl = tmp_path / "pre", tmp_path / "tl"
    assert _run(["pretrain", "--data-root", str(SAMPLE / "wisdm2019"), "--run-dir", str(pre), *SHORT]) == 0
    cfg = json.loads((pre / "config.json").read_text())
    assert cfg["model"]["num_classes"] == 18 and cfg["model"]["reduce_filters"] == 18  # K = C of WISDM
    assert cfg["run"]["data"]["max_windows"] == 300 and cfg["run"]["data"]["split"]["protocol"] == "subject"
    assert cfg["input"]["gravity"] == "included" and cfg["input"]["magnitude"] == "norm_minus_g"

    tl_args = ["finetune", "--from", str(pre), "--data-root", str(SAMPLE / "quiroz2018_emotion_walking"),
               "--run-dir", str(tl), "--step", "32", "--max-windows", "300", "--epochs", "1", "--batch-size", "32",
               "--no-progress", "--no-plots"]
    assert _run(tl_args) == 0
    cfg = json.loads((tl / "config.json").read_text())
    assert (cfg["model"]["num_classes"], cfg["model"]["reduce_filters"], cfg["model"]["window"]) == (3, 18, 32)
    assert cfg["transfer_source"]["class_names"][0] == "walking"
    assert cfg["run"]["transfer"]["dont_load"] == ["head/.*"]
    assert cfg["input"]["gravity"] == "removed" and cfg["input"]["magnitude"] == "norm"  # Quiroz: linear acceleration
    std = cfg["standardizer"]
    assert std != json.loads((pre / "config.json").read_text())["standardizer"]  # the target's statistics
    final = json.loads((tl / "final_eval.json").read_text())
    assert set(final["report"]["per_class"]) == {"happy", "neutral", "sad"}

    out_json = tmp_path / "eval.json"
    assert _run(["evaluate", str(tl), "--output", str(out_json)]) == 0
    ev = json.loads(out_json.read_text())
    assert ev["report"]["n"] == final["report"]["n"]
    assert ev["report"]["accuracy"] == pytest.approx(final["report"]["accuracy"])  # same split, same checkpoint

    rec = tmp_path / "rec.npy"
    np.save(rec, np.random.default_rng(0).normal(size=(100, 3)))  # 3 acceleration columns → magnitude
    csv = tmp_path / "probs.csv"
    capsys.readouterr()
    assert _run(["predict", str(rec), "--checkpoint", str(tl), "--step", "16", "--output", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "5 windows of 32 samples, step 16" in out and "votes:" in out
    rows = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert rows.shape == (5, 4) and np.allclose(rows[:, 1:].sum(1), 1, atol=1e-4)

    with pytest.raises(Exception, match="resume is off"):
        _run([*tl_args, "--no-resume"])


def test_sample_flag_points_at_the_bundled_data():
    from jazbat_jax.data.config import resolve_root
    from jazbat_jax.train.cli import data_config_from_args

    parser = build_parser()
    cfg = data_config_from_args(parser.parse_args(["finetune", "--no-pretrain", "--sample"]), "1d", 256)
    assert cfg.root == "bundled" and cfg.step == 16
    assert resolve_root(cfg) == SAMPLE / "quiroz2018_emotion_walking"
    with pytest.raises(ValueError, match="--sample"):
        data_config_from_args(parser.parse_args(["finetune", "--no-pretrain", "--sample", "--data", "seecs"]), "1d", 256)
