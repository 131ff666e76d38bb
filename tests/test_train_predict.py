"""`predict` turns a recording's raw columns into the model's input with the definition stored in the
checkpoint: the same walk given as 3 acceleration columns and as the loader's windows gives the same
probabilities, and a recording that contradicts the definition is refused with a reason."""
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from jazbat_jax.cli import main
from jazbat_jax.data import bundled_sample_root, example_recording
from jazbat_jax.data.config import DataConfig, resolve_root
from jazbat_jax.data.core import Standardizer
from jazbat_jax.data.quiroz import EMOTIONS, _EMOTION_CODE, load_quiroz, read_quiroz
from jazbat_jax.train import trainer
from jazbat_jax.train.checkpoint import load_checkpoint
from jazbat_jax.train.config import ModelConfig, RunConfig, TrainConfig
from jazbat_jax.train.evaluate import predict_proba
from jazbat_jax.train.loop import FitOptions
from jazbat_jax.train.predict import input_spec_of, predict_recording, read_recording

REPO_ROOT = Path(__file__).resolve().parents[1]

DATA = DataConfig(dataset="quiroz", root="bundled", window=64, step=32, max_windows=120)


@pytest.fixture(scope="module")
def quiroz_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("quiroz") / "run"
    config = RunConfig(data=DATA, model=ModelConfig("jazbat_net", None), train=TrainConfig(epochs=1, batch_size=32))
    trainer.finetune(config, run, options=FitOptions(progress=False, plots=False))
    return run


@pytest.fixture(scope="module")
def quiroz_model(quiroz_run):
    return load_checkpoint(quiroz_run)


@pytest.fixture(scope="module")
def walk():
    """One walk of the bundled sample: (participant, emotion index, its (n, 3) linear acceleration)."""
    d = read_quiroz(resolve_root(DATA))
    p, code = int(d["participant"][0]), int(d["emotion"][0])
    rows = (d["participant"] == p) & (d["emotion"] == code) & (d["segment"] == d["segment"][0])
    rows &= np.isfinite(d["lin_acc"]).all(1) & np.isfinite(d["rot"]).all(1)
    emotion = {v: k for k, v in _EMOTION_CODE.items()}[code]
    return p, EMOTIONS.index(emotion), d["lin_acc"][rows]


def test_same_walk_as_raw_columns_and_as_loader_windows(quiroz_model, walk, tmp_path):
    model, variables, meta = quiroz_model
    p, label, acc = walk
    csv = tmp_path / "walk.csv"
    np.savetxt(csv, acc, delimiter=",", header="ax,ay,az", comments="", fmt="%.9g")
    std = Standardizer.from_dict(meta["standardizer"])
    spec = input_spec_of(meta)
    assert (spec.kind, spec.gravity, spec.magnitude) == ("1d", "removed", "norm")
    from_columns = predict_recording(model, variables, std, read_recording(csv, spec), list(meta["class_names"]), 32)

    ws = load_quiroz(resolve_root(DATA), "1d", window=64, step=32, participants=[p])
    mine = np.flatnonzero(ws.y == label)
    assert len(mine) == len(from_columns["starts"]) > 3
    np.testing.assert_array_equal(ws.start[mine], from_columns["starts"])
    from_loader = predict_proba(model, variables, np.asarray(ws.x[mine]), std)
    np.testing.assert_allclose(from_columns["prob"], from_loader, atol=2e-6)


def test_recordings_that_contradict_the_model_are_refused(quiroz_model, walk, tmp_path):
    _, _, meta = quiroz_model
    spec = input_spec_of(meta)
    _, _, acc = walk
    with_gravity = tmp_path / "with_gravity.npy"
    np.save(with_gravity, acc + [0.0, 0.0, 9.81])  # a raw accelerometer: this model reads linear acceleration
    with pytest.raises(ValueError, match=r"with_gravity.npy: \|mean a\| is .* includes gravity"):
        read_recording(with_gravity, spec)
    huge = tmp_path / "huge.npy"
    np.save(huge, np.full((100, 3), 1e39))  # finite as float64, infinite as float32
    with pytest.raises(ValueError, match="huge.npy: contains NaN, infinite or out-of-range values .beyond float32"):
        read_recording(huge, spec)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="binary.csv: not a text file"):
        read_recording(binary, spec)
    two = tmp_path / "two.csv"
    np.savetxt(two, acc[:, :2], delimiter=",")
    with pytest.raises(ValueError, match="two.csv: 2 column.* raw columns ax, ay, az"):
        read_recording(two, spec)


def test_files_that_are_no_recording_get_one_line_naming_the_accepted_formats(quiroz_run, quiroz_model, tmp_path):
    """As a user runs it: no library warning with its source line before the error, and the error says
    what predict would read."""
    json_file = tmp_path / "walk.json"
    json_file.write_text('{"ax": [1, 2, 3], "ay": [4, 5, 6], "az": [7, 8, 9]}')
    env = {k: v for k, v in __import__("os").environ.items() if k != "JAZBAT_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "jazbat_jax.cli", "predict", str(json_file), "--checkpoint",
                           str(quiroz_run)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Warning" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"jazbat predict: error: {json_file}: a JSON file, not a recording format; "
                                  "predict reads .csv / .txt"), proc.stderr
    spec = input_spec_of(quiroz_model[2])
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("ax,ay,az\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "input contained no data" warning must not escape
        with pytest.raises(ValueError, match=r"header_only.csv: no rows of numbers after the header line 'ax,ay,az'; "
                                             r"predict reads .csv / .txt .*\.npy arrays, or SEECS CSV files"):
            read_recording(header_only, spec)


def test_example_recording_is_the_samples_walk():
    """The shipped CSV holds exactly participant 2's happy walk of the bundled archive, float32 for float32."""
    path = example_recording()
    assert path.read_text().splitlines()[0] == "ax,ay,az"
    d = read_quiroz(bundled_sample_root() / "quiroz2018_emotion_walking")
    rows = (d["participant"] == 2) & (d["emotion"] == _EMOTION_CODE["happy"])
    assert len(np.unique(d["segment"][rows])) == 1  # one walk
    shipped = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    np.testing.assert_array_equal(shipped, d["lin_acc"][rows])
    notice = (path.parent / "LICENSE").read_text()
    assert "MIT License" in notice and notice == (Path(str(d["_path"])).parent / "LICENSE").read_text()


def _readme_commands() -> list[list[str]]:
    readme = (REPO_ROOT / "README.md").read_text()
    return [line.split("#")[0].split()[1:] for line in readme.splitlines() if line.startswith(".venv/bin/jazbat ")]


def _readme_predict() -> list[str]:
    predict = next(a for a in _readme_commands() if a[0] == "predict" and not a[1].startswith("-"))
    assert (REPO_ROOT / predict[1]).resolve() == example_recording()
    return [predict[0], str(example_recording()), *predict[2:]]


def test_readme_says_the_sample_models_prediction_is_expected_to_be_wrong():
    """The README's example predicts a happy walk with a model of 3 epochs on the sample: a reader seeing
    'predicted sad' must learn from the README that this is expected."""
    readme = (REPO_ROOT / "README.md").read_text()
    after = readme[readme.index("The example recording is one real walk"):]
    paragraph = after[:after.index("\n\n")]
    assert "expected to be wrong" in paragraph and "predicted sad" in paragraph


def test_readme_predict_command_runs_on_a_quiroz_run(quiroz_run, capsys):
    """The README's `predict` line as written, its checkpoint swapped for a tiny Quiroz run."""
    argv = _readme_predict()
    argv[argv.index("--checkpoint") + 1] = str(quiroz_run)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{(2048 - 64) // 32 + 1} windows of 64 samples, step 32: predicted ")
    assert "votes: happy " in out


@pytest.mark.slow
def test_readme_pipeline_with_the_example_recording_runs(tmp_path, monkeypatch, capsys):
    """The README's sample pipeline as written up to `predict` on the example recording, with tiny settings
    appended (the last value of an option wins), run in a fresh folder."""
    commands = _readme_commands()
    pretrain = next(a for a in commands if a[0] == "pretrain" and "--sample" in a)
    finetune = next(a for a in commands if a[0] == "finetune" and "--sample" in a)
    tiny = ["--epochs", "1", "--window", "64", "--step", "64", "--max-windows", "96", "--no-progress", "--no-plots"]
    monkeypatch.chdir(tmp_path)
    assert main(pretrain + tiny + ["--activities", "AB"]) == 0
    assert main(finetune + tiny) == 0
    capsys.readouterr()
    assert main(_readme_predict()) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{(2048 - 64) // 64 + 1} windows of 64 samples, step 64: predicted ")
    assert "votes: happy " in out


def test_first_line_is_a_header_only_if_it_is_all_names(quiroz_model, tmp_path):
    """A byte-order mark must not turn the first sample into a 'header', and a first line mixing numbers
    and text is an error (the same line further down already is one), not silently dropped."""
    spec = input_spec_of(quiroz_model[2])
    lines = example_recording().read_text().splitlines()
    header, rows = lines[0], lines[1:]
    expected = read_recording(example_recording(), spec)
    assert len(expected) == len(rows) == 2048
    for name, text in [("bom_no_header.csv", "\n".join(rows)), ("bom_header.csv", "\n".join([header, *rows]))]:
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + text.encode())
        np.testing.assert_array_equal(read_recording(path, spec), expected)
    mixed = tmp_path / "mixed_first_line.csv"
    mixed.write_text("\n".join(["1.0,abc,2.0", *rows]))
    with pytest.raises(ValueError, match=r"mixed_first_line.csv, line 1: '1.0,abc,2.0' mixes numbers and other text"):
        read_recording(mixed, spec)
    later = tmp_path / "mixed_later.csv"
    later.write_text("\n".join([header, *rows[:5], "1.0,abc,2.0", *rows[5:]]))
    with pytest.raises(ValueError, match=r"mixed_later.csv, line 7: '1.0,abc,2.0' is not all numbers"):
        read_recording(later, spec)
    # A SEECS recording saved with a byte-order mark is still recognised by its header.
    from jazbat_jax.data.seecs import read_seecs_recording, write_seecs_recording

    seecs = write_seecs_recording(tmp_path / "seecs.csv", np.arange(5) * 40.0, np.ones((5, 3)), np.zeros((5, 3)))
    plain = read_seecs_recording(seecs)
    seecs.write_bytes(b"\xef\xbb\xbf" + seecs.read_bytes())
    np.testing.assert_array_equal(read_seecs_recording(seecs), plain)
