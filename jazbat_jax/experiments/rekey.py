"""Re-key a results folder made before jobs named their data by fingerprint (``jobs.IDENTITY`` 1 → 2),
and move an accuracy-cost folder of the earlier layout onto the pipeline's jobs.

Version 1 put the data folder (``/some/where/shared/data`` or ``bundled``) into every job's settings,
so the same job had another id on another machine and the results named a machine's folders. This
rewrites such a folder in place: each data folder becomes its data label (``quiroz@<fingerprint>``,
computed from the folder, which must still hold the same files), each job folder takes its new id
(trunks first: the cells name them), and the ids and folders inside ``result.json``, the run folders'
``config.json`` and ``invocations.jsonl`` follow. Nothing is trained or recomputed.

    python -m jazbat_jax.experiments.rekey RESULTS [--data-root DIR]

``--data-root``: where this machine keeps the data the results were made from, when the folder named in
them is not here (default: the folder named, else ../shared/data or $JAZBAT_DATA_ROOT).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from jazbat_jax.data.config import BUNDLED, dataset_folder
from jazbat_jax.data.fingerprint import is_label, label
from jazbat_jax.experiments.jobs import FOLDERS, Job
from jazbat_jax.files import read_json_lines, write_json

_HASH = re.compile(r"-[0-9a-f]{10}$")
ORDER = ("pretrain", "deep", "baseline", "personal")


def _dataset_folder(root: str, dataset: str, data_root: Path | None) -> Path:
    from jazbat_jax.data import bundled_sample_root, data_root as default_root

    if root == BUNDLED:
        base = bundled_sample_root()
    else:
        base = Path(root)
        if not base.exists():
            base = data_root or default_root()
    return dataset_folder(base, dataset)


def relabel(obj: Any, data_root: Path | None, dataset: str | None = None) -> Any:
    """``obj`` with every data folder (a ``root`` beside a ``dataset``, or a pretraining's ``data_root``)
    replaced by its data label."""
    if isinstance(obj, list):
        return [relabel(v, data_root, dataset) for v in obj]
    if not isinstance(obj, dict):
        return obj
    ds = obj.get("dataset", dataset)
    if ds is None and obj.get("kind") == "pretrain":  # a trunk's settings: its data_root is WISDM's
        ds = "wisdm"
    out = {}
    for k, v in obj.items():
        if k in ("root", "data_root") and isinstance(v, str) and not is_label(v) and ds:
            out[k] = label(ds, _dataset_folder(v, ds, data_root))
        else:
            out[k] = relabel(v, data_root, ds)
    return out


def _replace_ids(obj: Any, ids: dict[str, str], results_prefix: re.Pattern) -> Any:
    if isinstance(obj, list):
        return [_replace_ids(v, ids, results_prefix) for v in obj]
    if isinstance(obj, dict):
        return {k: _replace_ids(v, ids, results_prefix) for k, v in obj.items()}
    if isinstance(obj, str):
        obj = results_prefix.sub("", obj)  # an absolute path into the results folder → relative to it
        for old, new in ids.items():
            obj = obj.replace(old, new)
    return obj


def rekey(results: Path, data_root: Path | None = None, log=print) -> dict[str, str]:
    """Re-key ``results`` in place; {old id: new id} of the jobs renamed."""
    results = Path(results)
    found = []
    for kind in ORDER:
        for path in sorted((results / FOLDERS[kind]).glob("*/result.json")):
            found.append((kind, path))
    ids: dict[str, str] = {}
    # absolute paths that pointed into a results folder (a trunk's checkpoint): keep what follows it
    prefix = re.compile(r"(?:/[^\s\"']*?)?/(?=(?:pretrain|cells|baseline|personal)/[^/]+-[0-9a-f]{10}/)")
    for kind, path in found:
        result = json.loads(path.read_text())
        old = path.parent.name
        settings = _replace_ids(relabel(result["settings"], data_root), ids, prefix)
        new = Job(kind, _HASH.sub("", old), settings).id
        ids[old] = new
    for kind, path in found:
        old = path.parent.name
        new = ids[old]
        folder = path.parent
        result = json.loads(path.read_text())
        result = _replace_ids(relabel(result, data_root), ids, prefix)
        for config in folder.rglob("config.json"):
            write_json(config, _replace_ids(relabel(json.loads(config.read_text()), data_root), ids, prefix))
        write_json(path, result)
        if new != old:
            folder.rename(folder.with_name(new))
    inv = results / "invocations.jsonl"
    if inv.exists():
        lines = [json.dumps(_replace_ids(json.loads(line), ids, prefix)) for line in inv.read_text().splitlines()
                 if line.strip()]
        inv.write_text("\n".join(lines) + "\n")
    changed = {o: n for o, n in ids.items() if o != n}
    log(f"{results}: {len(found)} results, {len(changed)} re-keyed")
    return changed


def rekey_accuracy_cost(out: Path, data_root: Path | None = None, log=print) -> dict[str, str]:
    """Move an accuracy-cost folder of the earlier layout (``runs/<arch>-s<seed>/`` run folders with a
    ``trained_by.json``) to jobs of the pipeline: ``runs/<id>/run/`` and a ``result.json`` made from the
    run's own ``final_eval.json`` and ``trained_by.json``; what finished each run becomes its line of
    ``invocations.jsonl`` (marked ``from_trained_by``). {old name: new id}."""
    from jazbat_jax.experiments import accuracy_cost

    out = Path(out)
    saved = json.loads((out / "accuracy_cost.json").read_text())["settings"]
    settings = accuracy_cost.Settings(**{**saved, "root": str(data_root) if data_root else saved["root"]})
    data = accuracy_cost.data_label(settings)
    settings = accuracy_cost.Settings(**saved)
    moved, lines = {}, []
    for old in sorted(p for p in (out / "runs").iterdir() if (p / "final_eval.json").exists()):
        arch, _, seed = old.name.rpartition("-s")
        job = accuracy_cost.job(settings, arch, int(seed), data)
        final = json.loads((old / "final_eval.json").read_text())
        meta = relabel(json.loads((old / "config.json").read_text()), data_root)
        write_json(old / "config.json", meta)
        by_path = old / "trained_by.json"
        by = json.loads(by_path.read_text()) if by_path.exists() else {}
        new = job.folder(out)
        new.mkdir(parents=True)
        old.rename(new / "run")
        by_path = new / "run" / "trained_by.json"
        by_path.unlink(missing_ok=True)
        write_json(new / "result.json", {
            "job": job.id, "kind": job.kind, "settings": job.settings,
            "n_train": meta["split_summary"]["train"]["windows"], "report": final["report"],
            "checkpoint_epoch": final["checkpoint_epoch"],
            **{k: final[k] for k in ("stopped_epoch", "early_stopped") if k in final},
            "wall_s": by.get("wall_s"), "finished_at": by.get("finished_utc"), "resumed": by.get("resumed")})
        if by:
            lines.append({"started": None, "command": by["command"], "machine": by.get("machine"), "ran": [job.id],
                          "wall_s": by.get("wall_s"), "load_average_start": by.get("load_average_start"),
                          "load_average_end": by.get("load_average_end"), "from_trained_by": True})
        moved[old.name] = job.id
    inv = out / "invocations.jsonl"
    earlier = read_json_lines(inv)
    inv.write_text("".join(json.dumps(x) + "\n" for x in lines + earlier))
    write_json(out / "config.json", {"settings": saved, "data_label": data})
    log(f"{out}: {len(moved)} accuracy-cost runs moved to pipeline jobs")
    return moved


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jazbat_jax.experiments.rekey", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, nargs="+", help="results folders of `jazbat experiments` or `jazbat accuracy-cost`")
    p.add_argument("--data-root", type=Path, default=None, help="where the data the results were made from are")
    args = p.parse_args(argv)
    for folder in args.results:
        if (folder / "accuracy_cost.json").exists():
            rekey_accuracy_cost(folder, args.data_root)
            continue
        if not (folder / "config.json").exists():
            print(f"error: {folder} is not a results folder of `jazbat experiments` (no config.json)", file=sys.stderr)
            return 1
        rekey(folder, args.data_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
