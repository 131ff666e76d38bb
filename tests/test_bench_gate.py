"""The benchmark gates catch real regressions: a deliberately slowed function (defined here, in the
test, never in the product) fails the same-run timing gate; a changed exact number fails the exact gate."""
import json
import subprocess
import sys
import textwrap

import pytest

from jazbat_jax import bench
from jazbat_jax.cli import main

BENCH_FILE = textwrap.dedent(
    """
    import os, time
    import numpy as np

    DATA = np.random.default_rng(0).normal(size=200_000)
    SLOW = os.environ.get("SLOW_BY_S")

    def work():
        return float(np.sort(DATA)[100])

    def candidate():
        out = work()
        if SLOW:  # the deliberate regression
            time.sleep(float(SLOW))
        return out

    def test_reference(benchmark):
        benchmark.pedantic(work, rounds=15, warmup_rounds=2)

    def test_candidate(benchmark):
        benchmark.extra_info["exact"] = {"params": int(os.environ.get("PARAMS", "28232"))}
        benchmark.pedantic(candidate, rounds=15, warmup_rounds=2)
    """
)


def run_benchmarks(tmp_path, name, **env):
    (tmp_path / "test_tiny_bench.py").write_text(BENCH_FILE)
    out = tmp_path / f"{name}.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_tiny_bench.py"),
         f"--benchmark-json={out}", "--benchmark-enable", "--rootdir", str(tmp_path)],
        check=True, capture_output=True, env={**__import__("os").environ, **env}, cwd=tmp_path,
    )
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    # the slowdown is ~5× the work's own time, far outside the same-run noise
    fast = run_benchmarks(tmp, "fast")
    work_s = bench.medians(bench.load_run(fast))["test_reference"]
    slow = run_benchmarks(tmp, "slow", SLOW_BY_S=str(5 * work_s))
    changed = run_benchmarks(tmp, "changed", PARAMS="28233")
    return tmp, fast, slow, changed


def write_gates(tmp):
    gates = tmp / "gates.json"
    gates.write_text(json.dumps({"timing": [
        {"candidate": "test_candidate", "reference": "test_reference", "max_ratio": 1.5, "why": "same work"}]}))
    return gates


def test_first_run_passes_and_saves_the_baseline(runs, capsys):
    tmp, fast, _, _ = runs
    baseline = tmp / "first_baseline.json"
    assert main(["bench-gate", str(fast), "--exact-baseline", str(baseline), "--gates", str(write_gates(tmp))]) == 0
    assert json.loads(baseline.read_text()) == {"test_candidate": {"params": 28232}}
    assert "no baseline yet" in capsys.readouterr().out


def test_slowed_function_is_caught(runs, capsys):
    tmp, fast, slow, _ = runs
    baseline = tmp / "baseline.json"
    gates = write_gates(tmp)
    assert main(["bench-gate", str(fast), "--exact-baseline", str(baseline), "--gates", str(gates)]) == 0
    assert main(["bench-gate", str(slow), "--exact-baseline", str(baseline), "--gates", str(gates)]) == 1
    out = capsys.readouterr().out
    assert "test_candidate median" in out and "FAILED" in out


def test_changed_exact_number_fails_until_the_baseline_is_updated(runs, capsys):
    tmp, fast, _, changed = runs
    baseline = tmp / "exact_baseline.json"
    gates = write_gates(tmp)
    assert main(["bench-gate", str(fast), "--exact-baseline", str(baseline), "--gates", str(gates)]) == 0
    assert main(["bench-gate", str(changed), "--exact-baseline", str(baseline), "--gates", str(gates)]) == 1
    assert "params changed from 28232 to 28233" in capsys.readouterr().out
    assert json.loads(baseline.read_text())["test_candidate"]["params"] == 28232  # not overwritten silently
    assert main(["bench-gate", str(changed), "--exact-baseline", str(baseline), "--gates", str(gates),
                 "--update-exact"]) == 0
    assert json.loads(baseline.read_text())["test_candidate"]["params"] == 28233


def test_report_table_and_plot(runs, tmp_path):
    _, fast, slow, _ = runs
    out = tmp_path / "report.md"
    assert main(["bench-report", f"before={fast}", f"after={slow}", "-o", str(out)]) == 0
    text = out.read_text()
    assert "| test_candidate |" in text and "after / before" in text
    assert (tmp_path / "report.png").stat().st_size > 1000


def test_bad_json_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit, match="not a pytest-benchmark JSON file"):
        bench.load_run(bad)


def test_gate_on_a_benchmark_missing_from_the_run_fails(runs):
    _, fast, _, _ = runs
    gates = [bench.TimingGate("test_renamed", "test_reference", 1.5)]
    failures, _ = bench.check_timing(bench.load_run(fast), gates)
    assert failures and "not both in this run" in failures[0]


def test_names_with_brackets_match_exactly():
    run = {"benchmarks": [{"name": n, "stats": {"median": m}} for n, m in
                          [("test_x[onnx]", 1.0), ("test_x[twin]", 10.0), ("test_x[o]", 9.0)]]}
    failures, notes = bench.check_timing(run, [bench.TimingGate("test_x[onnx]", "test_x[twin]", 0.2)])
    assert not failures and "test_x[onnx] median 1000.000 ms = 0.100" in notes[0]
