"""Load averages recorded next to timings, and when a machine counts as busy."""
import json
import shutil
from pathlib import Path

from jazbat_jax.experiments.report import build_report
from jazbat_jax.machine import busy, load_average

QUICK_RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "quick"


def test_load_average_is_three_numbers():
    load = load_average()
    assert len(load) == 3 and all(isinstance(v, float) and v >= 0 for v in load)


def test_busy_means_others_at_the_start_or_more_than_the_machine_at_the_end():
    assert not busy([0.3, 0.2, 0.1], [1.9, 0.9, 0.4], cpu_count=2)  # the timed work alone fills the 2 cores
    assert busy([1.5, 1.0, 0.5], [1.9, 0.9, 0.4], cpu_count=2)  # someone else was running before it started
    assert busy([0.3, 0.2, 0.1], [2.6, 1.4, 0.6], cpu_count=2)  # someone else joined while it ran
    assert not busy([1.5, 1.0, 0.5], None, cpu_count=4)
    assert not busy(None, None, cpu_count=2)


def test_report_gives_each_invocations_load_and_warns_when_busy(tmp_path):
    results = tmp_path / "quick"
    shutil.copytree(QUICK_RESULTS, results)
    first = json.loads((results / "invocations.jsonl").read_text().splitlines()[0])
    # an invocation written before load averages were recorded
    old = {k: v for k, v in first.items() if k not in ("load_average_start", "load_average_end")}
    idle = {**old, "started": "2026-11-28T10:00:00Z", "load_average_start": [0.1, 0.2, 0.3],
            "load_average_end": [1.0, 0.6, 0.4]}
    shared = {**old, "started": "2026-11-28T11:00:00Z", "load_average_start": [3.5, 3.1, 2.0],
              "load_average_end": [4.0, 3.6, 2.5]}
    (results / "invocations.jsonl").write_text("\n".join(json.dumps(i) for i in (old, idle, shared)) + "\n")
    text = build_report(results).read_text()
    assert "load average not recorded" in text
    assert "load average (1/5/15 min) 0.10/0.20/0.30 at the start, 1.00/0.60/0.40 at the end — `" in text
    assert "load average (1/5/15 min) 3.50/3.10/2.00 at the start, 4.00/3.60/2.50 at the end ⚠ busy — `" in text
    assert "**Warning: the machine was busy" in text
