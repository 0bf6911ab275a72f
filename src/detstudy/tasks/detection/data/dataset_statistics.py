"""Dataset statistics: boxes per class and per COCO size bucket, for every split.

``count_splits`` reads only the annotation files (no image is opened).
Run ``detstudy.tasks.detection.data.checks.check_dataset`` first: this module assumes a valid
dataset and raises ``DatasetError`` on the few things it cannot count.

Boxes are counted as COCO's AP_S/M/L count them: crowd regions (``iscrowd: 1``) are left
out (counted apart, as ``crowd_regions``), and the size bucket comes from the annotation's
``area`` field (the mask area for segmentations), or ``width * height`` of the bbox where
the field is missing, as the evaluation fills it in:

* small:  area <  32**2 (1024 px^2)
* medium: 32**2 <= area < 96**2 (9216 px^2)
* large:  area >= 96**2

The returned dict (JSON-serialisable)::

    {
      "size_thresholds": {"small_below": 1024, "medium_below": 9216},
      "categories": [{"id": 1, "name": "NORMAL"}, ...],        # first split's list, sorted by id
      "splits": {
        "train": {
          "annotations": "path/to/train.json",
          "images": 715,            # images in the split
          "boxes": 944,             # annotations in the split, crowd regions left out
          "crowd_regions": 0,       # iscrowd annotations (ignored by COCO's AP)
          "empty_images": 12,       # images without any box
          "small": 300, "medium": 500, "large": 144,             # boxes per size bucket, all classes
          "box_width":  {"min":.., "p25":.., "median":.., "p75":.., "max":..},   # px; values are
          "box_height": {"min":.., "p25":.., "median":.., "p75":.., "max":..},   # null when no boxes
          "image_width":  {"min":.., "median":.., "max":..},                      # px, from the JSON
          "image_height": {"min":.., "median":.., "max":..},
          "per_class": [
            {"id": 1, "name": "NORMAL", "images": 400, "boxes": 420,
             "small": 10, "medium": 200, "large": 210,
             "median_width": 80.0, "median_height": 64.0},      # null when the class has no box
            ...                                                   # one entry per category, sorted by id
          ]
        },
        "val": {...}, "test": {...}
      }
    }

``per_class[i]["images"]`` counts the images containing at least one box of the class.
Categories are always reported with the dataset's own ids and names.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from detstudy.engine.io import save_figure
from detstudy.tasks.dataset_errors import DatasetError
from detstudy.tasks.detection.data.coco import SplitPaths, load_coco_json

SMALL_BELOW = 32 ** 2
MEDIUM_BELOW = 96 ** 2
SIZE_BUCKETS = ("small", "medium", "large")


def size_bucket(area: float) -> str:
    """COCO size bucket of an object from its area."""
    if area < SMALL_BELOW:
        return "small"
    if area < MEDIUM_BELOW:
        return "medium"
    return "large"


def _quantiles(values: list[float], keys: tuple[str, ...]) -> dict[str, float | None]:
    points = {"min": 0.0, "p10": 10.0, "p25": 25.0, "median": 50.0, "p75": 75.0, "p90": 90.0, "max": 100.0}
    if not values:
        return {k: None for k in keys}
    array = np.asarray(values, dtype=float)
    return {k: round(float(np.percentile(array, points[k])), 3) for k in keys}


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def _split_statistics(name: str, paths: SplitPaths) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ann = str(paths.annotations)
    data = load_coco_json(paths.annotations)
    categories = sorted(({"id": int(c["id"]), "name": str(c["name"])} for c in data["categories"]),
                        key=lambda c: c["id"])
    per_class = {c["id"]: {"id": c["id"], "name": c["name"], "images": 0, "boxes": 0,
                           "small": 0, "medium": 0, "large": 0} for c in categories}
    class_images: dict[int, set] = {cid: set() for cid in per_class}
    class_sizes: dict[int, tuple[list[float], list[float]]] = {cid: ([], []) for cid in per_class}
    image_ids = [image["id"] for image in data["images"]]
    known_images = set(image_ids)
    boxed_images: set = set()
    widths: list[float] = []
    heights: list[float] = []
    totals = dict.fromkeys(SIZE_BUCKETS, 0)
    crowd = 0

    for annotation in data["annotations"]:
        aid, cid, iid = annotation.get("id"), annotation.get("category_id"), annotation.get("image_id")
        if cid not in per_class:
            raise DatasetError(f"{ann}: annotation {aid}: category_id {cid!r} is not among the categories. "
                               "Fix: run the dataset check (detstudy.tasks.detection.data.checks.check_dataset) and correct the file.")
        bbox = annotation.get("bbox")
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4
                and all(isinstance(v, (int, float)) and math.isfinite(v) for v in bbox)):
            raise DatasetError(f"{ann}: annotation {aid}: bbox {bbox!r} is not 4 numbers. "
                               "Fix: run the dataset check (detstudy.tasks.detection.data.checks.check_dataset) and correct the file.")
        if annotation.get("iscrowd", 0):
            crowd += 1
            continue
        w, h = float(bbox[2]), float(bbox[3])
        area = annotation.get("area")
        bucket = size_bucket(float(area) if isinstance(area, (int, float)) and math.isfinite(area) else w * h)
        entry = per_class[cid]
        entry["boxes"] += 1
        entry[bucket] += 1
        totals[bucket] += 1
        class_images[cid].add(iid)
        class_sizes[cid][0].append(w)
        class_sizes[cid][1].append(h)
        widths.append(w)
        heights.append(h)
        if iid in known_images:
            boxed_images.add(iid)

    rows = []
    for cid, entry in per_class.items():
        entry["images"] = len(class_images[cid])
        entry["median_width"] = _median(class_sizes[cid][0])
        entry["median_height"] = _median(class_sizes[cid][1])
        rows.append(entry)

    image_widths = [float(i["width"]) for i in data["images"] if isinstance(i.get("width"), (int, float))]
    image_heights = [float(i["height"]) for i in data["images"] if isinstance(i.get("height"), (int, float))]
    box_keys = ("min", "p25", "median", "p75", "max")
    image_keys = ("min", "median", "max")
    split = {
        "annotations": ann,
        "images": len(set(image_ids)),
        "boxes": len(data["annotations"]) - crowd,
        "crowd_regions": crowd,
        "empty_images": len(known_images - boxed_images),
        **totals,
        "box_width": _quantiles(widths, box_keys),
        "box_height": _quantiles(heights, box_keys),
        "image_width": _quantiles(image_widths, image_keys),
        "image_height": _quantiles(image_heights, image_keys),
        "per_class": rows,
    }
    return split, categories


def count_splits(splits: dict[str, SplitPaths]) -> dict:
    """Per split and per class: images containing the class, boxes, small/medium/large boxes.

    Also per split: totals (images, boxes, empty images, boxes per size bucket), box
    width/height quantiles (median among them) and image size range. Categories are
    reported with the dataset's own ids and names; the top-level ``categories`` is the
    first split's list (all splits share it once ``check_dataset`` passed). See the
    module docstring for the exact JSON shape.
    """
    result: dict[str, Any] = {
        "size_thresholds": {"small_below": SMALL_BELOW, "medium_below": MEDIUM_BELOW},
        "categories": [],
        "splits": {},
    }
    for name, paths in splits.items():
        paths = paths if isinstance(paths, SplitPaths) else SplitPaths.of(*paths)
        split, categories = _split_statistics(name, paths)
        if not result["categories"]:
            result["categories"] = categories
        result["splits"][name] = split
    return result


_COLOURS = {"small": "#d95f02", "medium": "#7570b3", "large": "#1b9e77"}


def plot_statistics(stats: dict, out_png: str | Path) -> None:
    """Draw boxes per class, stacked by COCO size bucket, one panel per split; save as PNG.

    Uses a bare ``matplotlib.figure.Figure`` (rendered with the Agg canvas), so it
    never touches the interactive backend; saved with ``detstudy.engine.io.save_figure``.
    """
    from matplotlib.figure import Figure

    split_items = list(stats.get("splits", {}).items())
    n_panels = max(1, len(split_items))
    n_classes = max((len(s["per_class"]) for _, s in split_items), default=1)
    panel_width = max(3.5, 0.55 * n_classes + 1.5)
    figure = Figure(figsize=(panel_width * n_panels, 4.6), layout="constrained")
    axes = figure.subplots(1, n_panels, squeeze=False)[0]
    for ax in axes:
        ax.set_axis_off()

    for ax, (name, split) in zip(axes, split_items):
        ax.set_axis_on()
        rows = split["per_class"]
        x = np.arange(len(rows))
        bottom = np.zeros(len(rows))
        for bucket in SIZE_BUCKETS:
            values = np.array([row[bucket] for row in rows], dtype=float)
            ax.bar(x, values, 0.7, bottom=bottom, color=_COLOURS[bucket], label=bucket,
                   edgecolor="white", linewidth=0.5)
            bottom += values
        top = float(bottom.max()) if len(bottom) else 0.0
        for xi, total in zip(x, bottom):
            ax.text(xi, total + top * 0.01, f"{int(total)}", ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, top * 1.12 if top > 0 else 1)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{row['name']} ({row['id']})" for row in rows],
                           rotation=35, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_ylabel("boxes")
        ax.set_title(f"{name}: {split['boxes']} boxes, {split['images']} images "
                     f"({split['empty_images']} empty)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)

    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        names = {"small": f"small (< {32}² px)", "medium": f"medium (< {96}² px)", "large": f"large (≥ {96}² px)"}
        figure.legend(handles, [names.get(l, l) for l in labels], loc="outside lower center",
                      ncols=len(handles), fontsize=9, frameon=False)
    figure.suptitle("Boxes per class (dataset id) and COCO size bucket (box area)", fontsize=11)
    save_figure(figure, out_png)
