"""What every COCO-based measure of the detection task starts from: a split's categories and
objects, detections cleaned the way COCOeval sees them, and box IoU (crowd regions included).
Shared by the COCO metrics, the TIDE error breakdown and the confusion matrix."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def categories_of(gt: dict) -> list[dict[str, Any]]:
    """GT categories sorted by id, as ``{"id": int, "name": str}``."""
    return [{"id": int(c["id"]), "name": str(c["name"])} for c in sorted(gt["categories"], key=lambda c: int(c["id"]))]


def clean_detections(gt: dict, detections: list[dict]) -> list[dict]:
    """Copies of the detections that can be evaluated against ``gt``; warns about the others."""
    image_ids = {img["id"] for img in gt["images"]}
    category_ids = {int(c["id"]) for c in gt["categories"]}
    kept: list[dict] = []
    bad_image = bad_category = 0
    for det in detections:
        if det["image_id"] not in image_ids:
            bad_image += 1
            continue
        if int(det["category_id"]) not in category_ids:
            bad_category += 1
            continue
        x, y, w, h = (float(v) for v in det["bbox"])
        kept.append({"image_id": det["image_id"], "category_id": int(det["category_id"]),
                     "bbox": [x, y, w, h], "score": float(det["score"])})
    if bad_image or bad_category:
        warnings.warn(
            f"{bad_image} detection(s) on images not in the ground truth and {bad_category} with a category id "
            f"not in the ground truth {sorted(category_ids)} were ignored. Fix: write detections with the "
            "dataset's image ids and category ids.",
            stacklevel=3,
        )
    return kept


def gt_annotations(gt: dict) -> list[dict]:
    """Copies of the evaluable GT annotations with the fields pycocotools needs (id, area, iscrowd)."""
    image_ids = {img["id"] for img in gt["images"]}
    category_ids = {int(c["id"]) for c in gt["categories"]}
    annotations, dropped = [], 0
    for ann in gt["annotations"]:
        if ann["image_id"] not in image_ids or int(ann["category_id"]) not in category_ids:
            dropped += 1
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        annotations.append({
            "id": len(annotations) + 1,  # renumbered: pycocotools indexes by id, so ids must be unique
            "image_id": ann["image_id"],
            "category_id": int(ann["category_id"]),
            "bbox": [x, y, w, h],
            "area": float(ann["area"]) if ann.get("area") is not None else w * h,
            "iscrowd": int(ann.get("iscrowd", 0) or 0),
        })
    if dropped:
        warnings.warn(
            f"{dropped} ground-truth annotation(s) with an image id not in 'images' or a category id not in "
            "'categories' were ignored. Fix: correct the annotation file.",
            stacklevel=3,
        )
    return annotations


def pairwise_iou(boxes_a, boxes_b, crowd: bool) -> np.ndarray:
    """pycocotools' box IoU (len(a) x len(b)) for ``[x, y, w, h]`` boxes; with ``crowd`` the
    denominator is the area of the ``a`` box, which is how COCO scores detections on crowd regions."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return np.asarray(mask_utils.iou(a, b, [int(crowd)] * len(b)), dtype=np.float64).reshape(len(a), len(b))


def box_iou_xywh(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a) x len(b)) of boxes given as ``[x, y, w, h]`` (areas as w*h, like pycocotools)."""
    return pairwise_iou(boxes_a, boxes_b, crowd=False)


def overlaps_crowd(det_boxes, crowd_boxes, iou_threshold: float) -> np.ndarray:
    """Which detections fall on a crowd region (pycocotools: intersection over the detection's area)."""
    return (pairwise_iou(det_boxes, crowd_boxes, crowd=True) >= iou_threshold).any(axis=1)
