"""A model defined outside the package: named as package.module:factory, path/to/file.py:factory or an
installed entry point; the factory contract and its one-line errors; accuracy-cost job ids that name the model
and never a folder; and the worked example of docs/your-model.md run as written, on tiny settings."""
import json
import re
import shlex
from pathlib import Path

import pytest

from conversion.parity import FP32_ATOL
from jazbat_jax import architectures, complexity
from jazbat_jax.cli import main
from jazbat_jax.experiments import accuracy_cost

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "your_model" / "tiny_cnn.py"
# The README's and docs' small model: conv 7×1×16 + 16, BN 2×16 (+2×16 statistics), conv 5×16×32 + 32, dense 32×C + C.
TINY_CNN_PARAMS = 7 * 16 + 16 + 2 * 16 + 5 * 16 * 32 + 32 + 32 * 18 + 18


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test registers its own model files (a process refuses two different files of one name)."""
    monkeypatch.setattr(architectures, "_FILES", {})


def test_a_file_spec_and_a_module_spec_build_the_same_model(monkeypatch):
    by_file = architectures.resolve(architectures.canonical(f"{EXAMPLE}:build"))
    assert by_file.name == "tiny_cnn.py:build" and by_file.origin == "file"
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    by_module = architectures.resolve("tiny_cnn:build")
    for arch in (by_file, by_module):
        cost = complexity.count(arch.build(18, 256, 1))
        assert (cost.trainable, cost.non_trainable, cost.unknown) == (TINY_CNN_PARAMS, 32, ())


def test_an_installed_package_adds_an_architecture_by_entry_point(tmp_path, monkeypatch):
    (tmp_path / "their_models.py").write_text(EXAMPLE.read_text())
    info = tmp_path / "their_models-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: their-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[jazbat.architectures]\ntheir_cnn = their_models:build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "their_cnn" in architectures.names()
    arch = architectures.resolve("their_cnn")
    assert arch.origin == "entry point of their-models"
    assert complexity.count(arch.build(18)).trainable == TINY_CNN_PARAMS


BROKEN = '''
import flax.linen as nn

class FixedWindow(nn.Module):
    num_classes: int
    window: int = 128
    input_dim: int = 1

    @nn.compact
    def __call__(self, x, train=False):
        return nn.Dense(self.num_classes)(x.mean(axis=1))

def fixed(num_classes, window, input_dim):
    return FixedWindow(num_classes=num_classes)

def refuses(num_classes, window, input_dim):
    raise ValueError(f"this model takes windows of 128 samples, not {window}")

def not_a_module(num_classes, window, input_dim):
    return "a string"
'''


@pytest.mark.parametrize("factory, message", [
    ("fixed", "broken.py:fixed returned a FixedWindow with window=128 (asked 256)"),
    ("refuses", "broken.py:refuses(num_classes=6, window=256, input_dim=1) failed: this model takes windows of 128"),
    ("not_a_module", "broken.py:not_a_module returned str, not a flax.linen.Module"),
    ("missing", "cannot load the model factory broken.py:missing: AttributeError"),
])
def test_a_factory_that_breaks_the_contract_is_one_line(tmp_path, capsys, factory, message):
    (tmp_path / "broken.py").write_text(BROKEN)
    assert main(["profile", "--models", f"{tmp_path / 'broken.py'}:{factory}", "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_unknown_names_and_missing_files_are_one_line(tmp_path, capsys):
    assert main(["profile", "--models", "resnet", "--out", str(tmp_path / "p")]) == 1
    assert "unknown architecture 'resnet'" in capsys.readouterr().err
    assert main(["profile", "--models", "nowhere/model.py:build", "--out", str(tmp_path / "p")]) == 1
    assert "model file nowhere/model.py does not exist" in capsys.readouterr().err


def test_job_ids_name_the_model_and_its_shapes_never_a_folder(tmp_path):
    mine = tmp_path / "deep" / "folder" / "tiny_cnn.py"
    mine.parent.mkdir(parents=True)
    mine.write_text(EXAMPLE.read_text())
    settings = accuracy_cost.Settings(archs=("jazbat_net", f"{mine}:build"), seeds=(0,), root="bundled", window=32,
                                      step=64, epochs=1)
    assert settings.archs == ("jazbat_net", "tiny_cnn.py:build")
    jazbat, yours = accuracy_cost.plan(settings, "wisdm@0123456789abcdef")
    assert "model" not in jazbat.settings  # Jazbat-Net's jobs keep the ids they had
    assert re.fullmatch(r"tiny_cnn\.py_build-s0-[0-9a-f]{10}", yours.id)
    assert yours.settings["arch"] == "tiny_cnn.py:build" and re.fullmatch(r"[0-9a-f]{12}", yours.settings["model"])
    assert str(tmp_path) not in json.dumps(yours.settings)
    # A wider model under the same name is another job.
    mine.write_text(EXAMPLE.read_text().replace("width: int = 16", "width: int = 8"))
    architectures.fingerprint.cache_clear()  # a plan computes it once per process
    (_, wider) = accuracy_cost.plan(settings, "wisdm@0123456789abcdef")
    assert wider.id != yours.id and wider.name == yours.name


UNCONVERTIBLE = '''
import flax.linen as nn
import jax.numpy as jnp

class Eigen(nn.Module):
    """A model no TFLite builtin op can run (a symmetric eigendecomposition in the forward pass)."""
    num_classes: int
    window: int = 256
    input_dim: int = 1

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.Dense(4)(x)
        gram = jnp.einsum("btc,btd->bcd", h, h)
        return nn.Dense(self.num_classes)(jnp.linalg.eigh(gram)[0])

def build(num_classes, window, input_dim):
    return Eigen(num_classes=num_classes, window=window, input_dim=input_dim)
'''


@pytest.mark.slow
def test_a_runtime_that_cannot_convert_a_model_gives_a_reason_in_its_row(tmp_path):
    (tmp_path / "eigen.py").write_text(UNCONVERTIBLE)
    out = tmp_path / "profile"
    assert main(["profile", "--models", f"{tmp_path / 'eigen.py'}:build", "--batch", "1", "--runs", "2",
                 "--warmup", "1", "--out", str(out)]) == 0
    (row,) = json.loads((out / "profile.json").read_text())["models"]
    assert set(row["unavailable"]) >= {"tflite", "onnx"}
    assert all(len(why.splitlines()) == 1 for why in row["unavailable"].values())
    assert [t["runtime"] for t in row["latency"]] == ["jax"]  # JAX still runs it
    text = (out / "profile.md").read_text()
    assert "eigen.py_build_1d, tflite: not available**:" in text


def _commands() -> list[list[str]]:
    """The bash block of docs/your-model.md's worked example, command by command."""
    text = (REPO / "docs" / "your-model.md").read_text()
    block = text.split("## A worked example")[1].split("```bash\n")[1].split("```")[0]
    return [shlex.split(line) for line in block.strip().splitlines()]


@pytest.mark.slow
def test_the_worked_example_runs_as_written(tmp_path, monkeypatch):
    """The two commands of docs/your-model.md, from the repository root, with the results folder moved to
    tmp and settings made tiny (bundled sample, 32-sample windows, 2 epochs, 2 seeds, few timed runs)."""
    profile_cmd, train_cmd = _commands()
    assert profile_cmd[:2] == ["jazbat", "profile"] and train_cmd[:2] == ["jazbat", "accuracy-cost"]
    monkeypatch.chdir(REPO)
    moved = [[a.replace("runs/your-model", str(tmp_path / "your-model")) for a in cmd[1:]]
             for cmd in (profile_cmd, train_cmd)]
    assert main(moved[0] + ["--runs", "3", "--warmup", "1"]) == 0
    assert main(moved[1] + ["--sample", "--window", "32", "--step", "64", "--max-windows", "300", "--epochs", "2",
                            "--seeds", "0", "1", "--no-progress", "--in-process", "--latency-runs", "3",
                            "--latency-warmup", "1"]) == 0

    profile = json.loads((tmp_path / "your-model-profile" / "profile.json").read_text())
    yours = next(m for m in profile["models"] if m["name"] == "tiny_cnn.py_build_1d")
    assert yours["params_trainable"] == 7 * 16 + 16 + 2 * 16 + 5 * 16 * 32 + 32 + 32 * 6 + 6  # 6 classes here
    assert yours["macs"] > 0 and yours["xla"]["xla_flops_scan_corrected"] > 0 and yours["unavailable"] == {}
    assert {t["runtime"] for t in yours["latency"]} >= {"jax", "tflite", "onnx"}
    gates = yours["parity"]["tflite_fp32"] + yours["parity"]["onnx"]
    assert gates and all(r["max_abs_error"] <= FP32_ATOL and r["argmax_agreement"] == 1.0 for r in gates)

    result = json.loads((tmp_path / "your-model" / "accuracy_cost.json").read_text())
    model = next(m for m in result["models"] if m["arch"] == "tiny_cnn.py:build")
    assert model["seeds"] == [0, 1] and model["params_trainable"] == TINY_CNN_PARAMS
    assert model["equivalence"]["seeds_matched"] == [0, 1] and model["equivalence"]["verdict"]
    assert model["profile"]["params_total"] == model["params_total"]  # the trained model was profiled
    report = (tmp_path / "your-model" / "report.md").read_text()
    assert "| tiny_cnn.py:build |" in report and "equivalence within ±2" in report
    assert str(REPO) not in json.dumps(result)  # the model file is named relative to where the command ran
    assert (tmp_path / "your-model" / "pareto.png").stat().st_size > 20_000


def test_the_readme_shows_it_in_three_lines():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Your model side by side")[1].split("```bash\n")[1].split("```")[0]
    lines = section.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("#")
    assert [shlex.split(line) for line in lines[1:]] == _commands()


NO_BATCHNORM = '''
import flax.linen as nn

class Plain(nn.Module):
    """Convolution and dense layers only: no batch_stats collection at all."""
    num_classes: int
    window: int = 256
    input_dim: int = 1

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.relu(nn.Conv(8, (5,))(x))
        h = nn.Dropout(0.5, deterministic=not train)(h)
        return nn.Dense(self.num_classes)(h.mean(axis=1))

def build(num_classes, window, input_dim):
    return Plain(num_classes=num_classes, window=window, input_dim=input_dim)
'''


def test_a_model_without_batchnorm_trains_checkpoints_and_reloads(tmp_path):
    from jazbat_jax.train.checkpoint import load_checkpoint

    (tmp_path / "plain.py").write_text(NO_BATCHNORM)
    out = tmp_path / "out"
    assert main(["accuracy-cost", "--out", str(out), "--archs", f"{tmp_path / 'plain.py'}:build", "--sample",
                 "--window", "32", "--step", "64", "--max-windows", "200", "--epochs", "2", "--seeds", "0",
                 "--no-progress", "--in-process", "--no-latency"]) == 0
    (run,) = (out / "runs").glob("plain.py_build-s0-*/run")
    model, variables, meta = load_checkpoint(run)
    assert type(model).__name__ == "Plain" and set(variables) == {"params"}
    assert meta["run"]["model"]["arch"] == "plain.py:build"
