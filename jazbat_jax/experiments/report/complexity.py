"""Model complexity next to the paper's numbers."""
from __future__ import annotations

import json
from pathlib import Path

from jazbat_jax.experiments.report.common import _table


def _complexity_section(cfg: dict, rows: list[dict], results: Path) -> list[str]:
    from jazbat_jax import summary

    c = 3 if cfg["target"]["dataset"] == "quiroz" else 6
    table = []
    for inp in cfg["grid"]["inputs"]:
        variants = []
        if "none" in cfg["grid"]["pretraining"]:
            variants.append(("no pretraining (K = C)", c))
        if any(p != "none" for p in cfg["grid"]["pretraining"]):
            variants.append(("transferred (K = 18 kept), or from scratch with K = 18", 18))
        for name, k in variants:
            j = summary.build(inp, k, c, xla=False)["jazbat_net"]
            table.append([inp.upper(), name, k, c, f"{j['trainable_params']:,}", f"{j['total_params']:,}", f"{j['macs']:,}"])
    lines = ["## Model complexity (computed from the models, `jazbat_jax.summary`)", "",
             _table(["input", "model", "K", "C", "trainable params", "total params", "MACs per window"], table),
             "", "Window 256.", ""]
    profile_json = Path(results) / "profile" / "profile.json"
    from jazbat_jax import plugins

    profile = plugins.load_one(plugins.PROFILERS, "latency") if profile_json.exists() else None
    if profile is not None:  # written by the grid: the exported models' sizes and latency
        lines += ["## Exported models: size and latency (`jazbat profile`, fresh models with perturbed weights)", "",
                  profile.render_markdown(json.loads(profile_json.read_text())), "",
                  "![latency and size](profile/profile.png)", ""]
    else:
        lines += ["This results folder has no latency profile (the grid writes one when `latency.enabled` is on; "
                  "`jazbat profile` makes one on its own).", ""]
    return lines
