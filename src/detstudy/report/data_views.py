"""View models of the data the runs saw: split and class statistics, the class prompts, and a
note when runs were not evaluated on the same data."""

from __future__ import annotations

from detstudy.engine.io import read_json
from detstudy.report.formatting import DASH, cell, latex_escape, split_rank
from detstudy.study.grid import run_label
from detstudy.report.tables import GROUP_KEYS, is_missing, as_number


def prompts_view(text_prompts_json) -> dict | None:
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


def statistics_view(statistics: dict | None) -> dict | None:
    """Two plain tables from the statistics JSON: per split, and per class x split."""
    if not statistics:
        return None
    splits = statistics.get("splits") or {}
    split_names = sorted(splits, key=split_rank)

    def count(value):
        return DASH if is_missing(value) or value is None else str(value)

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
            cell(name),
            cell(count(split.get("images")), numeric=True),
            cell(count(split.get("boxes")), numeric=True),
            cell(count(split.get("empty_images")), numeric=True),
        ], "family_start": False, "first_row": False, "family": ""})

    # class order: the categories list (by id), then any other name seen in per_class
    names: list[str] = []
    for category in sorted(statistics.get("categories") or [], key=lambda c: as_number(c.get("id"))):
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
        cells = [cell(class_name)]
        for name in split_names:
            entries = {str(e.get("name")): e for e in (splits[name] or {}).get("per_class") or []}
            entry = entries.get(class_name, {})
            if entry:
                cells.append(cell(f"{count(entry.get('boxes'))} ({count(entry.get('images'))})", numeric=True))
                cells.append(cell(" / ".join(count(entry.get(k)) for k in ("small", "medium", "large")), numeric=True))
            else:
                cells += [cell(DASH, numeric=True), cell(DASH, numeric=True)]
        per_class["rows"].append({"cells": cells, "family_start": False, "first_row": False, "family": ""})
    return {"summary": summary, "per_class": per_class if names else None}



def dataset_notes(runs: list[dict]) -> tuple[str, list[str]]:
    """One line describing the evaluation data, and warnings when runs disagree."""
    seen = {}
    for run in runs:
        dataset = run.get("dataset") or {}
        key = (
            dataset.get("split"),
            dataset.get("images"),
            dataset.get("boxes"),
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
