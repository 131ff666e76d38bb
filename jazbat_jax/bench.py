"""Benchmark regression gates and reports over pytest-benchmark JSON files.

Two kinds of gate, because a shared CI machine is noisy and changes between runs:

* **exact**: deterministic numbers a benchmark records in ``extra_info["exact"]`` (parameters,
  MACs, XLA flops, activation bytes, artifact sizes, parity) must equal the committed baseline
  file. Any change fails until the baseline file is updated in the same commit
  (``jazbat bench-gate RUN.json --update-exact``). A benchmark with no baseline entry yet is
  recorded, not failed.
* **timing**: medians only (means swing by up to 88% on this machine kind; medians within a few
  percent), and only *relative to a reference measured in the same run*: a candidate's median
  divided by its reference's median must stay under a bound. Absolute baselines drift between
  machines; a same-run ratio does not.

``report`` turns one or more runs into a Markdown table and a bar plot.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
from pathlib import Path
from typing import Any, Iterable


@dataclasses.dataclass(frozen=True)
class TimingGate:
    """``median(candidate) <= max_ratio × median(reference)``, both from the same run.

    Names are pytest-benchmark ``name`` values (matched exactly first) or fnmatch patterns
    (``test_forward[[]jazbat_*]``); the reference must match exactly one benchmark. A gate whose
    benchmarks are missing from the run fails: a renamed benchmark must not silently drop its gate.
    """

    candidate: str
    reference: str
    max_ratio: float
    why: str = ""


@dataclasses.dataclass
class GateResult:
    exact_failures: list[str]
    timing_failures: list[str]
    notes: list[str]
    new_exact: dict[str, dict[str, Any]]  # the baseline with this run's exact values merged in

    @property
    def ok(self) -> bool:
        return not (self.exact_failures or self.timing_failures)


def load_run(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"cannot read a pytest-benchmark JSON file at {path}: {e}") from None
    if "benchmarks" not in data:
        raise SystemExit(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' key)")
    return data


def medians(run: dict[str, Any]) -> dict[str, float]:
    return {b["name"]: float(b["stats"]["median"]) for b in run["benchmarks"]}


def check_exact(run: dict[str, Any], baseline: dict[str, dict[str, Any]]) -> tuple[list[str], list[str], dict]:
    """Compare every benchmark's ``extra_info['exact']`` with the baseline. Returns (failures, notes, merged)."""
    failures, notes = [], []
    merged = {k: dict(v) for k, v in baseline.items()}
    for b in run["benchmarks"]:
        exact = b.get("extra_info", {}).get("exact")
        if not exact:
            continue
        name = b["name"]
        old = baseline.get(name)
        if old is None:
            notes.append(f"exact: {name}: no baseline yet, recorded {len(exact)} values")
            merged[name] = exact
            continue
        for key, value in exact.items():
            if key not in old:
                notes.append(f"exact: {name}: new value {key}={value!r} recorded")
                merged[name][key] = value
            elif old[key] != value:
                failures.append(f"exact: {name}: {key} changed from {old[key]!r} to {value!r}")
                merged[name][key] = value
    return failures, notes, merged


def _match(names: Iterable[str], pattern: str) -> list[str]:
    names = list(names)
    return [pattern] if pattern in names else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def check_timing(run: dict[str, Any], gates: Iterable[TimingGate]) -> tuple[list[str], list[str]]:
    failures, notes = [], []
    med = medians(run)
    for gate in gates:
        refs, cands = _match(med, gate.reference), _match(med, gate.candidate)
        if len(refs) != 1 or not cands:
            failures.append(f"timing: {gate.candidate} vs {gate.reference}: not both in this run "
                            f"(found {len(cands)} candidate(s), {len(refs)} reference(s))  FAILED")
            continue
        ref = refs[0]
        for cand in cands:
            ratio = med[cand] / med[ref]
            line = (f"timing: {cand} median {med[cand] * 1e3:.3f} ms = {ratio:.3f} × {ref} "
                    f"({med[ref] * 1e3:.3f} ms); bound {gate.max_ratio:.3f}")
            (failures if ratio > gate.max_ratio else notes).append(line + ("" if ratio <= gate.max_ratio else "  FAILED"))
    return failures, notes


def load_gates(path: str | Path) -> list[TimingGate]:
    data = json.loads(Path(path).read_text())
    return [TimingGate(**g) for g in data["timing"]]


def gate(run: dict[str, Any], exact_baseline: dict[str, Any], timing_gates: Iterable[TimingGate]) -> GateResult:
    exact_fail, exact_notes, merged = check_exact(run, exact_baseline)
    timing_fail, timing_notes = check_timing(run, timing_gates)
    return GateResult(exact_fail, timing_fail, exact_notes + timing_notes, merged)


def report(runs: dict[str, dict[str, Any]], plot_path: Path | None = None) -> str:
    """Markdown table of medians (ms) per benchmark, one column per run, plus an optional bar plot.

    With two runs, a last column gives the ratio second / first (before → after, or twin → ours).
    """
    labels = list(runs)
    med = {label: medians(run) for label, run in runs.items()}
    names = sorted({n for m in med.values() for n in m})
    header = ["benchmark", *[f"{l} median (ms)" for l in labels]]
    if len(labels) == 2:
        header.append(f"{labels[1]} / {labels[0]}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for n in names:
        cells = [n] + [f"{med[l][n] * 1e3:.3f}" if n in med[l] else "–" for l in labels]
        if len(labels) == 2:
            a, b = med[labels[0]].get(n), med[labels[1]].get(n)
            cells.append(f"{b / a:.2f}×" if a and b else "–")
        lines.append("| " + " | ".join(cells) + " |")
    machine = next(iter(runs.values())).get("machine_info", {})
    lines.append("")
    lines.append(f"Machine: {machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
                 f"{machine.get('cpu', {}).get('count', '?')} cores, Python {machine.get('python_version', '?')}.")
    if plot_path is not None:
        _plot(med, names, labels, plot_path)
        lines.append(f"\n![benchmark medians]({plot_path.name})")
    return "\n".join(lines)


def _plot(med: dict[str, dict[str, float]], names: list[str], labels: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 0.35 * len(names) + 1.5))
    y = np.arange(len(names))
    height = 0.8 / len(labels)
    for i, label in enumerate(labels):
        values = [med[label].get(n, np.nan) * 1e3 for n in names]
        ax.barh(y + i * height, values, height, label=label)
    ax.set_yticks(y + height * (len(labels) - 1) / 2, names, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("median time per call (ms, log scale)")
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def register(subparsers) -> None:
    import argparse

    p = subparsers.add_parser(
        "bench-report",
        help="turn pytest-benchmark JSON files into a Markdown table and a plot",
        description="Compare pytest-benchmark runs side by side (medians). Give LABEL=PATH pairs, "
        "e.g. before=.benchmarks/a.json after=.benchmarks/b.json.",
    )
    p.add_argument("runs", nargs="+", metavar="LABEL=PATH")
    p.add_argument("-o", "--output", type=Path, help="write the Markdown here (and the plot next to it)")
    p.set_defaults(func=_run_report)

    g = subparsers.add_parser(
        "bench-gate",
        help="fail on a benchmark regression: exact numbers vs the committed baseline, timing vs same-run references",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g.add_argument("run", type=Path, help="pytest-benchmark JSON (--benchmark-json=PATH)")
    g.add_argument("--exact-baseline", type=Path, default=Path("benchmarks/baseline_exact.json"))
    g.add_argument("--gates", type=Path, default=Path("benchmarks/timing_gates.json"))
    g.add_argument("--update-exact", action="store_true",
                   help="accept changed exact values: rewrite the baseline (commit it with the change that caused it)")
    g.set_defaults(func=_run_gate)


def _run_report(args) -> int:
    runs = {}
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = Path(item).stem, item
        runs[label] = load_run(path)
    plot = args.output.with_suffix(".png") if args.output else None
    text = report(runs, plot)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


def _run_gate(args) -> int:
    run = load_run(args.run)
    baseline = json.loads(args.exact_baseline.read_text()) if args.exact_baseline.exists() else {}
    gates = load_gates(args.gates) if args.gates.exists() else []
    result = gate(run, baseline, gates)
    for line in result.exact_failures + result.timing_failures + result.notes:
        print(line)
    # New entries are always recorded (the first run saves the baseline); changed ones only on request.
    if result.new_exact != baseline and (args.update_exact or not result.exact_failures):
        args.exact_baseline.parent.mkdir(parents=True, exist_ok=True)
        args.exact_baseline.write_text(json.dumps(result.new_exact, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.exact_baseline}")
    failed = result.timing_failures + ([] if args.update_exact else result.exact_failures)
    if failed:
        print(f"benchmark gate FAILED ({len(failed)} failure(s))")
        if result.exact_failures and not args.update_exact:
            print("if the change is intended, rerun with --update-exact and commit the baseline with it")
        return 1
    print("benchmark gate passed")
    return 0
