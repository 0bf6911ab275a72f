"""Validate the splits of a COCO detection dataset before any training starts.

``check_dataset`` reads every split's annotation file (and, by default, opens
every image), collects *all* the problems it finds and raises one
``DatasetError`` that lists them, each naming the annotation file, the item
(image id, annotation id, file name) and the fix. When nothing is wrong it
returns a ``CheckReport`` with counts and the warnings worth knowing about.

Errors (training would fail or silently learn from wrong data):

* annotation file missing, not JSON, or without the ``images`` /
  ``annotations`` / ``categories`` lists;
* an image file missing, unreadable, or of another size than the JSON says;
* a box that is not four finite numbers, has a non-positive width or height,
  or lies outside its image (more than ``BORDER_TOLERANCE`` px beyond a border);
* an annotation whose image id or category id is unknown; duplicate image,
  annotation or category ids within a file; ids that are not integers;
* categories (the set of ``(id, name)`` pairs) that differ between splits;
* (warning) boxes that look like ``[x1, y1, x2, y2]`` written where COCO expects ``[x, y, w, h]``;
* a split without images.

Warnings (the data is usable; the report records them and they are also
emitted with ``warnings.warn`` as ``DatasetWarning``):

* images that are not 8-bit RGB (grayscale, RGBA, palette, 16-bit, CMYK...):
  they are converted to RGB at load time; counted per mode;
* images without boxes: they are kept as background negatives; counted;
* the same file name used by several images of a split;
* a split with no annotations at all.

Category ids that are 1-based or have gaps are *not* errors: models map them
to contiguous labels with ``CategoryMap``.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detstudy.tasks.dataset_errors import DatasetError, DatasetWarning
from detstudy.tasks.images import probe_image
from detstudy.tasks.detection.data.coco import SplitPaths, images_digest, load_coco_json

#: A box may reach this many pixels beyond an image border (rounding in exporters).
BORDER_TOLERANCE = 1.0

_BOX_FIX = "Fix: remove the annotation or correct its bbox (COCO boxes are [x, y, width, height])."


@dataclass
class CheckReport:
    """What ``check_dataset`` found in a dataset that passed.

    ``splits[name]`` holds: ``annotations`` (path, str), ``images`` (folder, str),
    ``n_images``, ``n_annotations``, ``n_empty_images`` (images without boxes),
    ``converted_modes`` ({Pillow mode: number of images} for images that are not
    RGB and are converted at load time; empty when images were not opened) and, when the
    images were read, ``images_sha256`` (``coco.images_digest`` of them, from the same read).
    ``categories`` is ``[{"id": .., "name": ..}]`` sorted by id, as in the dataset.
    """

    splits: dict[str, dict[str, Any]]
    categories: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "splits": {name: dict(info, converted_modes=dict(info.get("converted_modes", {})))
                       for name, info in self.splits.items()},
            "categories": [dict(c) for c in self.categories],
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- helpers


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _fmt(value: Any) -> str:
    """Short, readable rendering of a JSON value for a message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _num(value: float) -> str:
    return f"{value:g}"


class _Collector:
    """Errors and warnings for one run; errors keep their discovery order."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []


def _image_label(image_id: Any, images_by_id: dict[Any, dict]) -> str:
    image = images_by_id.get(image_id)
    if image is not None and isinstance(image.get("file_name"), str):
        return f"image {_fmt(image_id)}, {image['file_name']!r}"
    return f"image {_fmt(image_id)}"


def _check_categories(ann: str, data: dict, out: _Collector) -> dict[int, str] | None:
    """Validate the category list; return {id: name} (None if ids are unusable)."""
    categories: dict[int, str] = {}
    usable = True
    for position, category in enumerate(data["categories"]):
        if not isinstance(category, dict):
            out.errors.append(f"{ann}: categories[{position}] is {_fmt(category)}, not an object. "
                              "Fix: give every category an integer 'id' and a 'name'.")
            usable = False
            continue
        cid, name = category.get("id"), category.get("name")
        if not _is_int(cid):
            out.errors.append(f"{ann}: categories[{position}] (name {_fmt(name)}) has id {_fmt(cid)}, "
                              "not an integer. Fix: give every category an integer 'id'.")
            usable = False
            continue
        if not isinstance(name, str) or not name:
            out.errors.append(f"{ann}: category {cid} has name {_fmt(name)}. "
                              "Fix: give every category a non-empty string 'name'.")
            name = str(name)
        if cid in categories:
            out.errors.append(f"{ann}: duplicate category id {cid} ({categories[cid]!r} and {name!r}). "
                              "Fix: give every category its own id.")
            continue
        categories[cid] = name
    if not data["categories"]:
        out.errors.append(f"{ann}: the category list is empty. Fix: list the classes under 'categories'.")
    return categories if usable else None


def _check_split(name: str, paths: SplitPaths, *, check_images: bool,
                 out: _Collector) -> tuple[dict[str, Any], dict[int, str] | None]:
    """Check one split; append its problems to ``out``; return (summary, categories)."""
    ann = str(paths.annotations)
    summary: dict[str, Any] = {
        "annotations": ann, "images": str(paths.images),
        "n_images": 0, "n_annotations": 0, "n_empty_images": 0, "converted_modes": {},
    }
    try:
        data = load_coco_json(paths.annotations)
    except DatasetError as error:
        out.errors.append(str(error))
        return summary, None

    categories = _check_categories(ann, data, out)

    # ---- images
    images_by_id: dict[Any, dict] = {}
    declared_sizes: dict[Any, tuple[Any, Any]] = {}
    file_names: Counter[str] = Counter()
    for position, image in enumerate(data["images"]):
        if not isinstance(image, dict):
            out.errors.append(f"{ann}: images[{position}] is {_fmt(image)}, not an object. "
                              "Fix: give every image an 'id', 'file_name', 'width' and 'height'.")
            continue
        iid, file_name = image.get("id"), image.get("file_name")
        label = f"image {_fmt(iid)}" + (f", {file_name!r}" if isinstance(file_name, str) else "")
        if not _is_int(iid):
            out.errors.append(f"{ann}: images[{position}] ({label}) has id {_fmt(iid)}, not an integer. "
                              "Fix: give every image a unique integer 'id'.")
            continue
        if iid in images_by_id:
            other = images_by_id[iid].get("file_name")
            out.errors.append(f"{ann}: duplicate image id {iid} ({other!r} and {file_name!r}). "
                              "Fix: give every image a unique 'id' and update the annotations' image_id.")
            continue
        images_by_id[iid] = image
        if not isinstance(file_name, str) or not file_name:
            out.errors.append(f"{ann}: image {iid} has file_name {_fmt(file_name)}. "
                              "Fix: set 'file_name' to the image's path relative to the images folder.")
        else:
            file_names[file_name] += 1
        width, height = image.get("width"), image.get("height")
        if not (_is_number(width) and _is_number(height) and width > 0 and height > 0):
            out.errors.append(f"{ann}: {label}: width/height are {_fmt(width)}/{_fmt(height)}, expected "
                              "positive numbers. Fix: set 'width' and 'height' to the image's size in pixels.")
        else:
            declared_sizes[iid] = (width, height)
    summary["n_images"] = len(images_by_id)
    if not data["images"]:
        out.errors.append(f"{ann}: split '{name}' has no images. "
                          "Fix: point the split at a non-empty COCO file (every split needs images).")

    duplicated = {f: n for f, n in file_names.items() if n > 1}
    if duplicated:
        shown = ", ".join(f"{f!r} x{n}" for f, n in list(duplicated.items())[:5])
        more = f" and {len(duplicated) - 5} more" if len(duplicated) > 5 else ""
        out.warnings.append(f"{ann}: {len(duplicated)} file name(s) used by several images in split "
                            f"'{name}': {shown}{more}. They point at the same picture; check the export.")

    # ---- image files
    if check_images and images_by_id:
        folder = Path(paths.images)
        if not folder.is_dir():
            out.errors.append(f"{ann}: images folder {folder} not found (split '{name}', "
                              f"{len(images_by_id)} images). Fix: check the images path in your config.")
        else:
            modes: Counter[str] = Counter()
            digests: list[tuple[str, str]] = []
            for iid, image in images_by_id.items():
                file_name = image.get("file_name")
                if not isinstance(file_name, str) or not file_name:
                    continue
                path = folder / file_name
                label = f"image {iid}, {file_name!r}"
                if not path.is_file():
                    out.errors.append(f"{ann}: {label}: file {path} not found. "
                                      "Fix: add the file or remove the image and its annotations from the JSON.")
                    continue
                size, mode, problem, digest = probe_image(path)
                digests.append((file_name, digest))
                if problem is not None:
                    out.errors.append(f"{ann}: {label}: file {path} {problem}. "
                                      "Fix: replace the file with a valid image or remove the image "
                                      "and its annotations from the JSON.")
                    continue
                if mode != "RGB":
                    modes[mode] += 1
                declared = declared_sizes.get(iid)
                if declared is not None and (declared[0] != size[0] or declared[1] != size[1]):
                    out.errors.append(
                        f"{ann}: {label}: the file is {size[0]}x{size[1]} px but the JSON says "
                        f"{_num(declared[0])}x{_num(declared[1])} (width x height). Fix: set 'width'/'height' "
                        "to the real size, or re-export the split if the boxes refer to another size.")
            summary["converted_modes"] = dict(sorted(modes.items()))
            if len(digests) == len(images_by_id):  # every image read: the split's checksum
                summary["images_sha256"] = images_digest(digests)
            if modes:
                counts = ", ".join(f"{n} {m}" for m, n in sorted(modes.items()))
                out.warnings.append(f"{ann}: {sum(modes.values())} image(s) of split '{name}' are not RGB "
                                    f"({counts}); they are converted to RGB at load time.")

    # ---- annotations
    annotation_ids: set[int] = set()
    boxed_images: set[Any] = set()
    n_annotations = 0
    corner_like = []  # boxes whose width and height exceed x and y: all of them if written as xyxy
    for position, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict):
            out.errors.append(f"{ann}: annotations[{position}] is {_fmt(annotation)}, not an object. "
                              "Fix: give every annotation an 'id', 'image_id', 'category_id' and 'bbox'.")
            continue
        n_annotations += 1
        aid, iid, cid = annotation.get("id"), annotation.get("image_id"), annotation.get("category_id")
        where = f"annotation {_fmt(aid)} ({_image_label(iid, images_by_id)})"
        if not _is_int(aid):
            out.errors.append(f"{ann}: annotations[{position}] ({_image_label(iid, images_by_id)}) has id "
                              f"{_fmt(aid)}, not an integer. Fix: give every annotation a unique integer 'id'.")
        elif aid in annotation_ids:
            out.errors.append(f"{ann}: duplicate annotation id {aid} ({_image_label(iid, images_by_id)}). "
                              "Fix: give every annotation a unique 'id' (renumber them 1..N).")
        else:
            annotation_ids.add(aid)

        if iid not in images_by_id:
            out.errors.append(f"{ann}: {where}: image_id {_fmt(iid)} is not in the file's image list. "
                              "Fix: remove the annotation or add the image to 'images'.")
        else:
            boxed_images.add(iid)

        if categories is not None and (not _is_int(cid) or cid not in categories):
            known = ", ".join(str(c) for c in sorted(categories))
            out.errors.append(f"{ann}: {where}: category_id {_fmt(cid)} is not among the categories "
                              f"({known}). Fix: correct the category_id or add the category to 'categories'.")

        bbox = annotation.get("bbox")
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            out.errors.append(f"{ann}: {where}: bbox {_fmt(bbox)} is not 4 finite numbers. {_BOX_FIX}")
            continue
        x, y, w, h = bbox
        corner_like.append(w > x and h > y)
        if w <= 0 or h <= 0:
            which = " and ".join(part for part, v in (("width", w), ("height", h)) if v <= 0)
            out.errors.append(f"{ann}: {where}: box {_fmt(list(bbox))} has non-positive {which}. {_BOX_FIX}")
            continue
        size = declared_sizes.get(iid)
        if size is not None:
            width, height = size
            t = BORDER_TOLERANCE
            if x < -t or y < -t or x + w > width + t or y + h > height + t:
                out.errors.append(
                    f"{ann}: {where}: box {_fmt(list(bbox))} (x {_num(x)}..{_num(x + w)}, y {_num(y)}..{_num(y + h)}) "
                    f"lies outside the {_num(width)}x{_num(height)} image (tolerance {_num(t)} px). {_BOX_FIX}")
    summary["n_annotations"] = n_annotations
    if _looks_like_xyxy(corner_like):
        out.warnings.append(
            f"{ann}: the boxes of split '{name}' look like [x1, y1, x2, y2]: in {sum(corner_like)} of "
            f"{len(corner_like)} boxes the width exceeds x and the height exceeds y, as when the corners are "
            "written where COCO expects [x, y, width, height] (true of every box then, of few boxes otherwise). "
            "Fix: if so, convert each bbox to [x1, y1, x2 - x1, y2 - y1].")
    empty = len(set(images_by_id) - boxed_images)
    summary["n_empty_images"] = empty
    if images_by_id and n_annotations == 0:
        out.warnings.append(f"{ann}: split '{name}' has no annotations at all; "
                            "no model can learn from it or be scored on it.")
    elif empty:
        out.warnings.append(f"{ann}: {empty} of {len(images_by_id)} image(s) of split '{name}' have no boxes; "
                            "they are used as background negatives.")
    return summary, categories


def _looks_like_xyxy(corner_like: list[bool], min_boxes: int = 10, fraction: float = 0.9) -> bool:
    """xyxy given as xywh makes "width" = x2 > x1 = x and "height" = y2 > y1 = y for every box;
    real xywh boxes spread over the image satisfy both only near the top-left corner."""
    return len(corner_like) >= min_boxes and sum(corner_like) >= fraction * len(corner_like)


def _compare_categories(reference: tuple[str, str, dict[int, str]],
                        other: tuple[str, str, dict[int, str]]) -> str | None:
    ref_name, ref_ann, ref_cats = reference
    name, ann, cats = other
    ref_pairs, pairs = set(ref_cats.items()), set(cats.items())
    if ref_pairs == pairs:
        return None
    parts = []
    renamed = sorted(c for c in set(ref_cats) & set(cats) if ref_cats[c] != cats[c])
    if renamed:
        parts.append("renamed: " + ", ".join(f"id {c} is {cats[c]!r} here but {ref_cats[c]!r} in {ref_name}"
                                              for c in renamed))
    missing = sorted(set(ref_cats) - set(cats))
    if missing:
        parts.append("missing: " + ", ".join(f"{c} {ref_cats[c]!r}" for c in missing))
    extra = sorted(set(cats) - set(ref_cats))
    if extra:
        parts.append(f"not in {ref_name}: " + ", ".join(f"{c} {cats[c]!r}" for c in extra))
    return (f"{ann}: the categories of split '{name}' differ from split '{ref_name}' ({ref_ann}): "
            + "; ".join(parts) + ". Fix: export every split with the same category list (same ids and names).")


def _reference_categories(name: str, annotations: str | Path) -> tuple[str, str, dict[int, str]] | None:
    """The categories of a split checked by its own job (whose errors that job reports)."""
    try:
        categories = _check_categories(str(annotations), load_coco_json(annotations), _Collector())
    except DatasetError:
        return None
    return None if categories is None else (name, str(annotations), categories)


# --------------------------------------------------------------------------- entry point


def check_dataset(splits: dict[str, SplitPaths], *, check_images: bool = True,
                  max_errors: int = 20, reference: tuple[str, str | Path] | None = None) -> CheckReport:
    """Check every split; raise ``DatasetError`` listing the problems, or return the report.

    ``splits`` maps a split name ("train", "val", "test") to its ``SplitPaths``.
    With ``check_images=False`` the image files are not opened (JSON-only checks).
    ``reference`` (split name, annotation file) names a split checked elsewhere whose
    categories these splits must share: only its category list is read.
    The error message lists the first ``max_errors`` problems, then "... and N more".
    Warnings go into ``CheckReport.warnings`` and are emitted as ``DatasetWarning``.
    """
    if not splits:
        raise DatasetError("no dataset splits given. Fix: configure the train/val/test annotation files and image folders.")
    out = _Collector()
    summaries: dict[str, dict[str, Any]] = {}
    categories_of: dict[str, tuple[str, str, dict[int, str]]] = {}
    for name, paths in splits.items():
        paths = paths if isinstance(paths, SplitPaths) else SplitPaths.of(*paths)
        summary, categories = _check_split(name, paths, check_images=check_images, out=out)
        summaries[name] = summary
        if categories is not None:
            categories_of[name] = (name, str(paths.annotations), categories)

    if reference is not None and reference[0] not in categories_of:
        reference_categories = _reference_categories(*reference)
        if reference_categories is not None:
            categories_of = {reference[0]: reference_categories, **categories_of}
    if categories_of:
        reference_name = reference[0] if reference and reference[0] in categories_of else (
            "train" if "train" in categories_of else next(iter(categories_of)))
        for name, other in categories_of.items():
            if name != reference_name:
                problem = _compare_categories(categories_of[reference_name], other)
                if problem:
                    out.errors.append(problem)

    if out.errors:
        n = len(out.errors)
        shown = out.errors[:max(1, max_errors)]
        lines = [f"the dataset has {n} problem(s):"] + [f"  - {e}" for e in shown]
        if n > len(shown):
            lines.append(f"  ... and {n - len(shown)} more")
        raise DatasetError("\n".join(lines))

    reference_split = categories_of.get("train") or next(iter(categories_of.values()))
    categories = [{"id": cid, "name": cname} for cid, cname in sorted(reference_split[2].items())]
    for message in out.warnings:
        warnings.warn(message, DatasetWarning, stacklevel=2)
    return CheckReport(splits=summaries, categories=categories, warnings=list(out.warnings))
