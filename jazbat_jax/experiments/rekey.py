"""Re-key a results folder made before jobs named their data by fingerprint (``jobs.IDENTITY`` 1 → 2).

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

from jazbat_jax.data.config import BUNDLED, DATASET_FOLDERS
from jazbat_jax.data.fingerprint import is_label, label
from jazbat_jax.experiments.jobs import FOLDERS, Job
from jazbat_jax.files import write_json

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
    sub = base / DATASET_FOLDERS.get(dataset, "")
    return sub if dataset in DATASET_FOLDERS and sub.is_dir() else base


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jazbat_jax.experiments.rekey", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, nargs="+", help="results folders of `jazbat experiments`")
    p.add_argument("--data-root", type=Path, default=None, help="where the data the results were made from are")
    args = p.parse_args(argv)
    for folder in args.results:
        if not (folder / "config.json").exists():
            print(f"error: {folder} is not a results folder of `jazbat experiments` (no config.json)", file=sys.stderr)
            return 1
        rekey(folder, args.data_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
