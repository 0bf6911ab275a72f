"""The report: every run's metrics in one HTML page, one Markdown file and LaTeX tables.

Input is the per-run ``metrics.json`` described in ``docs/metrics_schema.md`` (one file
per model x resolution x phase x seed, all evaluated with the same protocol), the dataset
statistics JSON and the per-run figures. Output:

* ``index.html``: one self-contained page (figures embedded as ``data:`` URIs, inline CSS,
  no external assets, no JavaScript);
* ``report.md``: the same tables in GitHub Markdown, figures linked relative to the file;
* ``runs.tex`` and ``per_class_ap50.tex``: booktabs ``table`` environments to ``\\input``
  into a thesis.

The numbers are computed here (pandas); the layout lives in Jinja templates
(``report/templates``) that only know about generic tables, so new models, phases or
controls need no template change.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import os
import re
from pathlib import Path
from urllib.parse import quote
from typing import Any, Iterable

import pandas as pd

from detstudy.io import atomic_path, read_json

#: Families in the order the thesis compares them; any other family sorts after these.
FAMILY_ORDER = ("cnn", "vit", "multimodal")
FAMILY_LABELS = {"cnn": "CNN", "vit": "ViT", "multimodal": "Multimodal"}

#: The columns that identify one row of the comparison tables (seeds are aggregated).
GROUP_KEYS = ["family", "model", "resolution", "phase"]

#: Figure kinds in display order, with their titles; unknown kinds follow in given order.
FIGURE_KINDS = {
    "training_curves": "Training curves",
    "per_class_ap": "Per-class AP",
    "pr_curves": "Precision–recall curves",
    "confusion_matrix": "Confusion matrix",
    "predictions": "Predictions",
}

DASH = "–"  # what a missing number (None / NaN) renders as


# --------------------------------------------------------------------------------------
# metric columns: key in the tables, where it comes from, how it is shown
# --------------------------------------------------------------------------------------
class _Col:
    def __init__(self, key, label, tex, decimals=3, better="max", show_std=True, long=None):
        self.key = key
        self.label = label  # plain text (HTML, under a group header when there is one)
        self.long = long or label  # plain text that stands alone (Markdown has no group headers)
        self.tex = tex  # raw LaTeX header
        self.decimals = decimals
        self.better = better  # "max", "min" or None (no bold)
        self.show_std = show_std


RUN_COLUMNS = [
    _Col("params_M", "Params (M)", r"Params (M)", 1, "min", show_std=False),
    _Col("mAP", "mAP", r"mAP", 3),
    _Col("AP50", "AP50", r"AP$_{50}$", 3),
    _Col("AP75", "AP75", r"AP$_{75}$", 3),
    _Col("APs", "APs", r"AP$_{S}$", 3),
    _Col("APm", "APm", r"AP$_{M}$", 3),
    _Col("APl", "APl", r"AP$_{L}$", 3),
    _Col("AR100", "AR@100", r"AR$_{100}$", 3),
    _Col("latency_ms", "Latency (ms/img)", r"Latency (ms/img)", 1, "min"),
]

OPERATING_COLUMNS = [
    _Col("best_f1_threshold", "score thr.", r"thr.", 3, None, show_std=False, long="best-F1 thr."),
    _Col("best_f1_precision", "P", r"P", 3, long="P (best F1)"),
    _Col("best_f1_recall", "R", r"R", 3, long="R (best F1)"),
    _Col("best_f1_f1", "F1", r"F$_1$", 3, long="F1 (best F1)"),
    _Col("configured_threshold", "score thr.", r"thr.", 3, None, show_std=False, long="configured thr."),
    _Col("configured_precision", "P", r"P", 3, long="P (configured)"),
    _Col("configured_recall", "R", r"R", 3, long="R (configured)"),
    _Col("configured_f1", "F1", r"F$_1$", 3, long="F1 (configured)"),
]


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def _num(value) -> float:
    """A JSON number (or None / missing) as a float; None becomes NaN."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _isnan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _natural_key(text) -> tuple:
    parts = re.split(r"(\d+)", str(text))
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p != "")


def family_rank(family) -> tuple:
    fam = str(family or "").lower()
    if fam in FAMILY_ORDER:
        return (FAMILY_ORDER.index(fam), "")
    return (len(FAMILY_ORDER), fam)


def family_label(family) -> str:
    return FAMILY_LABELS.get(str(family).lower(), str(family))


def _phase_key(phase) -> tuple:
    # "base" (the vanilla model) first, then phase1 < phase2 < ... < phase10, then the rest.
    phase = str(phase if phase is not None else "")
    return (0 if phase in ("base", "") else 1, _natural_key(phase))


def _res_key(resolution) -> tuple:
    value = _num(resolution)
    return (1, 0.0) if math.isnan(value) else (0, value)


def _sort_key(meta: dict) -> tuple:
    seed = _num(meta.get("seed"))
    return (
        family_rank(meta.get("family")),
        str(meta.get("model", "")),
        _res_key(meta.get("resolution")),
        _phase_key(meta.get("phase")),
        (1, 0.0) if math.isnan(seed) else (0, seed),
    )


def run_label(run: dict) -> str:
    """The label a run's figures are filed under, e.g. ``frcnn_r18 · 256 px · base · seed 0``.

    Accepts a metrics dict (with a ``run`` block) or the ``run`` block itself.
    """
    meta = run.get("run", run)
    return (
        f"{meta.get('model')} · {meta.get('resolution')} px · "
        f"{meta.get('phase', 'base')} · seed {meta.get('seed')}"
    )


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
# loading and aggregation
# --------------------------------------------------------------------------------------
def load_runs(metrics_paths: Iterable) -> list[dict]:
    """Read every metrics JSON; each dict gets ``metrics_path`` (the file it came from).

    Sorted by family (cnn, vit, multimodal, then others alphabetically), model,
    resolution, phase (base first, then phase1, phase2, ...) and seed.
    """
    runs = []
    for path in metrics_paths:
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("run"), dict):
            raise ValueError(f"{path}: not a metrics JSON (no 'run' block); see docs/metrics_schema.md")
        data["metrics_path"] = str(path)
        runs.append(data)
    runs.sort(key=lambda r: _sort_key(r["run"]))
    return runs


def _flat_record(run: dict) -> dict:
    meta = run.get("run", {})
    coco = run.get("coco") or {}
    params = run.get("params") or {}
    speed = run.get("speed") or {}
    ops = run.get("operating_points") or {}
    total = _num(params.get("total"))
    record = {
        "family": str(meta.get("family", "other")),
        "model": str(meta.get("model", "?")),
        "resolution": meta.get("resolution"),
        "phase": str(meta.get("phase", "base")),
        "seed": meta.get("seed"),
        "params_M": total / 1e6,
        "mAP": _num(coco.get("AP")),
        "AP50": _num(coco.get("AP50")),
        "AP75": _num(coco.get("AP75")),
        "APs": _num(coco.get("APs")),
        "APm": _num(coco.get("APm")),
        "APl": _num(coco.get("APl")),
        "AR100": _num(coco.get("AR100")),
        "latency_ms": _num(speed.get("latency_ms_per_image")),
    }
    for name in ("best_f1", "configured"):
        point = ops.get(name) or {}
        record[f"{name}_threshold"] = _num(point.get("score_threshold"))
        record[f"{name}_precision"] = _num(point.get("precision"))
        record[f"{name}_recall"] = _num(point.get("recall"))
        record[f"{name}_f1"] = _num(point.get("f1"))
    record["iou_threshold"] = _num(ops.get("iou_threshold"))
    return record


def _aggregate(records: list[dict], value_columns: list[str], with_std: bool) -> pd.DataFrame:
    """Mean (and sample std, ddof=1) over seeds for each (family, model, resolution, phase)."""
    if not records:
        columns = GROUP_KEYS + ["n_seeds", "seeds"] + value_columns
        if with_std:
            columns += [f"{c}_std" for c in value_columns]
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame.from_records(records)
    for column in value_columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    rows = []
    # records are already in report order; keep first-appearance order of the groups
    for key, group in frame.groupby(GROUP_KEYS, sort=False, dropna=False):
        row = dict(zip(GROUP_KEYS, key))
        seeds = [s for s in group["seed"].tolist() if not _isnan(s)]
        row["n_seeds"] = int(len(group))
        row["seeds"] = ", ".join(str(s) for s in seeds)
        for column in value_columns:
            values = group[column]
            row[column] = float(values.mean(skipna=True)) if values.notna().any() else math.nan
            if with_std:
                std = values.std(skipna=True, ddof=1) if values.notna().sum() > 1 else math.nan
                row[f"{column}_std"] = float(std)
        rows.append(row)
    out = pd.DataFrame(rows)
    if with_std:
        ordered = GROUP_KEYS + ["n_seeds", "seeds"]
        for column in value_columns:
            ordered += [column, f"{column}_std"]
        out = out[ordered]
    return out.reset_index(drop=True)


def runs_table(runs: list[dict]) -> pd.DataFrame:
    """One row per (family, model, resolution, phase), seeds aggregated.

    Columns: family, model, resolution, phase, n_seeds, seeds, then for each of
    ``params_M, mAP, AP50, AP75, APs, APm, APl, AR100, latency_ms`` the mean over seeds
    and ``<name>_std`` (sample standard deviation; NaN with a single seed). COCO values
    that are null in the metrics (no ground truth in that size range) are NaN.
    """
    runs = sorted(runs, key=lambda r: _sort_key(r.get("run", {})))
    records = [_flat_record(r) for r in runs]
    return _aggregate(records, [c.key for c in RUN_COLUMNS], with_std=True)


def operating_points_table(runs: list[dict]) -> pd.DataFrame:
    """Precision / recall / F1 at the best-F1 score threshold and at the configured one.

    Same rows as :func:`runs_table`; columns ``best_f1_{threshold,precision,recall,f1}``,
    ``configured_{...}`` and ``iou_threshold`` (means over seeds, with ``_std`` columns).
    """
    runs = sorted(runs, key=lambda r: _sort_key(r.get("run", {})))
    records = [_flat_record(r) for r in runs]
    return _aggregate(records, [c.key for c in OPERATING_COLUMNS] + ["iou_threshold"], with_std=True)


def class_names(runs: list[dict]) -> list[str]:
    """The dataset's class names in its own order (union over runs, first seen first)."""
    names: list[str] = []
    for run in runs:
        categories = (run.get("dataset") or {}).get("categories") or []
        ordered = [c.get("name") for c in sorted(categories, key=lambda c: _num(c.get("id")))] if categories else []
        ordered += [c.get("name") for c in run.get("per_class") or []]
        for name in ordered:
            if name is not None and str(name) not in names:
                names.append(str(name))
    return names


def per_class_table(runs: list[dict], metric: str = "AP50") -> pd.DataFrame:
    """Rows as in :func:`runs_table` (family, model, resolution, phase, n_seeds, seeds);
    one column per class (the dataset's own names, in its order) with ``metric`` from
    ``per_class`` averaged over seeds. ``df.attrs["classes"]`` lists the class columns."""
    runs = sorted(runs, key=lambda r: _sort_key(r.get("run", {})))
    names = class_names(runs)
    records = []
    for run in runs:
        base = _flat_record(run)
        record = {k: base[k] for k in GROUP_KEYS + ["seed"]}
        values = {str(c.get("name")): _num(c.get(metric)) for c in run.get("per_class") or []}
        for name in names:
            record[name] = values.get(name, math.nan)
        records.append(record)
    table = _aggregate(records, names, with_std=False)
    table.attrs["classes"] = names
    table.attrs["metric"] = metric
    return table


# --------------------------------------------------------------------------------------
# view models: generic tables the templates lay out (HTML, Markdown, LaTeX alike)
# --------------------------------------------------------------------------------------
def _cell(text, *, std=None, best=False, numeric=False) -> dict:
    return {"text": str(text), "std": std, "best": bool(best), "numeric": bool(numeric)}


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


def _key_cells(row, multi_seed: bool) -> list[dict]:
    resolution = row["resolution"]
    value = _num(resolution)
    res_text = DASH if math.isnan(value) else str(int(value)) if value.is_integer() else str(resolution)
    cells = [
        _cell(family_label(row["family"])),
        _cell(row["model"]),
        _cell(res_text, numeric=True),
        _cell(row["phase"]),
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
        for col in columns:
            value = row.get(col.key)
            text = fmt_number(value, col.decimals)
            std = None
            std_value = row.get(f"{col.key}_std")
            if col.show_std and not _isnan(value) and not _isnan(std_value) and row["n_seeds"] > 1:
                std = fmt_number(std_value, col.decimals)
            cells.append(_cell(text, std=std, best=(best.get(col.key) == text and text != DASH), numeric=True))
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


def _dataset_notes(runs: list[dict]) -> tuple[str, list[str]]:
    """One line describing the evaluation data, and warnings when runs disagree."""
    seen = {}
    for run in runs:
        dataset = run.get("dataset") or {}
        key = (
            dataset.get("split"),
            dataset.get("images"),
            dataset.get("annotations"),
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
# rendering
# --------------------------------------------------------------------------------------
def _environments(templates_dir):
    import jinja2

    loader = jinja2.FileSystemLoader(str(templates_dir))
    common = dict(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    html = jinja2.Environment(autoescape=True, **common)
    markdown = jinja2.Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True, **common)
    markdown.filters["md"] = markdown_escape
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
    return Path(__file__).resolve().parents[2] / "report" / "templates"


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
            path = Path(path)
            title = FIGURE_KINDS.get(kind, str(kind).replace("_", " ").capitalize())
            exists = path.is_file()
            items.append({
                "kind": kind,
                "title": title,
                "uri": _data_uri(path) if exists else None,
                "missing": not exists,
                "path": str(path),
                "relpath": _relative_link(path, md_dir),
            })
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
) -> None:
    """Render ``out_html`` (self-contained), ``out_md`` and ``out_tables_dir/{runs,per_class_ap50}.tex``.

    ``figures`` maps a run label (see :func:`run_label`) to ``{kind: image path}`` with kinds
    such as ``training_curves``, ``per_class_ap``, ``pr_curves``, ``confusion_matrix``,
    ``predictions`` (any subset; other kinds are shown after these). Every output is
    written atomically.
    """
    templates_dir = Path(templates_dir) if templates_dir is not None else _default_templates_dir()
    out_html, out_md, out_tables_dir = Path(out_html), Path(out_md), Path(out_tables_dir)
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
        "dash": DASH,
    }
    html_env, md_env, tex_env = _environments(templates_dir)

    html = html_env.get_template("index.html.j2").render(**context, statistics_figure=stats_figure(out_html.parent))
    _write_text(out_html, html)

    md_context = dict(context, statistics_figure=stats_figure(md_dir))
    # the Markdown needs no embedded images: drop the data URIs it would never use
    md_context["sections"] = [
        dict(s, figures=[dict(f, uri=None) for f in s["figures"]]) for s in context["sections"]
    ]
    _write_text(out_md, md_env.get_template("report.md.j2").render(**md_context))

    tex_context = {"tables": tables, "multi_seed": multi_seed, "data_line": data_line, "dash": DASH}
    _write_text(out_tables_dir / "runs.tex", tex_env.get_template("runs_table.tex.j2").render(**tex_context))
    _write_text(out_tables_dir / "per_class_ap50.tex", tex_env.get_template("per_class_ap50.tex.j2").render(**tex_context))
