"""``jazbat data info PATH``: what a data folder holds (subjects, classes, rows, rates, windows, defects)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import quiroz, seecs, wisdm


def _wisdm_info(root: Path, on_bad_line: str) -> dict[str, Any]:
    kind, folder = wisdm.resolve_wisdm_root(root)
    out: dict[str, Any] = {"source": "wisdm2019", "layout": kind, "path": str(folder), "streams": {}, "devices": {}}
    for device in wisdm.DEVICES:
        for sensor in wisdm.SENSORS:
            try:
                st, rep = wisdm.load_stream(folder, device, sensor, on_bad_line=on_bad_line)
            except FileNotFoundError as e:
                out["streams"][f"{device}_{sensor}"] = {"missing": str(e)}
                continue
            st, clean = wisdm.clean_stream(st)
            rates = wisdm.block_rates(st)
            acts = "".join(wisdm.ACTIVITY_CODES[a] for a in np.unique(st["activity"]))
            out["streams"][f"{device}_{sensor}"] = {
                "rows": int(len(st["subject"])),
                "subjects": sorted(np.unique(st["subject"]).tolist()),
                "activities": acts,
                "median_rate_hz": rates["median_hz"],
                "blocks_by_rounded_hz": rates["blocks_by_rounded_hz"],
                "blocks_with_mixed_rates": rates["blocks_with_mixed_rates"],
                "defects": {**{k: v for k, v in rep.items() if k not in ("file", "folder", "rows_read", "files")},
                            **clean},
            }
        if f"{device}_accel" in out["streams"] and "missing" not in out["streams"][f"{device}_accel"]:
            ws = wisdm.load_wisdm(folder, device=device, input_kind="1d", on_bad_line=on_bad_line)
            r = ws.report
            out["devices"][device] = {
                "windows_1d_step32": len(ws), "windows_per_class": r["windows_per_class"],
                "segments": r["segments"], "segment_cuts": r["segment_cuts"],
                "segments_shorter_than_window": r["segments_shorter_than_window"],
                "missing_activities_by_subject": r["missing_activities_by_subject"],
            }
    return out


def _quiroz_info(root: Path) -> dict[str, Any]:
    ws = quiroz.load_quiroz(root)
    r = ws.report
    d = quiroz.read_quiroz(root)
    rows = {n: int((d["emotion"] == c).sum()) for n, c in quiroz._EMOTION_CODE.items()}
    return {"source": "quiroz2018_emotion_walking", "path": r["file"], "participants": r["participants"],
            "emotions": list(ws.class_names), "rows": r["rows"], "rows_per_emotion": rows, "rate_hz": r["rate_hz"],
            "walks": r["walks"], "walk_rows_min_median_max": r["walk_rows_min_median_max"],
            "participants_per_condition": r.get("participants_per_condition"),
            "windows_1d_step16": len(ws), "windows_per_class": r["windows_per_class"],
            "defects": {"non_finite_rows_dropped": r["non_finite_rows_dropped"],
                        "segments_shorter_than_window": r["segments_shorter_than_window"],
                        "no_timestamps": "rows treated as a ~25 Hz sequence"}}


def _seecs_info(root: Path) -> dict[str, Any]:
    ws = seecs.load_seecs(root)
    r = ws.report
    return {"source": "seecs", "path": str(root), "subjects": r["subjects"], "emotions": list(ws.class_names),
            "recordings": r["recordings"], "rows": r["rows"], "rates_hz_min_median_max": r["rates_hz_min_median_max"],
            "windows_1d_step16": len(ws), "windows_per_class": r["windows_per_class"],
            "defects": {"segment_cuts": r["segment_cuts"],
                        "pieces_shorter_than_window_dropped": r["pieces_shorter_than_window_dropped"]}}


def describe(path: str | Path, on_bad_line: str = "raise") -> dict[str, Any]:
    """Describe every source found at ``path`` (a dataset folder or a root holding several)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such folder: {path}")
    found: list[dict[str, Any]] = []
    try:
        wisdm.resolve_wisdm_root(path)
        found.append(_wisdm_info(path, on_bad_line))
    except FileNotFoundError:
        pass
    try:
        quiroz.resolve_quiroz_path(path)
        found.append(_quiroz_info(path))
    except FileNotFoundError:
        pass
    if not found:
        try:
            seecs.scan_seecs(path)
        except (FileNotFoundError, ValueError) as e:
            raise FileNotFoundError(
                f"{path}: not a WISDM (raw or packed), Quiroz 2018 or SEECS-layout folder ({e})"
            ) from None
        found.append(_seecs_info(path))
    return {"path": str(path), "sources": found}


def _fmt_counts(d: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


def _fmt_subjects(s: list[int]) -> str:
    return f"{len(s)} ({s[0]}..{s[-1]})" if len(s) > 6 else f"{len(s)} {s}"


def format_info(info: dict[str, Any]) -> str:
    lines = [f"data folder: {info['path']}"]
    for src in info["sources"]:
        lines.append("")
        if src["source"] == "wisdm2019":
            lines.append(f"WISDM 2019 ({src['layout']} layout) at {src['path']}")
            for name, s in src["streams"].items():
                if "missing" in s:
                    lines.append(f"  {name:12s} missing: {s['missing']}")
                    continue
                lines.append(f"  {name:12s} {s['rows']:9d} rows  subjects {_fmt_subjects(s['subjects'])}  "
                             f"activities {s['activities']}  median {s['median_rate_hz']} Hz  "
                             f"blocks by rate {_fmt_counts(s['blocks_by_rounded_hz'])}")
                for k, v in s["defects"].items():
                    if k == "supplement":
                        kept = v.get("rows_in_incomplete_blocks_kept", v.get("rows_in_incomplete_blocks_dropped"))
                        lines.append(f"      supplement (A,B,C,M only): {len(v['subjects_added'])} subjects, "
                                     f"{v['rows_added']} rows added; cut-short blocks "
                                     f"({len(v['incomplete_blocks'])}, {kept} rows) kept: {' '.join(v['incomplete_blocks'])}")
                    else:
                        lines.append(f"      {k}: {v}")
                if s["blocks_with_mixed_rates"]:
                    lines.append(f"      blocks_with_mixed_rates: {' '.join(s['blocks_with_mixed_rates'])}")
            for dev, d in src["devices"].items():
                lines.append(f"  {dev} windows (1D, 256/32): {d['windows_1d_step32']}  segments {d['segments']}  "
                             f"cuts {_fmt_counts(d['segment_cuts'])}  shorter than a window {d['segments_shorter_than_window']}")
                lines.append(f"    per class: {_fmt_counts(d['windows_per_class'])}")
                if d["missing_activities_by_subject"]:
                    lines.append(f"    missing activities: {_fmt_counts(d['missing_activities_by_subject'])}")
        elif src["source"] == "quiroz2018_emotion_walking":
            lines.append(f"Quiroz 2018 walking emotions at {src['path']}")
            lines.append(f"  participants {_fmt_subjects(src['participants'])}  conditions "
                         f"{_fmt_counts(src['participants_per_condition'] or {})}")
            lines.append(f"  rows {src['rows']} ({_fmt_counts(src['rows_per_emotion'])})  walks {src['walks']} "
                         f"(rows min/median/max {src['walk_rows_min_median_max']})  rate {src['rate_hz']}")
            lines.append(f"  windows (1D, 256/16): {src['windows_1d_step16']}  per class: {_fmt_counts(src['windows_per_class'])}")
            lines.append(f"  defects: {src['defects']}")
        else:
            lines.append(f"SEECS-layout emotions at {src['path']}")
            lines.append(f"  subjects {_fmt_subjects(src['subjects'])}  recordings {src['recordings']}  rows {src['rows']}  "
                         f"rates min/median/max {src['rates_hz_min_median_max']} Hz")
            lines.append(f"  windows (1D, 256/16): {src['windows_1d_step16']}  per class: {_fmt_counts(src['windows_per_class'])}")
            lines.append(f"  defects: {src['defects']}")
    return "\n".join(lines)
