"""The report's appendices: how each run trained, and the provenance of every number
(code, package versions, devices, dataset checksums, each run's configuration)."""

from __future__ import annotations

import json
import math
import re

from detstudy.report.formatting import DASH, cell, fmt_number, interval_text, split_rank
from detstudy.study.grid import run_label
from detstudy.statistics.methods import METHOD_NAMES, METHODS
from detstudy.study.families import family_label
from detstudy.report.tables import as_number


def training_appendix(runs: list[dict]) -> list[dict]:
    rows = []
    for run in runs:
        training = run.get("training") or {}
        speed = run.get("speed") or {}
        seconds = as_number(training.get("train_seconds"))
        if math.isnan(seconds):
            duration = DASH
        else:
            hours, rest = divmod(int(round(seconds)), 3600)
            duration = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        rows.append({
            "label": run_label(run),
            "family": family_label(run["run"].get("family")),
            "epochs": DASH if training.get("epochs") is None else str(training.get("epochs")),
            "best_epoch": DASH if training.get("best_epoch") is None else str(training.get("best_epoch")),
            "best_val_AP50": fmt_number(as_number(training.get("best_val_AP50"))),
            "train_time": duration,
            "device": str(speed.get("device") or DASH),
            "path": run["metrics_path"],
        })
    return rows



def distinct_values(runs: list[dict], value) -> list[dict]:
    """Runs grouped by ``value(run)``, first-seen order: ``[{"value": v, "runs": [run label, ...]}]``."""
    groups: dict[str, dict] = {}
    for run in runs:
        found = value(run)
        key = json.dumps(found, sort_keys=True, default=str)
        groups.setdefault(key, {"value": found, "runs": []})["runs"].append(run_label(run))
    return list(groups.values())


def _digest(value) -> dict:
    """A SHA-256 shown by its first 16 hex digits, the full one kept for a tooltip / code span."""
    return {"short": str(value)[:16], "full": str(value)} if value else {"short": DASH, "full": ""}


def _device_text(device, kernels=None) -> str:
    if not isinstance(device, dict):
        return "not recorded"
    parts = [str(device.get(k)) for k in ("type", "name") if device.get(k) is not None]
    if device.get("cuda"):
        parts.append(f"CUDA {device['cuda']}")
    cpu = (device.get("cpu_kernels") or {}).get("cpu")
    if cpu and cpu != device.get("name"):
        parts.append(f"CPU {cpu}")
    if device.get("threads") is not None:
        parts.append(f"{device['threads']} thread{'s' if device['threads'] != 1 else ''}")
    if isinstance(kernels, dict):
        parts.append("pinned CPU kernels (AVX2 code paths; the same bytes on this CPU model)" if kernels.get("applied") else
                     "pinned CPU kernels asked for, not applicable on this CPU" if kernels.get("portable") else
                     "own CPU kernels of this machine (the same bytes here; another CPU may round differently)")
    return " · ".join(parts) or "not recorded"


def provenance_view(runs: list[dict]) -> dict:
    """The provenance appendix: code, versions, devices, dataset checksums and each run's configuration.

    Every part lists its distinct values; the runs each applies to are shown when they differ
    (``mixed``).
    """
    def prov(run, key):
        return run["provenance"].get(key)

    code = []
    for group in distinct_values(runs, lambda r: prov(r, "git")):
        git = group["value"] if isinstance(group["value"], dict) else None
        commit = str(git.get("commit") or "") if git else ""
        code.append({"commit": commit, "short": commit[:12], "git": git is not None,
                     "dirty": bool(git and git.get("dirty")), "runs": group["runs"]})

    version_groups = distinct_values(runs, lambda r: prov(r, "versions") or {})
    names = list(dict.fromkeys(name for g in version_groups for name in g["value"]))
    version_rows = []
    for name in names:
        values = [DASH if name not in g["value"] else str(g["value"][name] or "not installed") for g in version_groups]
        version_rows.append({"name": name, "versions": values, "differs": len(set(values)) > 1})

    splits = list(dict.fromkeys(s for run in runs for s in (prov(run, "dataset") or {})))
    splits.sort(key=split_rank)
    dataset, dataset_warnings = [], []
    for split in splits:
        seen = [run for run in runs if split in (prov(run, "dataset") or {})]
        groups = distinct_values(seen, lambda r: prov(r, "dataset")[split] or {})
        for group in groups:
            entry = group["value"]
            dataset.append({"split": split, "annotations": str(entry.get("annotations") or DASH),
                            "images": DASH if entry.get("images") is None else str(entry["images"]),
                            "annotations_sha256": _digest(entry.get("annotations_sha256")),
                            "images_sha256": _digest(entry.get("images_sha256")),
                            "runs": ["all runs"] if len(group["runs"]) == len(runs) else group["runs"]})
        if len({(g["value"].get("annotations_sha256"), g["value"].get("images_sha256")) for g in groups}) > 1:
            dataset_warnings.append(f"Runs saw different data in the {split} split (the checksums differ).")

    configs = []
    for run in runs:
        text = json.dumps(prov(run, "config"), indent=2, ensure_ascii=False, default=str)
        # a Markdown fence longer than any backtick run in the JSON
        fence = "`" * max(3, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
        configs.append({"label": run_label(run), "json": text, "fence": fence})

    devices = distinct_values(runs, lambda r: {"device": prov(r, "device"), "kernels": prov(r, "kernels")})
    return {
        "code": {"groups": code, "mixed": len(code) > 1},
        "versions": {"headers": ["Version"] if len(version_groups) == 1 else
                     [f"Set {i}" for i in range(1, len(version_groups) + 1)],
                     "rows": version_rows, "runs": [g["runs"] for g in version_groups],
                     "mixed": len(version_groups) > 1},
        "devices": {"groups": [{"text": _device_text(g["value"]["device"], g["value"]["kernels"]), "runs": g["runs"]}
                                for g in devices],
                    "mixed": len(devices) > 1},
        "dataset": {"rows": dataset, "mixed": len(dataset) > len(splits), "warnings": dataset_warnings},
        "configs": configs,
    }




def bootstrap_appendix(significance) -> dict | None:
    """Per cell: AP50 and mAP with the bootstrap's bias and both intervals (the headline
    interval is the configured method's; this table shows what the other would have said)."""
    if significance is None:
        return None
    columns = [{"label": "Run", "tex": "Run", "numeric": False}, {"label": "Seeds", "tex": "$n$", "numeric": True}]
    for metric, shown in (("AP50", "AP50"), ("AP", "mAP")):
        columns += [{"label": f"{shown}", "tex": shown, "numeric": True},
                    {"label": f"{shown} bias", "tex": "bias", "numeric": True}]
        columns += [{"label": f"{shown} {METHOD_NAMES[m]}", "tex": METHOD_NAMES[m], "numeric": True} for m in METHODS]
    rows = []
    for label, found in significance.cells.items():
        cells = [cell(label), cell(len(found["seeds"]), numeric=True)]
        for metric in ("AP50", "AP"):
            value = found["metrics"][metric]
            bias = value.get("bias")
            cells += [cell(fmt_number(value.get("estimate")), numeric=True),
                      cell(DASH if bias is None else f"{bias:+.3f}", numeric=True)]
            cells += [cell(interval_text(value.get(m)) or DASH, numeric=True) for m in METHODS]
        rows.append({"cells": cells, "family_start": False, "first_row": False, "family": ""})
    return {"key": "bootstrap", "caption": "Bootstrap over the test images", "columns": columns, "rows": rows,
            "n_key_columns": 2, "group_headers": None}
