"""Benchmark regression gates and reports over pytest-benchmark JSON files.

    python -m benchmarks.gate check .benchmarks/ci.json            # the gates CI applies
    python -m benchmarks.gate report before=a.json after=b.json -o report.md
    python -m benchmarks.gate calibrate --label idle RUN.json ...   # add passes to the calibration data
    python -m benchmarks.gate passes RUN.json ...                    # one line per run of repeated passes

Two kinds of gate, because a shared CI machine is noisy:

* **exact**: deterministic numbers a benchmark records in ``extra_info["exact"]`` (parameters,
  MACs, XLA flops, activation bytes, artifact sizes) must equal the committed baseline file. Any
  change fails until the baseline file is updated in the same commit (``check RUN.json
  --update-exact``). A benchmark with no baseline entry yet is recorded, not failed.
* **timing**: a candidate's time relative to a reference measured *interleaved* with it (many short
  alternating rounds, ``benchmarks/interleave.py``), so both see the same machine state. Each round
  gives one ratio; the gate takes the median of the per-round ratios with a distribution-free
  confidence interval (binomial order statistics) and fails only when the whole interval lies above
  the bound: the ratio is worse than the bound *with confidence*. While the interval still contains
  the bound the benchmark measures another chunk of rounds, up to a cap; the confidence of each look
  is corrected for the number of looks (Bonferroni), so sampling noise alone fails a candidate whose
  true median ratio is within the bound with probability at most ``alpha``. Still undecided at the
  cap means "not shown to be worse", a pass, printed as such. The bounds come from calibration
  passes idle and under load (``benchmarks/timing_calibration.json``). Every run also carries
  candidates slowed on purpose inside the benchmark (25% and 50% more calls); the gate fails when
  one of them is *not* caught, because a bound that no longer catches them is too loose.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy.stats import binom

GATES = Path(__file__).with_name("timing_gates.json")
CALIBRATION = Path(__file__).with_name("timing_calibration.json")
EXACT_BASELINE = Path(__file__).with_name("baseline_exact.json")


class GateError(Exception):
    """A problem with the inputs (file missing or malformed): reported on one line."""


# ---------------------------------------------------------------- statistics of per-round ratios


@dataclasses.dataclass(frozen=True)
class RatioEstimate:
    median: float
    low: float  # one-sided lower confidence limit of the median (-inf: too few rounds)
    high: float  # one-sided upper confidence limit (+inf: too few rounds)
    rounds: int


def median_interval(values: list[float], alpha: float) -> RatioEstimate:
    """Median with one-sided (1 - alpha) limits from binomial order statistics.

    With the values sorted, ``x[k-1]`` lies above the true median with probability
    ``P(Binomial(n, 1/2) <= k-1)``; the largest ``k`` with that probability at most ``alpha`` gives the
    lower limit, and ``x[n-k]`` the upper one by symmetry. No assumption about the distribution.
    """
    if not values:
        raise GateError("no per-round ratios to decide on")
    x = sorted(values)
    n = len(x)
    k = int(binom.ppf(alpha, n, 0.5))  # smallest k with cdf(k) >= alpha
    if binom.cdf(k, n, 0.5) > alpha:
        k -= 1  # now cdf(k) <= alpha: x[k] (0-based) is the lower limit
    low, high = (x[k], x[n - 1 - k]) if k >= 0 else (float("-inf"), float("inf"))
    return RatioEstimate(statistics.median(x), low, high, n)


def decide(values: list[float], bound: float, alpha: float) -> tuple[str, RatioEstimate]:
    """'fail' when the median ratio is above ``bound`` with confidence, 'pass' when below it, else 'open'."""
    est = median_interval(values, alpha)
    if est.low > bound:
        return "fail", est
    if est.high <= bound:
        return "pass", est
    return "open", est


# ---------------------------------------------------------------- gate files


@dataclasses.dataclass(frozen=True)
class TimingGate:
    """The median per-round ratio ``candidate / reference`` must not be above ``max_ratio`` with confidence."""

    candidate: str
    reference: str
    max_ratio: float
    why: str = ""


@dataclasses.dataclass(frozen=True)
class GateSettings:
    alpha: float  # false-alarm rate against sampling noise, over all looks
    chunk_rounds: int  # rounds measured per look
    max_looks: int  # cap of the sequential measurement
    slowdowns: tuple[float, ...]  # the deliberate slowdowns every run measures
    must_catch: tuple[float, ...] | None = None  # those a run fails without catching (None: all of them)

    @property
    def alpha_per_look(self) -> float:
        return self.alpha / self.max_looks


def load_gates(path: str | Path = GATES) -> tuple[list[TimingGate], GateSettings]:
    data = _read_json(path, "timing gates")
    try:
        gates = [TimingGate(**{k: v for k, v in g.items() if k in ("candidate", "reference", "max_ratio", "why")})
                 for g in data["timing"]]
        s = data["settings"]
        slowdowns = tuple(float(x) for x in s["slowdowns"])
        settings = GateSettings(float(s["alpha"]), int(s["chunk_rounds"]), int(s["max_looks"]), slowdowns,
                                tuple(float(x) for x in s.get("must_catch", slowdowns)))
    except (KeyError, TypeError, ValueError) as e:
        raise GateError(f"{path}: malformed timing gates ({e!r}); see benchmarks/timing_gates.json") from None
    return gates, settings


def _read_json(path: str | Path, what: str) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise GateError(f"cannot read the {what} file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise GateError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); fix or regenerate it") from None


def load_run(path: str | Path) -> dict[str, Any]:
    data = _read_json(path, "pytest-benchmark JSON")
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise GateError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' key); "
                        "write one with --benchmark-json=PATH")
    return data


def medians(run: dict[str, Any]) -> dict[str, float]:
    return {b["name"]: float(b["stats"]["median"]) for b in run["benchmarks"]}


def interleaved(run: dict[str, Any]) -> dict[str, Any]:
    """The interleaved measurement of a run: ``{"reference", "ratios": {name: [...]}, "slowed": {...}, ...}``
    merged over all benchmarks that recorded one (``extra_info["interleaved"]``)."""
    merged: dict[str, Any] = {"ratios": {}, "slowed": {}}
    for b in run["benchmarks"]:
        info = b.get("extra_info", {}).get("interleaved")
        if info:
            for key, value in info.items():
                if key in ("ratios", "slowed"):
                    merged[key].update(value)
                else:
                    merged[key] = value
    return merged


# ---------------------------------------------------------------- the gates


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


@dataclasses.dataclass(frozen=True)
class TimingResult:
    name: str  # the candidate, or "onnx slowed 25%" for a deliberate slowdown
    gate: TimingGate
    decision: str  # pass / fail / open
    estimate: RatioEstimate
    slowdown: float = 0.0  # > 0: a deliberately slowed candidate, which must fail

    @property
    def ok(self) -> bool:
        return self.decision == "fail" if self.slowdown else self.decision != "fail"

    def line(self, confidence: float) -> str:
        e = self.estimate
        verdict = {"pass": "within bound", "fail": "ABOVE bound", "open": "undecided at the cap: not shown worse"}
        text = (f"timing: {self.name} / {self.gate.reference}: median ratio {e.median:.4f}, "
                f"{confidence:.2%} interval [{e.low:.4f}, {e.high:.4f}] over {e.rounds} rounds; "
                f"bound {self.gate.max_ratio:.4f}: {verdict[self.decision]}")
        if self.slowdown:
            text += "; deliberate slowdown " + ("caught" if self.ok else "NOT caught  FAILED")
        elif not self.ok:
            text += "  FAILED"
        return text


def check_timing(run: dict[str, Any], gates: list[TimingGate], settings: GateSettings
                 ) -> tuple[list[str], list[str], list[TimingResult]]:
    failures, notes, results = [], [], []
    data = interleaved(run)
    ratios, slowed = data["ratios"], data["slowed"]
    confidence = 1 - 2 * settings.alpha_per_look  # two one-sided limits
    for gate in gates:
        if data.get("reference") != gate.reference or gate.candidate not in ratios:
            failures.append(f"timing: {gate.candidate} vs {gate.reference}: no interleaved measurement of this pair "
                            f"in the run (has {sorted(ratios)} vs {data.get('reference')!r})  FAILED")
            continue
        entries = [(gate.candidate, 0.0)] + [(name, float(s["by"])) for name, s in slowed.items()
                                             if s["of"] == gate.candidate]
        for name, by in entries:
            decision, est = decide(ratios[name], gate.max_ratio, settings.alpha_per_look)
            result = TimingResult(name, gate, decision, est, by)
            results.append(result)
            required = settings.slowdowns if settings.must_catch is None else settings.must_catch
            if result.ok or not by or by in required:
                (notes if result.ok else failures).append(result.line(confidence))
            else:  # a slowdown measured for the record: its catch depends on how far the machine drifted
                notes.append(result.line(confidence).replace("NOT caught  FAILED", "not caught (reported, not gated)"))
        missing = set(settings.slowdowns) - {by for _, by in entries[1:]}
        if missing:
            failures.append(f"timing: {gate.candidate}: the run lacks its deliberate slowdown(s) "
                            f"{sorted(missing)}, which prove the gate can fail  FAILED")
    looks = data.get("looks")
    if looks is not None:
        notes.append(f"timing: {looks} look(s) of {settings.chunk_rounds} rounds (cap {settings.max_looks}); "
                     f"false-alarm rate from sampling noise at most {settings.alpha:.0%}")
    return failures, notes, results


@dataclasses.dataclass
class GateResult:
    exact_failures: list[str]
    timing_failures: list[str]
    notes: list[str]
    new_exact: dict[str, dict[str, Any]]  # the baseline with this run's exact values merged in
    timing: list[TimingResult]

    @property
    def ok(self) -> bool:
        return not (self.exact_failures or self.timing_failures)


def gate(run: dict[str, Any], exact_baseline: dict[str, Any], gates: list[TimingGate],
         settings: GateSettings) -> GateResult:
    exact_fail, exact_notes, merged = check_exact(run, exact_baseline)
    timing_fail, timing_notes, timing = check_timing(run, gates, settings)
    return GateResult(exact_fail, timing_fail, exact_notes + timing_notes, merged, timing)


# ---------------------------------------------------------------- calibration


def calibration_pass(run: dict[str, Any], label: str, settings: GateSettings) -> dict[str, Any]:
    """One calibration record: for each candidate and each slowed copy, the median ratio, its interval and
    the per-round ratios."""
    data = interleaved(run)
    if not data["ratios"]:
        raise GateError("the run has no interleaved measurement; run `pytest benchmarks -m ci --benchmark-enable`")
    record = {"label": label, "datetime": run.get("datetime"), "load_average": data.get("load_average"),
              "reference": data.get("reference"), "looks": data.get("looks"), "candidates": {}, "slowed": {}}
    for name, values in data["ratios"].items():
        est = median_interval(values, settings.alpha_per_look)
        entry = {"median": round(est.median, 5), "low": round(est.low, 5), "high": round(est.high, 5),
                 "ratios": [round(v, 5) for v in values]}
        if name in data["slowed"]:
            record["slowed"][name] = {**data["slowed"][name], **entry}
        else:
            record["candidates"][name] = entry
    return record


def load_calibration(path: str | Path = CALIBRATION) -> list[dict[str, Any]]:
    return _read_json(path, "timing calibration")["passes"] if Path(path).exists() else []


def derive_bound(passes: list[dict[str, Any]], candidate: str, slowdown: float) -> tuple[float, str]:
    """The bound halfway (geometrically) between the highest upper limit of the unchanged candidate and the
    lowest lower limit of its copy slowed by ``slowdown``, over all calibration passes: the same relative
    margin against a false alarm and against a missed slowdown. Returns (bound, why)."""
    highs = [p["candidates"][candidate]["high"] for p in passes if candidate in p["candidates"]]
    lows = [s["low"] for p in passes for s in p.get("slowed", {}).values()
            if s["of"] == candidate and s["by"] == slowdown]
    if not highs or not lows:
        raise GateError(f"no calibration passes with {candidate} and its {slowdown:.0%} slowdown; "
                        "add some with `python -m benchmarks.gate calibrate`")
    top, bottom = max(highs), min(lows)
    if bottom <= top:
        raise GateError(f"{candidate}: a {slowdown:.0%} slowdown (lowest limit {bottom:.4f}) overlaps the unchanged "
                        f"ratio (highest limit {top:.4f}) in the calibration: no bound separates them")
    bound = round((top * bottom) ** 0.5, 4)
    labels = sorted({p["label"] for p in passes})
    medians = [p["candidates"][candidate]["median"] for p in passes if candidate in p["candidates"]]
    why = (f"{len(highs)} calibration passes ({', '.join(labels)}): unchanged median ratio {min(medians):.4f}-"
           f"{max(medians):.4f}, highest upper limit {top:.4f} ({bound / top - 1:.1%} under the bound); "
           f"slowed {slowdown:.0%}: lowest lower limit {bottom:.4f} ({bottom / bound - 1:.1%} over the bound)")
    return bound, why


# ---------------------------------------------------------------- report


def report(runs: dict[str, dict[str, Any]], plot_path: Path | None = None, gates_path: Path = GATES,
           calibration_path: Path = CALIBRATION) -> str:
    """Markdown: the gated ratios of the last run with interval and bound, then medians per benchmark
    (one column per run; with two runs, a ratio column), and an optional plot of the calibration."""
    from tabulate import tabulate

    labels = list(runs)
    sections = []
    last = runs[labels[-1]]
    gates, settings = load_gates(gates_path) if Path(gates_path).exists() else ([], None)
    if gates and interleaved(last)["ratios"]:
        _, _, results = check_timing(last, gates, settings)
        rows = [[r.name, r.gate.reference, f"{r.estimate.median:.4f}", f"[{r.estimate.low:.4f}, {r.estimate.high:.4f}]",
                 r.estimate.rounds, f"{r.gate.max_ratio:.4f}", r.decision + (" (must fail)" if r.slowdown else "")]
                for r in results]
        sections.append(f"Gated ratios of `{labels[-1]}` (interleaved rounds; {1 - 2 * settings.alpha_per_look:.2%} "
                        "interval of the median per-round ratio):\n\n"
                        + tabulate(rows, ["candidate", "reference", "median ratio", "interval", "rounds", "bound",
                                          "decision"], tablefmt="github"))
    med = {label: medians(run) for label, run in runs.items()}
    names = sorted({n for m in med.values() for n in m})
    header = ["benchmark", *[f"{label} median (ms)" for label in labels]]
    if len(labels) == 2:
        header.append(f"{labels[1]} / {labels[0]}")
    rows = []
    for n in names:
        cells = [n] + [f"{med[label][n] * 1e3:.3f}" if n in med[label] else "–" for label in labels]
        if len(labels) == 2:
            a, b = med[labels[0]].get(n), med[labels[1]].get(n)
            cells.append(f"{b / a:.2f}×" if a and b else "–")
        rows.append(cells)
    sections.append(tabulate(rows, header, tablefmt="github"))
    targets = target_rows(last)
    if targets:
        sections.append(f"Targets recorded by the benchmarks of `{labels[-1]}` (reported, not gated):\n\n"
                        + tabulate(targets, ["benchmark", "target", "measured", "met"], tablefmt="github"))
    machine = last.get("machine_info", {})
    sections.append(f"Machine: {machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
                    f"{machine.get('cpu', {}).get('count', '?')} cores, Python {machine.get('python_version', '?')}.")
    if plot_path is not None and gates:
        passes = load_calibration(calibration_path)
        plot_calibration(passes, gates, plot_path, last if interleaved(last)["ratios"] else None, settings)
        sections.append(f"![calibration of the timing gates]({plot_path.name})")
    return "\n\n".join(sections)


def target_rows(run: dict[str, Any]) -> list[list[str]]:
    """Benchmarks that record a target and whether it is met (``extra_info['meets_target']``)."""
    rows = []
    for b in run["benchmarks"]:
        info = b.get("extra_info", {})
        if "meets_target" not in info:
            continue
        if "target_ms" in info:
            target, measured = f"median ≤ {info['target_ms']} ms", f"{b['stats']['median'] * 1e3:.3f} ms"
        else:
            spread = info.get("ratio_vs_keras_per_round") or [info.get("ratio_vs_keras")]
            target = f"≥ {info['target_ratio_vs_keras']}× Keras fit"
            measured = f"{info['ratio_vs_keras']}× (rounds {min(spread)}–{max(spread)}×)"
        rows.append([b["name"], target, measured, "yes" if info["meets_target"] else "no"])
    return rows


def plot_calibration(passes: list[dict[str, Any]], gates: list[TimingGate], path: Path,
                     run: dict[str, Any] | None = None, settings: GateSettings | None = None) -> None:
    """One panel per gated candidate: per-round ratios of every calibration pass (grey), each pass's
    median (dot, by label), the bound (red line), and this run's candidate and slowed copies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(gates), 1, figsize=(9, 2.4 * len(gates) + 0.6), squeeze=False)
    colors = {"idle": "tab:blue", "load": "tab:orange"}
    data = interleaved(run) if run else None
    for ax, g in zip(axes[:, 0], gates):
        cal = [(p["label"], p["candidates"][g.candidate]) for p in passes if g.candidate in p["candidates"]]
        for y, (label, c) in enumerate(cal):
            ax.plot(c["ratios"], [y] * len(c["ratios"]), "|", color="0.75", markersize=5)
            ax.plot([c["median"]], [y], "o", color=colors.get(label, "tab:gray"), markersize=4,
                    label=f"calibration pass median ({label})")
        top = len(cal)
        if data and g.candidate in data["ratios"]:
            names = [g.candidate] + [n for n, s in data["slowed"].items() if s["of"] == g.candidate]
            for i, name in enumerate(names):
                est = median_interval(data["ratios"][name], settings.alpha_per_look)
                y = top + 1 + i
                ax.plot([est.low, est.high], [y, y], "-", color="black", linewidth=2)
                ax.plot([est.median], [y], "D", color="black", markersize=4)
                ax.annotate("this run" if i == 0 else name.removeprefix(g.candidate).strip(), (est.low, y),
                            xytext=(-4, -3), textcoords="offset points", fontsize=7, ha="right")
        ax.axvline(g.max_ratio, color="tab:red", linewidth=1.5, label=f"bound {g.max_ratio:.4f}")
        ax.set_title(f"{g.candidate} / {g.reference}", fontsize=9)
        ax.set_yticks([])
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="lower right")
    axes[-1, 0].set_xlabel("per-round time ratio, candidate / reference (grey: rounds; dots: pass medians; "
                           "black: a run's interval)", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- command line


def _run_check(args) -> int:
    run = load_run(args.run)
    baseline = _read_json(args.exact_baseline, "exact baseline") if args.exact_baseline.exists() else {}
    gates, settings = load_gates(args.gates)
    result = gate(run, baseline, gates, settings)
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


def _run_report(args) -> int:
    runs = {}
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = Path(item).stem, item
        runs[label] = load_run(path)
    plot = args.output.with_suffix(".png") if args.output else None
    text = report(runs, plot, args.gates, args.calibration)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0


def _run_calibrate(args) -> int:
    _, settings = load_gates(args.gates)
    if args.runs and not args.label:
        raise GateError("say how the runs were measured: --label idle or --label load")
    existing = _read_json(args.calibration, "timing calibration") if args.calibration.exists() else {"passes": []}
    for path in args.runs:
        existing["passes"].append(calibration_pass(load_run(path), args.label, settings))
    existing["about"] = ("Per-round ratios of the interleaved CI measurement (`pytest benchmarks -m ci "
                         "--benchmark-enable`), one record per pass, labelled idle (nothing of ours running next "
                         "to it, on a shared machine) or load (the unit tests running in parallel); added by "
                         "`python -m benchmarks.gate calibrate`. `calibrate --write-bounds` derives the bounds in "
                         "timing_gates.json from these passes (docs/benchmarks.md).")
    existing["updated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    args.calibration.write_text(json.dumps(existing, indent=1) + "\n")
    print(f"{args.calibration}: {len(existing['passes'])} passes")
    for p in existing["passes"][-len(args.runs):] if args.runs else []:
        print(f"  {p['label']:5s} load {p['load_average']}: " + ", ".join(
            f"{n} {c['median']:.4f} [{c['low']:.4f}, {c['high']:.4f}]" for n, c in p["candidates"].items()))
    if args.write_bounds:
        data = _read_json(args.gates, "timing gates")
        # the bound separates the unchanged ratio from the smallest slowdown a run must catch
        smallest = min(settings.slowdowns if settings.must_catch is None else settings.must_catch)
        for g in data["timing"]:
            g["max_ratio"], g["why"] = derive_bound(existing["passes"], g["candidate"], smallest)
            print(f"  bound {g['candidate']}: {g['max_ratio']:.4f}: {g['why']}")
        args.gates.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.gates}")
    return 0


def _run_passes(args) -> int:
    """One row per run: load, looks, each gated ratio with its interval, whether the gate passed and
    whether every deliberate slowdown was caught (timing only: the exact gate is the same in every run)."""
    from tabulate import tabulate

    gates, settings = load_gates(args.gates)
    rows, passed, caught, slowed = [], 0, 0, 0
    for path in args.runs:
        run = load_run(path)
        failures, _, results = check_timing(run, gates, settings)
        load = interleaved(run).get("load_average") or [float("nan")] * 6
        cells = [Path(path).name, f"{load[0]:.2f}→{load[3]:.2f}", interleaved(run).get("looks")]
        cells += [f"{r.estimate.median:.4f} [{r.estimate.low:.4f}, {r.estimate.high:.4f}]"
                  for r in results if not r.slowdown]
        cells += [sum(r.ok for r in results if r.slowdown), "pass" if not failures else "FAIL"]
        passed += not failures
        caught += sum(r.ok for r in results if r.slowdown)
        slowed += sum(1 for r in results if r.slowdown)
        rows.append(cells)
    header = ["run", "load 1 min (before→after)", "looks", *[f"{g.candidate} / {g.reference}" for g in gates],
              "slowdowns caught", "timing gate"]
    print(tabulate(rows, header, tablefmt="github"))
    print(f"\n{passed} of {len(args.runs)} runs passed the timing gate; {caught} of {slowed} deliberate slowdowns "
          f"caught; bounds {', '.join(f'{g.candidate} {g.max_ratio}' for g in gates)}")
    return 0 if passed == len(args.runs) and caught == slowed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="fail on a regression: exact numbers vs the baseline, timing vs interleaved "
                       "references", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("run", type=Path, help="pytest-benchmark JSON (--benchmark-json=PATH)")
    c.add_argument("--exact-baseline", type=Path, default=EXACT_BASELINE)
    c.add_argument("--gates", type=Path, default=GATES)
    c.add_argument("--update-exact", action="store_true",
                   help="accept changed exact values: rewrite the baseline (commit it with the change that caused it)")
    c.set_defaults(func=_run_check)
    r = sub.add_parser("report", help="Markdown: gated ratios with interval and bound, medians side by side, "
                       "and a plot of the calibration", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("runs", nargs="+", metavar="LABEL=PATH", help="pytest-benchmark JSON files; the last one's "
                   "gated ratios are shown")
    r.add_argument("-o", "--output", type=Path, help="write the Markdown here and the plot next to it (.png)")
    r.add_argument("--gates", type=Path, default=GATES)
    r.add_argument("--calibration", type=Path, default=CALIBRATION)
    r.set_defaults(func=_run_report)
    k = sub.add_parser("calibrate", help="append CI benchmark runs to the calibration data",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    k.add_argument("runs", nargs="*", type=Path, metavar="RUN.json")
    k.add_argument("--label", choices=["idle", "load"],
                   help="idle: nothing else heavy running; load: the unit tests running in parallel")
    k.add_argument("--gates", type=Path, default=GATES)
    k.add_argument("--calibration", type=Path, default=CALIBRATION)
    k.add_argument("--write-bounds", action="store_true",
                   help="derive every bound from all calibration passes and write it into the gates file")
    k.set_defaults(func=_run_calibrate)
    t = sub.add_parser("passes", help="one line per run: gated ratios, intervals, decisions (for repeated passes)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("runs", nargs="+", type=Path, metavar="RUN.json")
    t.add_argument("--gates", type=Path, default=GATES)
    t.set_defaults(func=_run_passes)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GateError as e:
        print(f"benchmarks.gate {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
