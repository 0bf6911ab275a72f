"""Class-aware detection confusion matrix with a background row and column.

Rows are ground-truth classes, columns predicted classes, both in category-id order, plus
``background``: the background *row* holds false positives (detections that match no GT box),
the background *column* holds missed GT boxes. Matching follows the YOLO/Ultralytics convention:
per image, detections with score >= the threshold, class-agnostic IoU, greedy by descending IoU,
each GT box and each detection used at most once, so a correctly placed box with the wrong class
(e.g. ROTURA_FRACTURA predicted as RAYONES_ARANAZOS) lands off the diagonal.
"""

from __future__ import annotations

import numpy as np

from detstudy.tasks.detection.evaluation.coco_inputs import box_iou_xywh, categories_of, clean_detections, gt_annotations, overlaps_crowd

__all__ = ["confusion_matrix", "BACKGROUND"]

BACKGROUND = "background"


def confusion_matrix(gt: dict, detections: list[dict], *, score_threshold: float, iou_threshold: float = 0.5) -> dict:
    """Detection confusion matrix (counts).

    Returns ``{"labels": [names..., "background"], "ids": [ids..., None], "matrix": list[list[int]],
    "score_threshold", "iou_threshold"}`` where ``matrix[i][j]`` counts GT class ``i`` predicted as class
    ``j``; the last row counts unmatched detections per predicted class, the last column missed GT boxes
    per class, and the bottom-right cell is always 0. Pairs need IoU >= ``iou_threshold``.
    Detections on unknown images or with unknown category ids are ignored (with a warning), as in
    :func:`detstudy.tasks.detection.evaluation.metrics.coco_evaluate`; crowd regions are not boxes to find, and an
    unmatched detection that falls on one is not counted.
    """
    categories = categories_of(gt)
    index = {c["id"]: k for k, c in enumerate(categories)}
    background = len(categories)
    matrix = np.zeros((background + 1, background + 1), dtype=np.int64)

    gt_by_image: dict = {}
    crowd_by_image: dict = {}
    for ann in gt_annotations(gt):
        (crowd_by_image if ann["iscrowd"] else gt_by_image).setdefault(ann["image_id"], []).append(ann)
    det_by_image: dict = {}
    for det in clean_detections(gt, detections):
        if det["score"] >= score_threshold:
            det_by_image.setdefault(det["image_id"], []).append(det)

    for image_id in {**gt_by_image, **det_by_image}:  # images are independent: order does not matter
        gts = gt_by_image.get(image_id, [])
        dets = sorted(det_by_image.get(image_id, []), key=lambda d: -d["score"])  # stable: deterministic ties
        gt_classes = [index[a["category_id"]] for a in gts]
        det_classes = [index[d["category_id"]] for d in dets]
        gt_used = np.zeros(len(gts), dtype=bool)
        det_used = np.zeros(len(dets), dtype=bool)
        if gts and dets:
            ious = box_iou_xywh(np.array([a["bbox"] for a in gts]), np.array([d["bbox"] for d in dets]))
            g, d = np.nonzero(ious >= iou_threshold)
            # descending IoU; ties broken by GT order, then by detection (score) order
            order = np.lexsort((d, g, -ious[g, d]))
            for gi, di in zip(g[order], d[order]):
                if gt_used[gi] or det_used[di]:
                    continue
                gt_used[gi] = det_used[di] = True
                matrix[gt_classes[gi], det_classes[di]] += 1
        for gi in np.flatnonzero(~gt_used):
            matrix[gt_classes[gi], background] += 1
        unmatched = np.flatnonzero(~det_used)
        crowd = crowd_by_image.get(image_id)
        if crowd and unmatched.size:
            on_crowd = overlaps_crowd([dets[i]["bbox"] for i in unmatched], [a["bbox"] for a in crowd], iou_threshold)
            unmatched = unmatched[~on_crowd]
        for di in unmatched:
            matrix[background, det_classes[di]] += 1

    return {
        "labels": [c["name"] for c in categories] + [BACKGROUND],
        "ids": [c["id"] for c in categories] + [None],
        "matrix": matrix.tolist(),
        "score_threshold": float(score_threshold),
        "iou_threshold": float(iou_threshold),
    }
