"""The report's head: what ran, when, on what, with which settings and data."""
from __future__ import annotations

import json

from jazbat_jax.experiments import config as cfgmod
from jazbat_jax.experiments.collect import Collected
from jazbat_jax.experiments.report.common import _epochs, _job_seconds, _load_note, _was_busy


def _inputs_line(cfg: dict) -> str:
    """What the source and target accelerations are: as recorded (the paper) or matched (docs/data.md)."""
    from jazbat_jax.data.matching import GRAVITY_REMOVAL

    gravity, rate = cfg["pretrain"]["gravity"], cfg["target"]["resample_hz"]
    source = ("WISDM acceleration as recorded (with gravity)" if gravity == "as_recorded"
              else f"WISDM acceleration with gravity removed ({GRAVITY_REMOVAL})")
    target = ("the target as recorded" if rate is None
              else f"the target's walks resampled from ~25 Hz to {rate:g} Hz (scipy.signal.resample_poly)")
    return f"- **Inputs**: {source}; {target}."


def _settings_lines(cfg: dict, invocations: list[dict]) -> list[str]:
    t, p, f, g = cfg["target"], cfg["pretrain"], cfg["finetune"], cfg["grid"]
    target = ("Quiroz et al. 2018 walking emotions (smartwatch, happy / neutral / sad)" if t["dataset"] == "quiroz"
              else f"SEECS-layout data at {t['root']} (6 emotions)")
    machines = sorted({json.dumps(i["machine"], sort_keys=True) for i in invocations})
    lines = [
        f"- **Profile** `{cfg['profile']}`; data root `{cfg['data_root']}`"
        + (" (the sample bundled with the package: 12 Quiroz participants, 6 WISDM watch subjects)"
           if cfg["data_root"] == "bundled" else ""),
        f"- **Target**: {target}; windows of {t['window']} samples, step {t['step']}"
        + (f"; participants {t['participants']}" if t["participants"] else "; all participants in the data"),
        f"- **Splits**: `subject` = {g['n_folds']}-fold by participant (no person in two parts), `random` = "
        f"{g['n_folds']}-fold stratified over windows (the paper's probable protocol; overlapping windows of the "
        f"same walk land in train and test); folds run: {cfgmod.folds(cfg)}; split seed {g['split_seed']}; "
        f"validation = {f['val_fraction']:.0%} of the rest (for checkpoint selection by macro-F1).",
        f"- **Fine-tuning**: {_epochs(f)}, batch {f['batch_size']}, Adam lr {f['learning_rate']} "
        f"(paper: 90 epochs); all layers trained; best-validation checkpoint evaluated on the test fold.",
        f"- **Pretraining**: WISDM 2019, {len(p['activities'])} activities `{p['activities']}`, step {p['step']}, "
        f"{_epochs(p)} (paper: 40), subject hold-out ({p['test_fraction']:.0%} test, "
        f"{p['val_fraction']:.0%} val), seed {p['seed']}; subjects listed below.",
        _inputs_line(cfg),
        f"- **Seeds** (initialisation, shuffling): {g['seeds']}; mean ± SD are over folds × seeds (sample SD).",
        f"- **Baseline**: random forest ({cfg['baseline']['n_estimators']} trees) on 15 gait features per channel, "
        f"same folds, trained on " + ("the network's training participants (not its validation part)."
                                      if cfg["baseline"]["fit_on"] == "train" else "train + validation.")
        if cfg["baseline"]["enabled"] else "- Baseline: off.",
    ]
    if not g["enabled"]:  # the personal models alone: none of the grid's settings applies
        lines = lines[:1] + ["- **Grid**: off (`grid.enabled = false`): no grid cell; the personal models below only."]
    for m in machines:
        m = json.loads(m)
        lines.append(f"- **Machine**: {m['host_cpu']}, {m['cpu_count']} cores, JAX {m['jax']} on "
                     f"{m['jax_devices']} ({m['jax_backend']}), Python {m['python']}")
    return lines


def header_section(c: Collected, command: str | None) -> list[str]:
    """The title, the command, how many jobs finished, the invocations and the settings."""
    cfg, done, jobs, missing, invocations = c.cfg, c.done, c.jobs, c.missing, c.invocations
    out: list[str] = [f"# Jazbat-Net experiments on public data ({cfg['profile']} profile)", ""]
    if command:
        out += ["Report written by:", "", "```", command, "```", ""]
    total_wall = sum(_job_seconds(r) for r in done.values())
    out += [f"{len(done)} of {len(jobs)} jobs finished"
            + (f" ({len(missing)} missing, listed at the end)" if missing else "")
            + f"; training / fitting wall time of the finished jobs {total_wall / 60:.1f} min (a resumed run counts "
              "its earlier sessions' epochs)"
            + ".", ""]
    if invocations:
        out += ["Invocations of the grid on this results folder (from `invocations.jsonl`):", ""]
        out += [f"- {i['started']}: {len(i['ran'])} jobs run, {i['skipped_done']} skipped as done, "
                f"{i['wall_s'] / 60:.1f} min wall" + (f", **stopped early ({i['stopped']})**" if i.get("stopped") else "")
                + _load_note(i) + (f" — `{i['command']}`" if i.get("command") else "")
                for i in invocations]
        if any(_was_busy(i) for i in invocations):
            out += ["", "**Warning: the machine was busy during an invocation marked ⚠ (load average above half its "
                        "cores at the start or above all of them at the end): its wall times are slower than on an idle "
                        "machine of the same kind.**"]
        out.append("")
    roots = sorted({r["settings"]["target"]["root"] for r in done.values() if "target" in r["settings"]}
                   | {r["settings"]["data_root"] for r in c.pretrain}
                   | {r["settings"]["data"]["root"] for r in done.values() if r["kind"] == "personal"})
    out += ["## Settings", "", *_settings_lines(cfg, invocations),
            f"- **Data used** (dataset @ fingerprint of its files, as recorded in the jobs): "
            f"{', '.join(f'`{x}`' for x in roots) or '—'}", ""]
    return out
