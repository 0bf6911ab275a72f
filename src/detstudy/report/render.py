"""The report's layout: number formatting, escaping, view models and the rendered outputs.

Turns the DataFrames from :mod:`detstudy.report.tables` into generic table view models
(best values in bold, seed spread, family groups) and renders them with the Jinja
templates in ``report/templates`` into ``index.html``, ``report.md`` and the LaTeX tables
(:func:`render_report`).
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
import os
import re
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from detstudy.io import atomic_path, read_json
from detstudy.report.tables import (
    GROUP_KEYS,
    OPERATING_COLUMNS,
    RUN_COLUMNS,
    _Col,
    _isnan,
    _num,
    family_label,
    is_phase_run,
    load_runs,
    multimodal_table,
    operating_points_table,
    pair_columns,
    per_class_table,
    phase_label,
    run_label,
    runs_table,
)

#: Figure kinds in display order, with their titles; unknown kinds follow in given order.
FIGURE_KINDS = {
    "training_curves": "Training curves",
    "per_class_ap": "Per-class AP",
    "pr_curves": "Precision–recall curves",
    "confusion_matrix": "Confusion matrix",
    "predictions": "Predictions",
}

#: The multimodal extension's cross-run figures (one pair per model, resolution and seed).
MULTIMODAL_FIGURE_KINDS = {
    "similarity": "Query features vs class descriptions",
    "pair_confusion": "Class-pair confusion across runs",
}

DASH = "–"  # what a missing number (None / NaN) renders as


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def fmt_number(value, decimals: int = 3) -> str:
    if _isnan(value):
        return DASH
    return f"{float(value):.{decimals}f}"


def latex_escape(text) -> str:
    """Escape LaTeX's special characters (``ROTURA_FRACTURA`` -> ``ROTURA\\_FRACTURA``)."""
    text = str(text)
    replacements = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "<": r"\textless{}",
        ">": r"\textgreater{}",
        DASH: "--",
        "·": r"$\cdot$",
        "±": r"$\pm$",
    }
    return "".join(replacements.get(ch, ch) for ch in text)


def markdown_escape(text) -> str:
    """Escape what would break a GitHub Markdown table cell or turn into emphasis/HTML."""
    text = str(text)
    for ch, rep in (("\\", "\\\\"), ("|", "\\|"), ("*", "\\*"), ("`", "\\`"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(ch, rep)
    return text


def markdown_code(text) -> str:
    """``text`` as a Markdown code span for a table cell: backticks in it get a longer fence, ``|`` is escaped."""
    text = str(text).replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()
    return slug or "section"


def _relative_link(path, folder) -> str:
    """``path`` relative to ``folder`` as a URL-quoted POSIX path (a Markdown link target)."""
    relative = Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix()
    return quote(relative)


def _data_uri(path) -> str:
    path = Path(path)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix.lower() == ".svg":
        mime = "image/svg+xml"
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:{mime};base64,{payload}"


# --------------------------------------------------------------------------------------
# view models: generic tables the templates lay out (HTML, Markdown, LaTeX alike)
# --------------------------------------------------------------------------------------
def _cell(text, *, std=None, best=False, numeric=False, delta=None, delta_class="") -> dict:
    # delta: the difference to a reference row, shown after the value; delta_class: "better" / "worse"
    return {"text": str(text), "std": std, "best": bool(best), "numeric": bool(numeric),
            "delta": delta, "delta_class": delta_class}


def _value_cell(row, col: _Col, best: str | None = None) -> dict:
    """A metric cell: the mean, its std when several seeds ran, bold when it is the column's best."""
    value = row.get(col.key)
    text = fmt_number(value, col.decimals)
    std = None
    std_value = row.get(f"{col.key}_std")
    if col.show_std and not _isnan(value) and not _isnan(std_value) and row["n_seeds"] > 1:
        std = fmt_number(std_value, col.decimals)
    return _cell(text, std=std, best=(best == text and text != DASH), numeric=True)


def _best_values(frame: pd.DataFrame, columns: list[_Col]) -> dict[str, str]:
    """Best displayed value per column (compared after rounding, so ties are all bold)."""
    best = {}
    for col in columns:
        if col.better is None or col.key not in frame or len(frame) < 2:
            continue
        values = pd.to_numeric(frame[col.key], errors="coerce").dropna()
        if values.empty:
            continue
        # compare what the reader sees: the numbers as formatted; no bold when all tie
        shown = [fmt_number(v, col.decimals) for v in values]
        if len(set(shown)) < 2:
            continue
        best[col.key] = (max if col.better == "max" else min)(shown, key=float)
    return best


def _key_columns(multi_seed: bool) -> list[dict]:
    columns = [
        {"label": "Family", "tex": "Family", "numeric": False},
        {"label": "Model", "tex": "Model", "numeric": False},
        {"label": "Res. (px)", "tex": "Res.", "numeric": True},
        {"label": "Phase", "tex": "Phase", "numeric": False},
    ]
    if multi_seed:
        columns.append({"label": "Seeds", "tex": "$n$", "numeric": True})
    return columns


def _res_text(resolution) -> str:
    value = _num(resolution)
    return DASH if math.isnan(value) else str(int(value)) if value.is_integer() else str(resolution)


def _key_cells(row, multi_seed: bool) -> list[dict]:
    cells = [
        _cell(family_label(row["family"])),
        _cell(row["model"]),
        _cell(_res_text(row["resolution"]), numeric=True),
        _cell(phase_label(row["phase"])),
    ]
    if multi_seed:
        cells.append(_cell(int(row["n_seeds"]), numeric=True))
    return cells


def _metric_table(frame: pd.DataFrame, columns: list[_Col], *, caption: str, key: str,
                  group_headers: list[dict] | None = None) -> dict:
    multi_seed = bool(len(frame)) and int(frame["n_seeds"].max()) > 1
    best = _best_values(frame, columns)
    head = _key_columns(multi_seed) + [
        {"label": c.label, "long": c.long, "tex": c.tex, "numeric": True} for c in columns
    ]
    rows = []
    previous_family = None
    for _, row in frame.iterrows():
        cells = _key_cells(row, multi_seed)
        cells += [_value_cell(row, col, best.get(col.key)) for col in columns]
        family_start = row["family"] != previous_family
        rows.append({
            "cells": cells,
            "family_start": family_start,
            "first_row": previous_family is None,
            "family": family_label(row["family"]),
        })
        previous_family = row["family"]
    table = {
        "key": key,
        "caption": caption,
        "columns": head,
        "rows": rows,
        "n_key_columns": len(_key_columns(multi_seed)),
        "group_headers": group_headers,
        "group_first_column": True,  # the first column (family) groups rows
    }
    return table


def _per_class_view(frame: pd.DataFrame, metric: str) -> dict:
    names = frame.attrs.get("classes", [])
    columns = [_Col(name, name, latex_escape(name), 3, "max", show_std=False) for name in names]
    return _metric_table(frame, columns, key="per_class", caption=f"Per-class {metric}")


def _operating_view(frame: pd.DataFrame) -> dict:
    multi_seed = bool(len(frame)) and int(frame["n_seeds"].max()) > 1
    n_keys = len(_key_columns(multi_seed))
    iou = frame["iou_threshold"].dropna().unique().tolist() if len(frame) else []
    iou_text = f" (IoU ≥ {iou[0]:g})" if len(iou) == 1 else ""
    groups = [
        {"label": "", "span": n_keys},
        {"label": "at the best-F1 threshold" + iou_text, "span": 4},
        {"label": "at the configured threshold" + iou_text, "span": 4},
    ]
    return _metric_table(frame, OPERATING_COLUMNS, key="operating_points",
                         caption="Operating points", group_headers=groups)


def _delta(value, col: _Col) -> tuple[str | None, str]:
    """The difference to the vanilla row as shown (``+0.034``) and whether it is an improvement."""
    if _isnan(value):
        return None, ""
    text = f"{float(value):+.{col.decimals}f}"
    if float(text) == 0:
        return f"{0:+.{col.decimals}f}", ""  # no "-0.000": a change too small to show is no change
    return text, "better" if (float(text) > 0) == (col.better == "max") else "worse"


def _multimodal_columns(frame: pd.DataFrame) -> list[_Col]:
    metric = frame.attrs.get("metric", "AP50")
    columns = [_Col("mAP", "mAP", "mAP"), _Col("AP50", "AP50", r"AP$_{50}$")]
    # per-class values without their std, as in the per-class table: the spread is in mAP and AP50
    columns += [_Col(name, name, latex_escape(name), show_std=False, long=f"{metric} {name}")
                for name in frame.attrs["classes"]]
    pair = frame.attrs.get("pair")
    if pair:
        for key, (gt, predicted) in zip(pair_columns(pair), (pair, pair[::-1])):
            # counts are whole numbers with one seed; a mean over seeds needs a decimal
            decimals = 0 if all(float(v).is_integer() for v in frame[key].dropna()) else 1
            columns.append(_Col(key, f"{gt} → {predicted}", rf"{latex_escape(gt)}$\to${latex_escape(predicted)}",
                                decimals, "min", long=f"GT {gt} as {predicted}"))
    return columns


def _multimodal_view(frame: pd.DataFrame) -> dict:
    """The phases/controls table: one group per (model, resolution), every value with its delta."""
    multi_seed = bool(len(frame)) and int(frame["n_seeds"].max()) > 1
    columns = _multimodal_columns(frame)
    keys = [
        {"label": "Model", "tex": "Model", "numeric": False},
        {"label": "Res. (px)", "tex": "Res.", "numeric": True},
        {"label": "Run", "tex": "Run", "numeric": False},
    ] + ([{"label": "Seeds", "tex": "$n$", "numeric": True}] if multi_seed else [])
    n_classes, n_pair = len(frame.attrs["classes"]), len(columns) - 2 - len(frame.attrs["classes"])
    groups = [{"label": "", "span": len(keys) + 2}, {"label": f"per-class {frame.attrs.get('metric', 'AP50')}",
                                                      "span": n_classes}]
    if n_pair:
        groups.append({"label": "swaps (test boxes)", "span": n_pair})
    rows = []
    previous = None
    for _, row in frame.iterrows():
        cells = [_cell(row["model"]), _cell(_res_text(row["resolution"]), numeric=True), _cell(row["phase_label"])]
        if multi_seed:
            cells.append(_cell(int(row["n_seeds"]), numeric=True))
        for col in columns:
            cell = _value_cell(row, col)
            cell["delta"], cell["delta_class"] = _delta(row.get(f"{col.key}_delta"), col)
            cells.append(cell)
        group = (row["model"], row["resolution"])
        rows.append({"cells": cells, "family_start": group != previous, "first_row": previous is None,
                     "family": row["model"]})
        previous = group
    return {
        "key": "multimodal",
        "caption": "Multimodal extension",
        "columns": keys + [{"label": c.label, "long": c.long, "tex": c.tex, "numeric": True} for c in columns],
        "rows": rows,
        "n_key_columns": len(keys),
        "group_headers": groups,
        "group_first_column": True,  # the model is written once per (model, resolution) group
    }


def _prompts_view(text_prompts_json) -> dict | None:
    """The class prompts the text encoder embedded, and which encoder, from ``class_prompts.json``."""
    if not text_prompts_json:
        return None
    record = read_json(text_prompts_json)
    encoder = record.get("encoder") or {}
    details = [f"{key} {encoder[key]}" for key in ("pooling", "dim") if encoder.get(key) is not None]
    return {
        "rows": [{"name": str(name), "prompt": " ".join(str(prompt).split())}  # one line in a table cell
                 for name, prompt in zip(record.get("categories") or [], record.get("prompts") or [])],
        "template": record.get("template"),
        "encoder": encoder.get("model"),
        "encoder_details": ", ".join(details),
        "path": str(text_prompts_json),
    }


_SPLIT_ORDER = ("train", "val", "test")


def _statistics_view(statistics: dict | None) -> dict | None:
    """Two plain tables from the statistics JSON: per split, and per class x split."""
    if not statistics:
        return None
    splits = statistics.get("splits") or {}
    split_names = sorted(splits, key=lambda s: (_SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else len(_SPLIT_ORDER), s))

    def count(value):
        return DASH if _isnan(value) or value is None else str(value)

    summary = {
        "key": "splits",
        "caption": "Images and boxes per split",
        "columns": [
            {"label": "Split", "tex": "Split", "numeric": False},
            {"label": "Images", "tex": "Images", "numeric": True},
            {"label": "Boxes", "tex": "Boxes", "numeric": True},
            {"label": "Images without boxes", "tex": "Empty", "numeric": True},
        ],
        "rows": [],
        "n_key_columns": 1,
        "group_headers": None,
    }
    for name in split_names:
        split = splits[name] or {}
        summary["rows"].append({"cells": [
            _cell(name),
            _cell(count(split.get("images")), numeric=True),
            _cell(count(split.get("boxes")), numeric=True),
            _cell(count(split.get("empty_images")), numeric=True),
        ], "family_start": False, "first_row": False, "family": ""})

    # class order: the categories list (by id), then any other name seen in per_class
    names: list[str] = []
    for category in sorted(statistics.get("categories") or [], key=lambda c: _num(c.get("id"))):
        if category.get("name") is not None:
            names.append(str(category["name"]))
    for name in split_names:
        for entry in (splits[name] or {}).get("per_class") or []:
            if entry.get("name") is not None and str(entry["name"]) not in names:
                names.append(str(entry["name"]))

    per_class = {
        "key": "class_statistics",
        "caption": "Boxes per class (images with the class) and boxes by COCO size: small / medium / large",
        "columns": [{"label": "Class", "tex": "Class", "numeric": False}],
        "rows": [],
        "n_key_columns": 1,
        "group_headers": None,
    }
    for name in split_names:
        per_class["columns"].append({"label": f"{name}: boxes (images)", "tex": f"{latex_escape(name)} boxes", "numeric": True})
        per_class["columns"].append({"label": f"{name}: S / M / L", "tex": f"{latex_escape(name)} S/M/L", "numeric": True})
    for class_name in names:
        cells = [_cell(class_name)]
        for name in split_names:
            entries = {str(e.get("name")): e for e in (splits[name] or {}).get("per_class") or []}
            entry = entries.get(class_name, {})
            if entry:
                cells.append(_cell(f"{count(entry.get('boxes'))} ({count(entry.get('images'))})", numeric=True))
                cells.append(_cell(" / ".join(count(entry.get(k)) for k in ("small", "medium", "large")), numeric=True))
            else:
                cells += [_cell(DASH, numeric=True), _cell(DASH, numeric=True)]
        per_class["rows"].append({"cells": cells, "family_start": False, "first_row": False, "family": ""})
    return {"summary": summary, "per_class": per_class if names else None}


def _training_appendix(runs: list[dict]) -> list[dict]:
    rows = []
    for run in runs:
        training = run.get("training") or {}
        speed = run.get("speed") or {}
        seconds = _num(training.get("train_seconds"))
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
            "best_val_AP50": fmt_number(_num(training.get("best_val_AP50"))),
            "train_time": duration,
            "device": str(speed.get("device") or DASH),
            "path": run["metrics_path"],
        })
    return rows


def _box_count(dataset: dict):
    """Boxes of the evaluation split: ``boxes`` (``annotations`` is the JSON's path; older files held the count)."""
    boxes = dataset.get("boxes", dataset.get("annotations"))
    return boxes if isinstance(boxes, int) else None


def _dataset_notes(runs: list[dict]) -> tuple[str, list[str]]:
    """One line describing the evaluation data, and warnings when runs disagree."""
    seen = {}
    for run in runs:
        dataset = run.get("dataset") or {}
        key = (
            dataset.get("split"),
            dataset.get("images"),
            _box_count(dataset),
            tuple(str(c.get("name")) for c in dataset.get("categories") or []),
        )
        seen.setdefault(key, []).append(run_label(run))
    warnings = []
    if len(seen) > 1:
        warnings.append(
            "The runs were not all evaluated on the same data (split, image or box counts or "
            "classes differ), so their numbers are not directly comparable: "
            + "; ".join(
                f"{k[0]} split, {k[1]} images, {k[2]} boxes: {len(v)} run(s)" for k, v in seen.items()
            )
        )
    counts: dict[tuple, int] = {}
    for run in runs:
        meta = run["run"]
        key = tuple(meta.get(k) for k in GROUP_KEYS + ["seed"])
        counts[key] = counts.get(key, 0) + 1
    for key, n in counts.items():
        if n > 1:
            warnings.append(f"{n} metrics files describe the same run ({' · '.join(str(k) for k in key)}); all are averaged.")
    if not seen:
        return "", warnings
    split, images, annotations, _ = next(iter(seen))
    if split is None and images is None and annotations is None:
        return "", warnings
    line = f"{split or 'evaluation'} split" + (f", {images} images" if images is not None else "") + (
        f", {annotations} boxes" if annotations is not None else "")
    return line, warnings


# --------------------------------------------------------------------------------------
# provenance appendix: what produced the numbers (metrics' ``provenance`` block)
# --------------------------------------------------------------------------------------
def _distinct(runs: list[dict], value) -> list[dict]:
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
        parts.append("portable CPU kernels (the same bytes on any x86-64 CPU with AVX2)" if kernels.get("applied") else
                     "portable CPU kernels asked for, not applicable on this CPU" if kernels.get("portable") else
                     "native CPU kernels of this machine (numbers may differ on another CPU)")
    return " · ".join(parts) or "not recorded"


def _provenance_view(runs: list[dict]) -> dict:
    """The provenance appendix: code, versions, devices, dataset checksums and each run's configuration.

    Every part lists its distinct values; the runs each applies to are shown when they differ
    (``mixed``). Runs without a ``provenance`` block (older metrics files) are named in ``missing``.
    """
    recorded = [run for run in runs if isinstance(run.get("provenance"), dict)]
    missing = [run_label(run) for run in runs if not isinstance(run.get("provenance"), dict)]
    if not recorded:
        return {"recorded": False, "missing": missing}

    def prov(run, key):
        return run["provenance"].get(key)

    code = []
    for group in _distinct(recorded, lambda r: prov(r, "git")):
        git = group["value"] if isinstance(group["value"], dict) else None
        commit = str(git.get("commit") or "") if git else ""
        code.append({"commit": commit, "short": commit[:12], "git": git is not None,
                     "dirty": bool(git and git.get("dirty")), "runs": group["runs"]})

    version_groups = _distinct(recorded, lambda r: prov(r, "versions") or {})
    names = list(dict.fromkeys(name for g in version_groups for name in g["value"]))
    version_rows = []
    for name in names:
        values = [DASH if name not in g["value"] else str(g["value"][name] or "not installed") for g in version_groups]
        version_rows.append({"name": name, "versions": values, "differs": len(set(values)) > 1})

    splits = list(dict.fromkeys(s for run in recorded for s in (prov(run, "dataset") or {})))
    splits.sort(key=lambda s: (_SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else len(_SPLIT_ORDER), s))
    dataset, dataset_warnings = [], []
    for split in splits:
        seen = [run for run in recorded if split in (prov(run, "dataset") or {})]
        groups = _distinct(seen, lambda r: prov(r, "dataset")[split] or {})
        for group in groups:
            entry = group["value"]
            dataset.append({"split": split, "annotations": str(entry.get("annotations") or DASH),
                            "images": DASH if entry.get("images") is None else str(entry["images"]),
                            "annotations_sha256": _digest(entry.get("annotations_sha256")),
                            "images_sha256": _digest(entry.get("images_sha256")),
                            "runs": ["all runs"] if len(group["runs"]) == len(recorded) else group["runs"]})
        if len({(g["value"].get("annotations_sha256"), g["value"].get("images_sha256")) for g in groups}) > 1:
            dataset_warnings.append(f"Runs saw different data in the {split} split (the checksums differ).")

    configs = []
    for run in recorded:
        text = json.dumps(prov(run, "config"), indent=2, ensure_ascii=False, default=str)
        # a Markdown fence longer than any backtick run in the JSON
        fence = "`" * max(3, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
        configs.append({"label": run_label(run), "json": text, "fence": fence})

    devices = _distinct(recorded, lambda r: {"device": prov(r, "device"), "kernels": prov(r, "kernels")})
    return {
        "recorded": True,
        "missing": missing,
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


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------
def _environments(templates_dir):
    import jinja2

    loader = jinja2.FileSystemLoader(str(templates_dir))
    common = dict(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    html = jinja2.Environment(autoescape=True, **common)
    markdown = jinja2.Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True, **common)
    markdown.filters["md"] = markdown_escape
    markdown.filters["code"] = markdown_code
    latex = jinja2.Environment(
        autoescape=False,
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_statement_prefix="%%",
        line_comment_prefix="%#",
        trim_blocks=True,
        lstrip_blocks=True,
        **common,
    )
    latex.filters["tex"] = latex_escape
    return html, markdown, latex


def _write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)  # mkstemp creates 0600; a report is meant to be read by others


def _default_templates_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "report" / "templates"


def _figure_item(kind: str, title: str, path, md_dir: Path) -> dict:
    path = Path(path)
    exists = path.is_file()
    return {
        "kind": kind,
        "title": title,
        "uri": _data_uri(path) if exists else None,
        "missing": not exists,
        "path": str(path),
        "relpath": _relative_link(path, md_dir),
    }


def _without_uris(sections: list[dict]) -> list[dict]:
    """Figure sections for the Markdown, which links the files and never uses the data URIs."""
    return [dict(s, figures=[dict(f, uri=None) for f in s["figures"]]) for s in sections]


def _multimodal_sections(figures: dict, md_dir: Path) -> list[dict]:
    """One section per (model, resolution, seed) label with its two cross-run figures, in the given order."""
    sections = []
    for label, kinds in (figures or {}).items():
        items = [_figure_item(kind, title, kinds[kind], md_dir)
                 for kind, title in MULTIMODAL_FIGURE_KINDS.items() if (kinds or {}).get(kind)]
        sections.append({"label": label, "id": "multimodal-" + _slug(label), "figures": items})
    return sections


def _figure_sections(figures: dict, runs: list[dict], md_dir: Path, summaries: dict) -> list[dict]:
    order = {run_label(run): i for i, run in enumerate(runs)}
    labels = sorted(figures or {}, key=lambda lab: (order.get(lab, len(order)), list(figures).index(lab)))
    sections = []
    used_ids = set()
    for label in labels:
        kinds = figures[label] or {}
        ordered = [k for k in FIGURE_KINDS if k in kinds] + [k for k in kinds if k not in FIGURE_KINDS]
        items = []
        for kind in ordered:
            path = kinds[kind]
            if path is None:
                continue
            title = FIGURE_KINDS.get(kind, str(kind).replace("_", " ").capitalize())
            items.append(_figure_item(kind, title, path, md_dir))
        anchor = "run-" + _slug(label)
        while anchor in used_ids:
            anchor += "-x"
        used_ids.add(anchor)
        sections.append({"label": label, "id": anchor, "figures": items, "summary": summaries.get(label)})
    return sections


def _run_summaries(runs: list[dict]) -> dict[str, str]:
    out = {}
    for run in runs:
        coco = run.get("coco") or {}
        best = (run.get("operating_points") or {}).get("best_f1") or {}
        parts = [
            f"mAP {fmt_number(_num(coco.get('AP')))}",
            f"AP50 {fmt_number(_num(coco.get('AP50')))}",
            f"AR@100 {fmt_number(_num(coco.get('AR100')))}",
        ]
        if best:
            parts.append(
                f"best F1 {fmt_number(_num(best.get('f1')))} at score ≥ {fmt_number(_num(best.get('score_threshold')), 2)}"
            )
        out[run_label(run)] = " · ".join(parts)
    return out


def render_report(
    *,
    metrics_paths: list,
    statistics_json=None,
    statistics_png=None,
    figures: dict[str, dict[str, str]] | None = None,
    out_html,
    out_md,
    out_tables_dir,
    templates_dir=None,
    title: str = "Detector comparison",
    multimodal_figures: dict[str, dict[str, str]] | None = None,
    text_prompts_json=None,
    confusion_pair: list[str] | None = None,
    out_multimodal_tex=None,
) -> None:
    """Render ``out_html`` (self-contained), ``out_md``, ``out_tables_dir/{runs,per_class_ap50}.tex``
    and ``out_multimodal_tex`` (default ``out_tables_dir/multimodal.tex``).

    ``figures`` maps a run label (see :func:`run_label`) to ``{kind: image path}`` with kinds
    such as ``training_curves``, ``per_class_ap``, ``pr_curves``, ``confusion_matrix``,
    ``predictions`` (any subset; other kinds are shown after these).

    The "Multimodal extension" section appears only when phase runs exist (see
    :func:`detstudy.report.tables.multimodal_table`): ``multimodal_figures`` maps a label such as
    ``deimv2_demo 192px seed 0`` (:func:`multimodal_label`) to ``{"similarity": png,
    "pair_confusion": png}``, ``text_prompts_json`` is the ``class_prompts.json`` of the text
    embeddings and ``confusion_pair`` the two classes whose swaps are counted. Without phase runs
    the multimodal ``.tex`` still exists (a Snakemake output) and says so in a LaTeX comment.
    Every output is written atomically.
    """
    templates_dir = Path(templates_dir) if templates_dir is not None else _default_templates_dir()
    out_html, out_md, out_tables_dir = Path(out_html), Path(out_md), Path(out_tables_dir)
    out_multimodal_tex = Path(out_multimodal_tex) if out_multimodal_tex else out_tables_dir / "multimodal.tex"
    figures = figures or {}

    runs = load_runs(metrics_paths)
    frame = runs_table(runs)
    per_class = per_class_table(runs, "AP50")
    operating = operating_points_table(runs)
    statistics = read_json(statistics_json) if statistics_json else None
    stats_png = Path(statistics_png) if statistics_png else None
    data_line, warnings = _dataset_notes(runs)

    tables = {
        "runs": _metric_table(frame, RUN_COLUMNS, key="runs", caption="Detector comparison"),
        "per_class": _per_class_view(per_class, "AP50"),
        "operating_points": _operating_view(operating),
    }
    multi_seed = bool(len(frame)) and int(frame["n_seeds"].max()) > 1
    stats_view = _statistics_view(statistics)
    appendix = _training_appendix(runs)

    def stats_figure(md_dir: Path):
        if stats_png is None:
            return None
        exists = stats_png.is_file()
        return {
            "title": "Dataset statistics",
            "uri": _data_uri(stats_png) if exists else None,
            "missing": not exists,
            "path": str(stats_png),
            "relpath": _relative_link(stats_png, md_dir),
        }

    md_dir = out_md.parent
    multimodal = None
    if any(is_phase_run(run) for run in runs):
        multimodal = {
            "table": _multimodal_view(multimodal_table(runs, "AP50", confusion_pair or None)),
            "pair": list(confusion_pair or []),
            "prompts": _prompts_view(text_prompts_json),
            "sections": _multimodal_sections(multimodal_figures, md_dir),
        }
    context = {
        "title": title,
        "tables": tables,
        "multi_seed": multi_seed,
        "n_runs": len(runs),
        "n_rows": len(frame),
        "families": [family_label(f) for f in dict.fromkeys(frame["family"].tolist())] if len(frame) else [],
        "data_line": data_line,
        "warnings": warnings,
        "statistics": stats_view,
        "sections": _figure_sections(figures, runs, md_dir, _run_summaries(runs)),
        "appendix": appendix,
        "multimodal": multimodal,
        "provenance": _provenance_view(runs),
        "dash": DASH,
    }
    html_env, md_env, tex_env = _environments(templates_dir)

    html = html_env.get_template("index.html.j2").render(**context, statistics_figure=stats_figure(out_html.parent))
    _write_text(out_html, html)

    md_context = dict(context, statistics_figure=stats_figure(md_dir))
    # the Markdown needs no embedded images: drop the data URIs it would never use
    md_context["sections"] = _without_uris(context["sections"])
    if multimodal:
        md_context["multimodal"] = dict(multimodal, sections=_without_uris(multimodal["sections"]))
    _write_text(out_md, md_env.get_template("report.md.j2").render(**md_context))

    tex_context = {"tables": tables, "multi_seed": multi_seed, "data_line": data_line, "dash": DASH,
                   "multimodal": multimodal}
    _write_text(out_tables_dir / "runs.tex", tex_env.get_template("runs_table.tex.j2").render(**tex_context))
    _write_text(out_tables_dir / "per_class_ap50.tex", tex_env.get_template("per_class_ap50.tex.j2").render(**tex_context))
    _write_text(out_multimodal_tex, tex_env.get_template("multimodal.tex.j2").render(**tex_context))
