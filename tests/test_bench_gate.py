"""The benchmark gates (benchmarks/gate.py): the median's confidence interval has the coverage it claims,
the decisions follow it, a deliberately slowed candidate that the bound no longer catches fails the gate,
exact numbers are gated exactly, and the command line gives one-line errors. One real end-to-end run:
a tiny interleaved benchmark (same work as reference, plus copies slowed here by 2× and 3×) through
pytest-benchmark, then `check` and `report`."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import gate, interleave  # noqa: E402

SETTINGS = gate.GateSettings(alpha=0.01, chunk_rounds=40, max_looks=4, slowdowns=(0.25, 0.5))
GATES = [gate.TimingGate("onnx", "twin", 0.12, catches=0.25)]


def test_median_interval_uses_binomial_order_statistics():
    x = list(range(10, 0, -1))  # 10 values, order does not matter
    # P(Binomial(10, 1/2) <= 0) = 1/1024, P(<= 1) = 11/1024 = 0.0107
    assert gate.median_interval(x, 0.011) == gate.RatioEstimate(5.5, 2, 9, 10)
    assert gate.median_interval(x, 0.01) == gate.RatioEstimate(5.5, 1, 10, 10)
    too_few = gate.median_interval([1.0, 2.0], 0.01)
    assert too_few.low == float("-inf") and too_few.high == float("inf")


def test_median_interval_coverage_matches_alpha():
    """Skewed per-round ratios with a known median: the lower limit lies above it in at most alpha of samples."""
    rng = np.random.default_rng(0)
    true_median = 0.1 * np.exp(0.0)  # lognormal(0, 0.3) scaled by 0.1 has median 0.1
    alpha, trials = 0.05, 2000
    above = sum(gate.median_interval(list(0.1 * rng.lognormal(0, 0.3, 40)), alpha).low > true_median
                for _ in range(trials))
    assert above / trials <= alpha
    assert above / trials > alpha / 4  # and the interval is not needlessly wide


def test_decide():
    assert gate.decide([0.10] * 40, 0.12, 0.0025)[0] == "pass"
    assert gate.decide([0.13] * 40, 0.12, 0.0025)[0] == "fail"
    assert gate.decide(list(np.linspace(0.10, 0.14, 40)), 0.12, 0.0025)[0] == "open"


def test_one_cpu_pins_every_thread_and_restores():
    import threading

    before = os.sched_getaffinity(0)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)  # a thread pool's thread, started before the pinning
    worker.start()
    try:
        with interleave.one_cpu() as cpu:
            assert os.sched_getaffinity(0) == {cpu} == os.sched_getaffinity(worker.native_id)
        assert os.sched_getaffinity(0) == before == os.sched_getaffinity(worker.native_id)
    finally:
        stop.set()
        worker.join()


def run_json(times: dict[str, list[float]], slowed: dict[str, dict], exact: int = 28360) -> dict:
    info = {"looks": 1, "times": times, "slowed": dict(slowed), "load_average": [0.5] * 6}
    return {"benchmarks": [
        {"name": "test_interleaved", "stats": {"median": 1.0}, "extra_info": {"interleaved": info}},
        {"name": "test_latency[onnx]", "stats": {"median": 3e-4}, "extra_info": {"exact": {"params": exact}}},
    ]}


SLOWED = {"onnx slowed 25%": {"of": "onnx", "by": 0.25}, "onnx slowed 50%": {"of": "onnx", "by": 0.5}}


def healthy(candidate=0.10, by25=0.125, by50=0.15, n=40, reference=None):
    """Times per call in seconds: the twin at 1, so the times are the ratios to it; ``reference`` adds a
    regression reference of ONNX at that time."""
    times = {"twin": [1.0] * n, "onnx": [candidate] * n, "onnx slowed 25%": [by25] * n,
             "onnx slowed 50%": [by50] * n}
    if reference is not None:
        times["onnx_reference"] = [reference] * n
    return run_json(times, SLOWED)


def test_timing_gate_passes_and_catches_the_slowdowns():
    failures, notes, results, catches = gate.check_timing(healthy(), GATES, SETTINGS)
    assert failures == []
    assert [(r.name, r.decision) for r in results] == [
        ("onnx", "pass"), ("onnx slowed 25%", "fail"), ("onnx slowed 50%", "fail")]
    assert [(c.name, c.caught_by) for c in catches] == [("onnx slowed 25%", ("onnx/twin",)),
                                                        ("onnx slowed 50%", ("onnx/twin",))]
    assert "timing: onnx slowed 25%: deliberate slowdown caught by onnx/twin" in notes


def test_timing_gate_fails_a_slow_candidate():
    failures, _, _, _ = gate.check_timing(healthy(candidate=0.125), GATES, SETTINGS)
    assert len(failures) == 1 and failures[0].startswith("timing: onnx / twin: median ratio 0.1250")


def test_ratios_are_taken_within_each_round():
    """A round where the whole machine ran at half speed slows both sides: its ratio is unchanged."""
    run = run_json({"twin": [1.0, 2.0, 1.0], "onnx": [0.1, 0.2, 0.1]}, {})
    assert gate.round_ratios(gate.interleaved(run)["times"], "onnx", "twin") == [0.1, 0.1, 0.1]


def test_a_slowdown_the_bound_does_not_catch_fails_the_gate():
    """A bound left loose (or a candidate that got faster) would let a 25% regression through."""
    run = healthy(candidate=0.08, by25=0.10, by50=0.12 + 1e-9)
    failures, _, _, _ = gate.check_timing(run, GATES, SETTINGS)
    assert len(failures) == 1 and "onnx slowed 25%" in failures[0] and "NOT caught" in failures[0]
    # a gate derived to catch only 50%: the 25% copy that passes it is noted, not failed
    loose = [gate.TimingGate("onnx", "twin", 0.12, catches=0.5)]
    failures, notes, _, _ = gate.check_timing(run, loose, SETTINGS)
    assert failures == [] and any("onnx slowed 25%" in n and "no gate of onnx is derived to" in n for n in notes)


def test_a_floor_gate_fails_a_slow_candidate_but_is_not_required_to_catch_a_copy():
    """Against the twin, whose ratio drifts with the machine's state, the gate is a floor (catches None): it
    fails a candidate above it, and a slowed copy passing it is noted, not failed (the regression
    reference's gate is the one derived to catch it)."""
    floor = [gate.TimingGate("onnx", "twin", 0.16, catches=None)]
    failures, notes, _, catches = gate.check_timing(healthy(), floor, SETTINGS)
    assert failures == [] and [c.required for c in catches] == [False, False]
    failures, _, _, _ = gate.check_timing(healthy(candidate=0.2), floor, SETTINGS)
    assert len(failures) == 1 and failures[0].startswith("timing: onnx / twin: median ratio 0.2000")


def test_a_floor_bound_sits_its_margin_above_the_highest_unchanged_limit():
    passes = [{"label": "idle", "gates": {"onnx/twin": {"median": 0.10, "low": 0.09, "high": 0.11, "slowed": {}}}},
              {"label": "load", "gates": {"onnx/twin": {"median": 0.12, "low": 0.11, "high": 0.13, "slowed": {}}}}]
    bound, why = gate.derive_bound(passes, gate.TimingGate("onnx", "twin", 1.0, catches=None))
    assert bound == round(0.13 * (1 + gate.FLOOR_MARGIN), 4) and why.startswith("a floor: 2 calibration passes")
    with pytest.raises(gate.GateError, match="overlaps the unchanged ratio"):  # a slowdown it cannot separate
        gate.derive_bound([{"label": "idle", "gates": {"onnx/twin": {
            "median": 0.10, "low": 0.09, "high": 0.13, "slowed": {"0.25": {"low": 0.12}}}}}],
            gate.TimingGate("onnx", "twin", 1.0, catches=0.25))


def test_a_copy_caught_by_one_of_its_candidates_gates_is_caught():
    """The regression gate (bound near 1) catches 25% although the loose gate against the twin does not."""
    gates = [gate.TimingGate("onnx", "onnx_reference", 1.12, catches=0.25),
             gate.TimingGate("onnx", "twin", 0.13, catches=0.5)]
    run = healthy(candidate=0.10, by25=0.125, by50=0.15, reference=0.10)
    failures, notes, results, catches = gate.check_timing(run, gates, SETTINGS)
    assert failures == []
    assert [(r.name, r.gate.reference, r.decision) for r in results] == [
        ("onnx", "onnx_reference", "pass"), ("onnx slowed 25%", "onnx_reference", "fail"),
        ("onnx slowed 50%", "onnx_reference", "fail"), ("onnx", "twin", "pass"),
        ("onnx slowed 25%", "twin", "pass"), ("onnx slowed 50%", "twin", "fail")]
    assert [c.caught_by for c in catches] == [("onnx/onnx_reference",), ("onnx/onnx_reference", "onnx/twin")]
    # and the candidate fails when either of its gates fails it
    failures, _, _, _ = gate.check_timing(healthy(candidate=0.10, reference=0.08), gates, SETTINGS)
    assert len(failures) == 1 and failures[0].startswith("timing: onnx / onnx_reference: median ratio 1.2500")


def test_open_names_drive_the_sequential_measurement():
    gates = [gate.TimingGate("onnx", "onnx_reference", 1.12, catches=0.25),
             gate.TimingGate("onnx", "twin", 0.13, catches=0.5)]
    times = gate.interleaved(healthy(candidate=0.10, by25=0.125, by50=0.15, reference=0.10))["times"]
    assert gate.open_names(times, SLOWED, gates, 0.0025) == []  # every gate decided, both copies failed
    times["onnx"] = list(np.linspace(0.10, 0.14, 40))  # median 0.12: open against both bounds
    assert gate.open_names(times, SLOWED, gates, 0.0025) == ["onnx"]


def test_undecided_at_the_cap_is_not_a_failure():
    spread = list(np.linspace(0.10, 0.14, 160))  # median 0.12: the interval contains the bound
    run = healthy(n=160)
    run["benchmarks"][0]["extra_info"]["interleaved"]["times"]["onnx"] = spread
    failures, notes, results, _ = gate.check_timing(run, GATES, SETTINGS)
    assert failures == [] and results[0].decision == "open" and "not shown worse" in notes[0]


def test_missing_measurement_or_slowdown_fails():
    run = healthy()
    del run["benchmarks"][0]["extra_info"]["interleaved"]["slowed"]["onnx slowed 50%"]
    failures, _, _, _ = gate.check_timing(run, GATES, SETTINGS)
    assert len(failures) == 1 and "lacks its deliberate slowdown(s) [0.5]" in failures[0]
    failures, _, _, _ = gate.check_timing(run, [gate.TimingGate("tflite", "twin", 0.2, 0.25)], SETTINGS)
    assert "no interleaved measurement of this pair" in failures[0]


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def gates_file(tmp_path):
    return write(tmp_path, "gates.json", {
        "settings": {"alpha": 0.01, "chunk_rounds": 40, "max_looks": 4, "slowdowns": [0.25, 0.5]},
        "timing": [{"candidate": "onnx", "reference": "twin", "max_ratio": 0.12, "catches": 0.25}]})


def test_exact_numbers_fail_until_the_baseline_is_updated(tmp_path, gates_file, capsys):
    baseline = tmp_path / "exact.json"
    args = ["--exact-baseline", str(baseline), "--gates", str(gates_file)]
    assert gate.main(["check", str(write(tmp_path, "a.json", healthy())), *args]) == 0  # first run saves it
    assert json.loads(baseline.read_text()) == {"test_latency[onnx]": {"params": 28360}}
    changed = healthy()
    changed["benchmarks"][1]["extra_info"]["exact"]["params"] = 28361
    changed_path = write(tmp_path, "b.json", changed)
    assert gate.main(["check", str(changed_path), *args]) == 1
    assert "params changed from 28360 to 28361" in capsys.readouterr().out
    assert json.loads(baseline.read_text())["test_latency[onnx]"]["params"] == 28360  # not overwritten silently
    assert gate.main(["check", str(changed_path), *args, "--update-exact"]) == 0
    assert json.loads(baseline.read_text())["test_latency[onnx]"]["params"] == 28361


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the pytest-benchmark JSON file"),
    ("{", "is not valid JSON"),
    ("{}", "is not a pytest-benchmark JSON file"),
])
def test_command_line_errors_are_one_line(tmp_path, content, message):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    out = subprocess.run([sys.executable, "-m", "benchmarks.gate", "check", str(path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and message in out.stderr


def test_calibrate_appends_passes(tmp_path, gates_file):
    calibration = tmp_path / "cal.json"
    run = write(tmp_path, "run.json", healthy())
    for _ in range(2):
        assert gate.main(["calibrate", "--label", "load", str(run), "--gates", str(gates_file),
                          "--calibration", str(calibration)]) == 0
    passes = json.loads(calibration.read_text())["passes"]
    assert len(passes) == 2 and list(passes[0]["gates"]) == ["onnx/twin"] and passes[0]["label"] == "load"
    assert passes[0]["gates"]["onnx/twin"]["median"] == 0.1
    assert passes[0]["gates"]["onnx/twin"]["slowed"]["0.25"] | {"ratios": None} == {
        "median": 0.125, "low": 0.125, "high": 0.125, "ratios": None}


def test_bounds_sit_halfway_between_unchanged_and_slowed(tmp_path, gates_file):
    calibration = tmp_path / "cal.json"
    runs = [write(tmp_path, "a.json", healthy(candidate=0.10, by25=0.125)),
            write(tmp_path, "b.json", healthy(candidate=0.09, by25=0.121))]
    assert gate.main(["calibrate", "--label", "idle", *map(str, runs), "--gates", str(gates_file),
                      "--calibration", str(calibration), "--write-bounds"]) == 0
    (g,) = json.loads(gates_file.read_text())["timing"]
    assert g["max_ratio"] == round((0.10 * 0.121) ** 0.5, 4)  # the highest unchanged, the lowest slowed
    assert g["why"].startswith("2 calibration passes (idle): unchanged median ratio 0.0900-0.1000")
    overlapping = write(tmp_path, "c.json", healthy(candidate=0.13, by25=0.125))
    assert gate.main(["calibrate", "--label", "load", str(overlapping), "--gates", str(gates_file),
                      "--calibration", str(calibration), "--write-bounds"]) == 2  # no bound separates them


TINY_BENCH = textwrap.dedent(
    """
    import numpy as np

    from benchmarks.gate import load_gates, open_names
    from benchmarks.interleave import measure_until_decided

    DATA = np.random.default_rng(0).normal(size=50_000)

    def work():
        return float(np.sort(DATA)[100])

    def slowed(times):  # the deliberate regression: the same work, `times` times over
        return lambda: [work() for _ in range(times)][0]

    def test_interleaved(benchmark):
        gates, settings = load_gates("gates.json")
        calls = {"twin": work, "onnx": work, "onnx slowed 100%": slowed(2), "onnx slowed 200%": slowed(3)}
        copies = {"onnx slowed 100%": {"of": "onnx", "by": 1.0}, "onnx slowed 200%": {"of": "onnx", "by": 2.0}}
        undecided = lambda times, looks: open_names(times, copies, gates, settings.alpha_per_look)
        out = {}
        benchmark.pedantic(lambda: out.update(zip(("times", "looks"), measure_until_decided(
            calls, undecided, settings.chunk_rounds, settings.max_looks))), rounds=1, iterations=1)
        benchmark.extra_info["interleaved"] = {"looks": out["looks"], "times": out["times"], "slowed": copies}
    """
)


@pytest.mark.slow
def test_end_to_end_measure_check_and_report(tmp_path):
    """Real pytest-benchmark JSON from a real interleaved measurement; the copies doing 2× and 3× the work
    sit far outside the noise of a same-work ratio, so the gate must pass and catch both."""
    (tmp_path / "test_tiny_bench.py").write_text(TINY_BENCH)
    write(tmp_path, "gates.json", {
        "settings": {"alpha": 0.01, "chunk_rounds": 20, "max_looks": 3, "slowdowns": [1.0, 2.0]},
        "timing": [{"candidate": "onnx", "reference": "twin", "max_ratio": 1.4, "catches": 1.0}]})
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tiny_bench.py",
                    "--benchmark-json=run.json", "--benchmark-enable", "--rootdir", str(tmp_path)],
                   check=True, capture_output=True, cwd=tmp_path,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    args = ["--gates", str(tmp_path / "gates.json")]
    assert gate.main(["check", str(tmp_path / "run.json"), "--exact-baseline", str(tmp_path / "exact.json"),
                      *args]) == 0
    assert gate.main(["calibrate", "--label", "idle", str(tmp_path / "run.json"), *args, "--calibration",
                      str(tmp_path / "cal.json")]) == 0
    report = tmp_path / "report.md"
    assert gate.main(["report", f"run={tmp_path / 'run.json'}", "-o", str(report), *args, "--calibration",
                      str(tmp_path / "cal.json")]) == 0
    text = report.read_text()
    assert "| onnx slowed 200% | twin" in text and "fail (copy caught)" in text and "| test_interleaved |" in text
    assert (tmp_path / "report.png").stat().st_size > 5000


def test_passes_counts_runs_and_caught_slowdowns(tmp_path, gates_file, capsys):
    runs = [write(tmp_path, "a.json", healthy()), write(tmp_path, "b.json", healthy(by25=0.11))]
    assert gate.main(["passes", str(runs[0]), "--gates", str(gates_file)]) == 0
    assert gate.main(["passes", *map(str, runs), "--gates", str(gates_file)]) == 1
    out = capsys.readouterr().out
    assert "1 of 2 runs passed the timing gate; 3 of 4 deliberate slowdowns caught; bounds onnx/twin 0.12" in out


def _drop(manifest: dict, *keys: str) -> dict:
    node = manifest
    for k in keys[:-1]:
        node = node[k]
    del node[keys[-1]]
    return manifest


@pytest.mark.parametrize("missing, message", [
    (("files", "jax"), "has no entry files.jax (the jazbat_net_1d.jax_export reference)"),
    (("files", "onnx", "sha256"), "has no entry files.onnx.sha256"),
    (("files",), "has no 'files' entry"),
])
def test_a_reference_manifest_missing_an_entry_is_refused(tmp_path, missing, message):
    """Skipping a runtime the manifest forgot would pass the check with fewer references than the gates use."""
    import shutil

    from benchmarks import references

    folder = tmp_path / "reference"
    shutil.copytree(references.FOLDER, folder)
    manifest_path = folder / "references.json"
    manifest_path.write_text(json.dumps(_drop(json.loads(manifest_path.read_text()), *missing)))
    with pytest.raises(references.ReferenceError, match="^" + re.escape(f"{manifest_path} {message}")):
        references.load(folder)
    out = subprocess.run([sys.executable, "-m", "benchmarks.gate", "references", "--folder", str(folder)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and f"{manifest_path} {message}" in out.stderr, out.stderr
