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
  cap means "not shown to be worse", a pass, printed as such.

  Each runtime has a gate against its *regression reference* (the same runtime running the accepted
  code's artifact, ``benchmarks/references.py``): the ratio sits at 1 on unchanged code, whatever the
  machine or the installed wheels do, and the bound is tight enough to catch a 25% slowdown. ONNX,
  TFLite and pure JAX also have one against the Keras twin's TFLite (the paper's toolchain), whose ratio
  moves with the machine's kind and state by more than a slowdown to catch (JAX: 0.089-0.129 over the
  passes), so that gate is a floor: its bound sits ``FLOOR_MARGIN`` above the highest unchanged ratio
  calibrated and states the speed-up kept over the twin. The bounds come from calibration passes idle
  and under load (``benchmarks/timing_calibration.json``). Every run also carries copies of each candidate slowed
  on purpose inside the benchmark (25% and 50% more calls); the gate fails when a copy passes every
  gate of its candidate although one of them is derived to catch it (``catches``), because a bound
  that lets it through is too loose.
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
REFERENCE_FOLDER = Path(__file__).with_name("reference")  # references.FOLDER, without importing it to parse options


# A floor gate's bound above the highest unchanged ratio of its calibration passes: beyond the pass-to-pass
# drift seen there, so that a machine state a little worse than any calibrated one does not cry wolf.
FLOOR_MARGIN = 0.15


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
    """The median per-round ratio ``candidate / reference`` must not be above ``max_ratio`` with confidence;
    the bound is derived so that a copy of the candidate slowed by ``catches`` fails it, or, with ``catches``
    None, it is a floor: ``FLOOR_MARGIN`` above the highest unchanged ratio of the calibration (a speed-up
    kept over a reference whose ratio drifts too much with the machine's state to catch a slowdown)."""

    candidate: str
    reference: str
    max_ratio: float
    catches: float | None
    why: str = ""

    @property
    def key(self) -> str:
        return f"{self.candidate}/{self.reference}"


@dataclasses.dataclass(frozen=True)
class GateSettings:
    alpha: float  # false-alarm rate against sampling noise, over all looks
    chunk_rounds: int  # rounds measured per look
    max_looks: int  # cap of the sequential measurement
    slowdowns: tuple[float, ...]  # the deliberate slowdowns every run measures

    @property
    def alpha_per_look(self) -> float:
        return self.alpha / self.max_looks


def load_gates(path: str | Path = GATES) -> tuple[list[TimingGate], GateSettings]:
    data = _read_json(path, "timing gates")
    try:
        gates = [TimingGate(g["candidate"], g["reference"], float(g["max_ratio"]),
                            None if g["catches"] is None else float(g["catches"]), g.get("why", ""))
                 for g in data["timing"]]
        s = data["settings"]
        settings = GateSettings(float(s["alpha"]), int(s["chunk_rounds"]), int(s["max_looks"]),
                                tuple(float(x) for x in s["slowdowns"]))
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
    """The interleaved measurement of a run: ``{"times": {name: [seconds per call, one per round]},
    "slowed": {name: {"of", "by"}}, "looks", ...}`` merged over all benchmarks that recorded one
    (``extra_info["interleaved"]``)."""
    merged: dict[str, Any] = {"times": {}, "slowed": {}}
    for b in run["benchmarks"]:
        info = b.get("extra_info", {}).get("interleaved")
        if info:
            for key, value in info.items():
                if key in ("times", "slowed"):
                    merged[key].update(value)
                else:
                    merged[key] = value
    return merged


def round_ratios(times: dict[str, list[float]], candidate: str, reference: str) -> list[float]:
    """Per-round ratios: the candidate's time per call over the reference's in the same round."""
    return [c / r for c, r in zip(times[candidate], times[reference])]


def copies(data: dict[str, Any], candidate: str) -> list[tuple[str, float]]:
    """The deliberately slowed copies of ``candidate`` in a measurement: (name, slowdown)."""
    return [(name, float(s["by"])) for name, s in data["slowed"].items() if s["of"] == candidate]


def open_names(times: dict[str, list[float]], slowed: dict[str, dict], gates: list[TimingGate],
               alpha: float) -> list[str]:
    """The measured names whose verdict is still open: a candidate while any of its gates is undecided; a
    slowed copy while none of its candidate's gates has failed it and one of them is undecided."""
    out = []
    for name in times:
        of = slowed.get(name, {}).get("of", name)
        decisions = [decide(round_ratios(times, name, g.reference), g.max_ratio, alpha)[0]
                     for g in gates if g.candidate == of]
        if not decisions:
            continue
        if name in slowed:
            if "fail" not in decisions and "open" in decisions:
                out.append(name)
        elif "open" in decisions:
            out.append(name)
    return out


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
    slowdown: float = 0.0  # > 0: a deliberately slowed copy of gate.candidate

    def line(self, confidence: float) -> str:
        e = self.estimate
        verdict = {"pass": "within bound", "fail": "ABOVE bound", "open": "undecided: not shown worse"}
        text = (f"timing: {self.name} / {self.gate.reference}: median ratio {e.median:.4f}, "
                f"{confidence:.2%} interval [{e.low:.4f}, {e.high:.4f}] over {e.rounds} rounds; "
                f"bound {self.gate.max_ratio:.4f}: {verdict[self.decision]}")
        return text + ("  FAILED" if self.decision == "fail" and not self.slowdown else "")


@dataclasses.dataclass(frozen=True)
class Catch:
    """Whether a deliberately slowed copy failed at least one gate of its candidate, as it must."""

    name: str
    candidate: str
    slowdown: float
    caught_by: tuple[str, ...]  # the gates (candidate/reference) that failed it
    required: bool  # a gate of the candidate is derived to catch this slowdown

    def line(self) -> str:
        if self.caught_by:
            return f"timing: {self.name}: deliberate slowdown caught by {', '.join(self.caught_by)}"
        if self.required:
            return f"timing: {self.name}: deliberate slowdown NOT caught by any gate of {self.candidate}  FAILED"
        return f"timing: {self.name}: deliberate slowdown not caught (no gate of {self.candidate} is derived to)"


def check_timing(run: dict[str, Any], gates: list[TimingGate], settings: GateSettings
                 ) -> tuple[list[str], list[str], list[TimingResult], list[Catch]]:
    """Every gate on its candidate and on the candidate's slowed copies. A candidate fails when one of its
    gates fails it; the run also fails when a copy slowed by at least the smallest ``catches`` of its
    candidate's gates passes all of them (a bound that lets it through is too loose)."""
    failures, notes, results, catches = [], [], [], []
    data = interleaved(run)
    times = data["times"]
    confidence = 1 - 2 * settings.alpha_per_look  # two one-sided limits
    measured = [g for g in gates if g.candidate in times and g.reference in times]
    for gate in gates:
        if gate not in measured:
            failures.append(f"timing: {gate.key}: no interleaved measurement of this pair in the run "
                            f"(has {sorted(times)})  FAILED")
            continue
        for name, by in [(gate.candidate, 0.0)] + copies(data, gate.candidate):
            decision, est = decide(round_ratios(times, name, gate.reference), gate.max_ratio, settings.alpha_per_look)
            result = TimingResult(name, gate, decision, est, by)
            results.append(result)
            (failures if decision == "fail" and not by else notes).append(result.line(confidence))
    for candidate in dict.fromkeys(g.candidate for g in measured):
        own = [g for g in measured if g.candidate == candidate]
        present = {by for _, by in copies(data, candidate)}
        missing = set(settings.slowdowns) - present
        if missing:
            failures.append(f"timing: {candidate}: the run lacks its deliberate slowdown(s) {sorted(missing)}, "
                            "which prove the gate can fail  FAILED")
        for name, by in copies(data, candidate):
            caught = tuple(r.gate.key for r in results if r.name == name and r.decision == "fail")
            catch = Catch(name, candidate, by, caught, any(g.catches is not None and g.catches <= by for g in own))
            catches.append(catch)
            (failures if catch.required and not caught else notes).append(catch.line())
    looks = data.get("looks")
    if looks is not None:
        notes.append(f"timing: {looks} look(s) of {settings.chunk_rounds} rounds (cap {settings.max_looks}); "
                     f"false-alarm rate from sampling noise at most {settings.alpha:.0%} per gate")
    return failures, notes, results, catches


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
    timing_fail, timing_notes, timing, _ = check_timing(run, gates, settings)
    return GateResult(exact_fail, timing_fail, exact_notes + timing_notes, merged, timing)


# ---------------------------------------------------------------- calibration


def calibration_pass(run: dict[str, Any], label: str, gates: list[TimingGate],
                     settings: GateSettings) -> dict[str, Any]:
    """One calibration record: for each gate, the median ratio of the candidate and of each slowed copy,
    with its interval and the per-round ratios."""
    data = interleaved(run)
    if not data["times"]:
        raise GateError("the run has no interleaved measurement; run `pytest benchmarks -m ci --benchmark-enable`")
    record = {"label": label, "datetime": run.get("datetime"), "load_average": data.get("load_average"),
              "looks": data.get("looks"), "gates": {}}

    def entry(name: str, reference: str) -> dict[str, Any]:
        values = round_ratios(data["times"], name, reference)
        est = median_interval(values, settings.alpha_per_look)
        return {"median": round(est.median, 5), "low": round(est.low, 5), "high": round(est.high, 5),
                "ratios": [round(v, 5) for v in values]}

    for g in gates:
        if g.candidate in data["times"] and g.reference in data["times"]:
            record["gates"][g.key] = {**entry(g.candidate, g.reference), "slowed": {
                str(by): entry(name, g.reference) for name, by in copies(data, g.candidate)}}
    return record


def load_calibration(path: str | Path = CALIBRATION) -> list[dict[str, Any]]:
    return _read_json(path, "timing calibration")["passes"] if Path(path).exists() else []


def derive_bound(passes: list[dict[str, Any]], gate: TimingGate) -> tuple[float, str]:
    """The bound halfway (geometrically) between the highest upper limit of the unchanged candidate and the
    lowest lower limit of its copy slowed by ``gate.catches``, over all calibration passes: the same relative
    margin against a false alarm and against a missed slowdown. A floor (``catches`` None) sits
    ``FLOOR_MARGIN`` above that highest upper limit. Returns (bound, why)."""
    entries = [(p["label"], p["gates"][gate.key]) for p in passes if gate.key in p.get("gates", {})]
    if gate.catches is None:
        if not entries:
            raise GateError(f"no calibration passes with {gate.key}; add some with `python -m benchmarks.gate calibrate`")
        top = max(e["high"] for _, e in entries)
        medians = [e["median"] for _, e in entries]
        bound = round(top * (1 + FLOOR_MARGIN), 4)
        return bound, (f"a floor: {len(entries)} calibration passes ({', '.join(sorted({lb for lb, _ in entries}))}): "
                       f"unchanged median ratio {min(medians):.4f}-{max(medians):.4f} (it moves with the machine's "
                       f"state), highest upper limit {top:.4f}, bound {FLOOR_MARGIN:.0%} above it; a pass keeps a "
                       f"speed-up of at least {1 / bound:.1f}x; slowdowns are the regression reference's to catch")
    slowed = [e["slowed"][str(gate.catches)] for _, e in entries if str(gate.catches) in e["slowed"]]
    if not entries or not slowed:
        raise GateError(f"no calibration passes with {gate.key} and its {gate.catches:.0%} slowdown; "
                        "add some with `python -m benchmarks.gate calibrate`")
    top, bottom = max(e["high"] for _, e in entries), min(s["low"] for s in slowed)
    if bottom <= top:
        raise GateError(f"{gate.key}: a {gate.catches:.0%} slowdown (lowest limit {bottom:.4f}) overlaps the "
                        f"unchanged ratio (highest limit {top:.4f}) in the calibration: no bound separates them")
    bound = round((top * bottom) ** 0.5, 4)
    labels = sorted({label for label, _ in entries})
    medians = [e["median"] for _, e in entries]
    why = (f"{len(entries)} calibration passes ({', '.join(labels)}): unchanged median ratio {min(medians):.4f}-"
           f"{max(medians):.4f}, highest upper limit {top:.4f} ({bound / top - 1:.1%} under the bound); "
           f"slowed {gate.catches:.0%}: lowest lower limit {bottom:.4f} ({bottom / bound - 1:.1%} over the bound)")
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
    if gates and interleaved(last)["times"]:
        _, _, results, catches = check_timing(last, gates, settings)
        caught = {c.name: c for c in catches}

        def verdict(r: TimingResult) -> str:
            if not r.slowdown:
                return r.decision
            c = caught[r.name]
            return r.decision + (" (copy caught)" if c.caught_by else " (copy NOT caught)" if c.required else "")

        rows = [[r.name, r.gate.reference, f"{r.estimate.median:.4f}", f"[{r.estimate.low:.4f}, {r.estimate.high:.4f}]",
                 r.estimate.rounds, f"{r.gate.max_ratio:.4f}", verdict(r)] for r in results]
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
        plot_calibration(passes, gates, plot_path, last if interleaved(last)["times"] else None, settings)
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
        cal = [(p["label"], p["gates"][g.key]) for p in passes if g.key in p.get("gates", {})]
        for y, (label, c) in enumerate(cal):
            ax.plot(c["ratios"], [y] * len(c["ratios"]), "|", color="0.75", markersize=5)
            ax.plot([c["median"]], [y], "o", color=colors.get(label, "tab:gray"), markersize=4,
                    label=f"calibration pass median ({label})")
        top = len(cal)
        if data and g.candidate in data["times"] and g.reference in data["times"]:
            names = [g.candidate] + [n for n, _ in copies(data, g.candidate)]
            for i, name in enumerate(names):
                est = median_interval(round_ratios(data["times"], name, g.reference), settings.alpha_per_look)
                y = top + 1 + i
                ax.plot([est.low, est.high], [y, y], "-", color="black", linewidth=2)
                ax.plot([est.median], [y], "D", color="black", markersize=4)
                ax.annotate("this run" if i == 0 else name.removeprefix(g.candidate).strip(), (est.low, y),
                            xytext=(-4, -3), textcoords="offset points", fontsize=7, ha="right")
        ax.axvline(g.max_ratio, color="tab:red", linewidth=1.5, label=f"bound {g.max_ratio:.4f}")
        ax.set_title(f"{g.candidate} / {g.reference} " + (f"(bound derived to catch {g.catches:.0%})" if g.catches
                     else f"(a floor, {FLOOR_MARGIN:.0%} above the unchanged ratio)"), fontsize=9)
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
    gates, settings = load_gates(args.gates)
    if args.runs and not args.label:
        raise GateError("say how the runs were measured: --label idle or --label load")
    existing = _read_json(args.calibration, "timing calibration") if args.calibration.exists() else {"passes": []}
    for path in args.runs:
        existing["passes"].append(calibration_pass(load_run(path), args.label, gates, settings))
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
            f"{n} {c['median']:.4f} [{c['low']:.4f}, {c['high']:.4f}]" for n, c in p["gates"].items()))
    if args.write_bounds:
        data = _read_json(args.gates, "timing gates")
        for g, entry in zip(gates, data["timing"]):  # each bound separates the unchanged ratio from its slowdown
            entry["max_ratio"], entry["why"] = derive_bound(existing["passes"], g)
            print(f"  bound {g.key}: {entry['max_ratio']:.4f}: {entry['why']}")
        args.gates.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.gates}")
    return 0


def _run_passes(args) -> int:
    """One row per run: load, looks, each gated ratio with its interval, whether the gate passed and
    whether every deliberate slowdown was caught (timing only: the exact gate is the same in every run)."""
    from tabulate import tabulate

    gates, settings = load_gates(args.gates)
    rows, passed, caught, required = [], 0, 0, 0
    for path in args.runs:
        run = load_run(path)
        failures, _, results, catches = check_timing(run, gates, settings)
        load = interleaved(run).get("load_average") or [float("nan")] * 6
        cells = [Path(path).name, f"{load[0]:.2f}→{load[3]:.2f}", interleaved(run).get("looks")]
        cells += [f"{r.estimate.median:.4f} [{r.estimate.low:.4f}, {r.estimate.high:.4f}]"
                  for r in results if not r.slowdown]
        run_caught = sum(bool(c.caught_by) for c in catches if c.required)
        run_required = sum(c.required for c in catches)
        cells += [f"{run_caught} of {run_required}", "pass" if not failures else "FAIL"]
        passed += not failures
        caught += run_caught
        required += run_required
        rows.append(cells)
    header = ["run", "load 1 min (before→after)", "looks", *[g.key for g in gates], "slowdowns caught", "timing gate"]
    print(tabulate(rows, header, tablefmt="github"))
    print(f"\n{passed} of {len(args.runs)} runs passed the timing gate; {caught} of {required} deliberate slowdowns "
          f"caught; bounds {', '.join(f'{g.key} {g.max_ratio}' for g in gates)}")
    return 0 if passed == len(args.runs) and caught == required else 1


def _run_references(args) -> int:
    """Compare the current code's artifacts with the committed regression references, or accept them."""
    from benchmarks import references

    if args.write:
        manifest = references.write(references.build(), args.folder)
        for name, entry in manifest["files"].items():
            print(f"wrote {args.folder / entry['file']} ({entry['bytes']:,} bytes, sha256 {entry['sha256'][:12]})")
        return 0
    try:  # before building: a damaged reference folder is reported at once, not after the exports
        committed = references.load(args.folder)
    except references.ReferenceError as e:
        raise GateError(str(e)) from None
    current = references.build()
    for line in references.compare(current, committed):
        print(line)
    print("(the JAX export embeds source locations, so it differs between checkouts in different folders; "
          "the timing gate compares speed, not bytes)")
    return 0


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
    f = sub.add_parser("references", help="compare the current code's artifacts with the committed regression "
                       "references (benchmarks/reference/), or accept them with --write")
    f.add_argument("--write", action="store_true", help="rewrite the references from the current code (commit them "
                   "with the change that made them differ)")
    f.add_argument("--folder", type=Path, default=REFERENCE_FOLDER,
                   help="the folder of the reference files and their references.json")
    f.set_defaults(func=_run_references)
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
