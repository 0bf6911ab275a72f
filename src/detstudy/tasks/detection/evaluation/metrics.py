"""COCO AP and precision/recall at an operating score threshold, with one protocol for every model.

Inputs are always the same two things:

* ``gt``: a COCO annotation dict (as returned by :func:`detstudy.tasks.detection.data.coco.load_coco_json`);
* ``detections``: a list in COCO *results* format, ``{"image_id", "category_id", "bbox": [x, y, w, h],
  "score"}``, with the dataset's own category ids and boxes in original image pixels.

Neither is ever modified. Detections whose image is not in ``gt`` or whose category is not one of
``gt``'s categories cannot be evaluated: every function here drops them the same way (with a warning),
so COCO AP, operating points and the confusion matrix always look at the same detections. Crowd
regions (``iscrowd: 1``) are treated as pycocotools treats them, everywhere: they are not boxes to
find, and a detection that falls on one (intersection over the detection's own area >= the IoU
threshold) is neither a true nor a false positive.

All results keep the dataset's category ids and names, in category-id order.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Callable

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detstudy.tasks.detection.evaluation.coco_inputs import (box_iou_xywh, categories_of, clean_detections,
                                                             gt_annotations, overlaps_crowd)

__all__ = [
    "COCO_STAT_NAMES",
    "coco_evaluate",
    "operating_point",
    "best_f1_operating_point",
    "box_iou_xywh",
]

#: Names of the 12 numbers of ``COCOeval.stats``, in order.
COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _none_if_negative(value: float) -> float | None:
    value = float(value)
    return None if value < 0 else value


def _mean_valid(values: np.ndarray) -> float | None:
    """Mean of the entries > -1 (pycocotools marks 'no ground truth' with -1); None if there are none."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else None


# --------------------------------------------------------------------------------------------------
# COCO AP
# --------------------------------------------------------------------------------------------------

def coco_evaluator(gt: dict, detections: list[dict]) -> COCOeval:
    """pycocotools' bbox ``COCOeval`` of ``detections`` against ``gt``, matched image by image
    (``evaluate()`` done; ``accumulate()`` not): what :func:`coco_evaluate` summarises and the
    bootstrap re-accumulates. The caller's ``gt`` and ``detections`` are not modified."""
    categories = categories_of(gt)
    images = [dict(img) for img in gt["images"]]
    results = []
    for number, det in enumerate(clean_detections(gt, detections), start=1):
        x, y, w, h = det["bbox"]
        results.append({**det, "id": number, "area": w * h, "iscrowd": 0})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "categories": [dict(c) for c in categories],
                           "annotations": gt_annotations(gt)}
        coco_gt.createIndex()
        # Built directly rather than with COCO.loadRes, which crashes on an empty list and mutates its input.
        coco_dt = COCO()
        coco_dt.dataset = {"images": images, "categories": [dict(c) for c in categories], "annotations": results}
        coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
    return evaluator


def coco_evaluate(gt: dict, detections: list[dict], errors: Callable[[Any], dict] | None = None) -> dict:
    """COCO bbox evaluation with pycocotools.

    Returns ``{"coco": {...12 numbers...}, "per_class": [...], "pr_curves": [...]}``:

    * ``coco``: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl as floats; ``None`` where
      pycocotools reports -1 (no ground truth in that area range).
    * ``per_class``: ``{"id", "name", "AP", "AP50", "gt_boxes"}`` per category in id order; AP over IoU
      .50:.95, area all, maxDets 100; ``None`` when the class has no ground-truth box.
      ``gt_boxes`` counts the class's annotations that are not crowd regions.
    * ``pr_curves``: ``{"id", "name", "AP50", "recall": [101], "precision": [101]}`` at IoU 0.5, area all,
      maxDets 100 (COCO's interpolated precision at recall 0, 0.01, ..., 1; no -1 or NaN: 0 instead).

    * ``errors`` (when ``errors`` is given): what it returns for the evaluator, the TIDE
      breakdown on the same matches with
      :func:`detstudy.tasks.detection.evaluation.errors.error_breakdown` (passed in, not imported:
      training validates with this function and must not rerun when the breakdown is edited).

    With no detections, every class and area range that has ground truth gets 0.0, not ``None``.
    The caller's ``gt`` and ``detections`` are not modified.
    """
    evaluator = coco_evaluator(gt, detections)
    categories = evaluator.cocoGt.dataset["categories"]  # the cleaned ones, built (and warned about) once
    gt_annotations = evaluator.cocoGt.dataset["annotations"]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.accumulate()
        evaluator.summarize()

    stats = evaluator.stats
    coco = {name: _none_if_negative(value) for name, value in zip(COCO_STAT_NAMES, stats)}

    params = evaluator.params
    precision = evaluator.eval["precision"]  # [T IoU, R recall, K class, A area, M maxDets]
    area_all = list(params.areaRngLbl).index("all")
    max_dets = list(params.maxDets).index(100) if 100 in params.maxDets else len(params.maxDets) - 1
    iou50 = int(np.argmin(np.abs(np.asarray(params.iouThrs) - 0.5)))
    recall_grid = [float(r) for r in params.recThrs]
    class_index = {int(c): k for k, c in enumerate(params.catIds)}

    gt_boxes: dict[int, int] = {c["id"]: 0 for c in categories}
    for ann in gt_annotations:
        if not ann["iscrowd"]:
            gt_boxes[ann["category_id"]] += 1

    per_class, pr_curves = [], []
    for cat in categories:
        k = class_index[cat["id"]]
        p_all = precision[:, :, k, area_all, max_dets]
        p50 = precision[iou50, :, k, area_all, max_dets]
        ap, ap50 = _mean_valid(p_all), _mean_valid(p50)
        per_class.append({"id": cat["id"], "name": cat["name"], "AP": ap, "AP50": ap50, "gt_boxes": gt_boxes[cat["id"]]})
        curve = np.nan_to_num(np.where(p50 > -1, p50, 0.0), nan=0.0)
        pr_curves.append({"id": cat["id"], "name": cat["name"], "AP50": ap50,
                          "recall": list(recall_grid), "precision": [float(v) for v in curve]})

    result = {"coco": coco, "per_class": per_class, "pr_curves": pr_curves}
    if errors is not None:
        result["errors"] = errors(evaluator)
    return result


# --------------------------------------------------------------------------------------------------
# operating points
# --------------------------------------------------------------------------------------------------

def _match_by_score(gt: dict, detections: list[dict], iou_threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Match every detection once; return (scores sorted descending, is-true-positive, number of GT boxes).

    Detections left unmatched that fall on a crowd region of their class are dropped (not FP).

    Per image and class, detections are taken by descending score (stable for ties) and each takes the
    unmatched GT box with the highest IoU >= ``iou_threshold``. A detection's fate depends only on
    detections with a score at least as high, so keeping those with score >= t is a prefix of this
    order and one matching serves every threshold.
    """
    dets = clean_detections(gt, detections)
    gt_by_key: dict[tuple, list[list[float]]] = {}
    crowd_by_key: dict[tuple, list[list[float]]] = {}
    n_gt = 0
    for ann in gt_annotations(gt):
        key = (ann["image_id"], ann["category_id"])
        if ann["iscrowd"]:
            crowd_by_key.setdefault(key, []).append(ann["bbox"])
        else:
            gt_by_key.setdefault(key, []).append(ann["bbox"])
            n_gt += 1
    det_by_key: dict[tuple, list[int]] = {}
    for i, det in enumerate(dets):
        det_by_key.setdefault((det["image_id"], det["category_id"]), []).append(i)

    scores = np.array([d["score"] for d in dets], dtype=np.float64)
    is_tp = np.zeros(len(dets), dtype=bool)
    ignored = np.zeros(len(dets), dtype=bool)
    for key, indices in det_by_key.items():
        gt_boxes = gt_by_key.get(key, [])
        indices = np.asarray(indices)
        indices = indices[np.argsort(-scores[indices], kind="stable")]
        if gt_boxes:
            ious = box_iou_xywh(np.array([dets[i]["bbox"] for i in indices]), np.array(gt_boxes))
            taken = np.zeros(len(gt_boxes), dtype=bool)
            for row, det_index in enumerate(indices):
                candidates = np.where(taken, -1.0, ious[row])
                best = int(np.argmax(candidates))
                if candidates[best] >= iou_threshold:
                    taken[best] = True
                    is_tp[det_index] = True
        if key in crowd_by_key:
            unmatched = indices[~is_tp[indices]]
            on_crowd = overlaps_crowd([dets[i]["bbox"] for i in unmatched], crowd_by_key[key], iou_threshold)
            ignored[unmatched[on_crowd]] = True

    scores, is_tp = scores[~ignored], is_tp[~ignored]
    order = np.argsort(-scores, kind="stable")
    return scores[order], is_tp[order], n_gt


def _point(score_threshold: float | None, tp: int, fp: int, n_gt: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / n_gt if n_gt else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "score_threshold": None if score_threshold is None else float(score_threshold),
        "precision": float(precision), "recall": float(recall), "f1": float(f1),
        "tp": int(tp), "fp": int(fp), "fn": int(n_gt - tp),
    }


def operating_point(gt: dict, detections: list[dict], score_threshold: float, iou_threshold: float = 0.5) -> dict:
    """Precision, recall, F1 and tp/fp/fn over all classes, keeping detections with score >= ``score_threshold``.

    Matching is per image and class, greedy by descending score, one GT box per detection and one
    detection per GT box, IoU >= ``iou_threshold``; no per-image cap on detections.
    Returns ``{"score_threshold", "precision", "recall", "f1", "tp", "fp", "fn"}`` (precision is 0.0 when
    nothing is kept, recall 0.0 when there is no ground truth).
    """
    scores, is_tp, n_gt = _match_by_score(gt, detections, iou_threshold)
    kept = scores >= score_threshold
    tp = int(np.count_nonzero(is_tp & kept))
    fp = int(np.count_nonzero(~is_tp & kept))
    return _point(score_threshold, tp, fp, n_gt)


def best_f1_operating_point(gt: dict, detections: list[dict], iou_threshold: float = 0.5) -> dict:
    """The :func:`operating_point` dict at the score threshold that maximises F1.

    Candidate thresholds are all distinct detection scores; ties in F1 go to the highest threshold.
    With no detections, ``score_threshold`` is ``None`` and precision, recall and F1 are 0.0.
    """
    scores, is_tp, n_gt = _match_by_score(gt, detections, iou_threshold)
    if scores.size == 0:
        return _point(None, 0, 0, n_gt)
    tp_cum = np.cumsum(is_tp)
    fp_cum = np.cumsum(~is_tp)
    # keeping score >= s keeps the prefix up to the last detection with score s
    last_of_score = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    tp = tp_cum[last_of_score].astype(np.float64)
    fp = fp_cum[last_of_score].astype(np.float64)
    precision = tp / (tp + fp)
    recall = tp / n_gt if n_gt else np.zeros_like(tp)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0)
    best = int(np.argmax(f1))  # first maximum = highest threshold
    index = last_of_score[best]
    return _point(scores[index], int(tp_cum[index]), int(fp_cum[index]), n_gt)
