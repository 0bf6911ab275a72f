"""Why a detector loses AP: the TIDE error breakdown (Bolya et al., *TIDE: A General Toolbox for
Identifying Object Detection Errors*, ECCV 2020), on COCOeval's own matches.

TIDE sorts every false positive at IoU 0.5 into one of five errors, by these tests in this
order, and every missed object that no error explains into a sixth:

- **localisation** (Loc): IoU in [0.1, 0.5] with an object of its class (tested first);
- **classification** (Cls): else IoU >= 0.5 with an object of another class;
- **duplicate** (Dupe): else IoU >= 0.5 with an object of its class that a higher-scored box took;
- **background** (Bkg): else IoU <= 0.1 with every object;
- **both** (Both): what is left (IoU > 0.1 with some object, neither of the above);
- **missed** (Miss): an object no detection matched and no Cls/Loc error could have.

The dAP of an error is AP50 with that error alone fixed (a Cls/Loc box becomes the true positive
of its object when it is the highest-scored such box for it, otherwise it is removed; Dupe,
Bkg and Both boxes are removed; a missed object leaves the ground truth) minus AP50 as it is,
floored at 0 as TIDE does. The false-positive dAP scores every true positive above every false
one; the false-negative dAP drops every unmatched object. The tests check all of it against
the ``tidecv`` package.

Two choices differ from ``tidecv`` on purpose, so that the breakdown starts from the number the
comparison table shows: the matches are COCOeval's (per class, at most 100 boxes per class and
image, crowd regions ignored), not TIDE's own re-matching, and AP is COCOeval's (the mean over
the classes that have ground truth; ``tidecv`` also averages in a 0 for a class with boxes but no
objects). So ``AP50`` here equals the metrics' AP50 exactly; the dAP are in AP units (0-1, not
TIDE's 0-100).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detstudy.tasks.detection.evaluation.error_kinds import ERRORS, SHORT_NAMES  # noqa: F401 (re-exported)
from detstudy.tasks.detection.evaluation.coco_inputs import box_iou_xywh

POSITIVE_IOU = 0.5
BACKGROUND_IOU = 0.1


@dataclass
class _Box:
    """One detection (or one ground-truth object) of one image, as COCOeval matched it."""
    id: int
    cls: int
    bbox: list
    score: float = 0.0
    order: tuple = ()          # COCOeval's accumulation order, which breaks score ties
    matched: bool = False
    error: str | None = None   # a detection's error, or "missed" for an object
    target: int | None = None  # the object a Cls/Loc error would have matched
    fix: bool = False          # Cls/Loc: the highest-scored error box for a free object


def _collect(evaluator) -> list[tuple[list[_Box], list[_Box]]]:
    """Per image (in COCOeval's order): its detections and its non-ignored objects at IoU 0.5,
    area 'all', the largest maxDets."""
    params = evaluator.params
    n_images, n_areas = len(params.imgIds), len(params.areaRng)
    threshold = int(np.argmin(np.abs(np.asarray(params.iouThrs) - POSITIVE_IOU)))
    gt_anns, dt_anns = evaluator.cocoGt.anns, evaluator.cocoDt.anns
    images = [([], []) for _ in range(n_images)]
    for k, _ in enumerate(params.catIds):
        for i in range(n_images):
            found = evaluator.evalImgs[k * n_areas * n_images + i]  # area index 0: 'all'
            if found is None:
                continue
            detections, objects = images[i]
            for gt_id, ignore, match in zip(found["gtIds"], found["gtIgnore"], found["gtMatches"][threshold]):
                if not ignore:
                    ann = gt_anns[gt_id]
                    objects.append(_Box(gt_id, ann["category_id"], ann["bbox"], matched=bool(match)))
            for position, (dt_id, ignore, match) in enumerate(
                    zip(found["dtIds"], found["dtIgnore"][threshold], found["dtMatches"][threshold])):
                if not ignore:  # on a crowd region (or outside the area range): no point, no error
                    ann = dt_anns[dt_id]
                    detections.append(_Box(dt_id, ann["category_id"], ann["bbox"], score=float(ann["score"]),
                                           order=(i, k, position), matched=bool(match)))
    return images


def _classify(detections: list[_Box], objects: list[_Box]) -> None:
    """TIDE's tests, in its order, for the unmatched detections of one image (highest score first)."""
    if not detections:
        for obj in objects:
            obj.error = None if obj.matched else "missed"
        return
    detections.sort(key=lambda d: -d.score)  # stable: COCOeval's order among equal scores
    iou = box_iou_xywh([d.bbox for d in detections], [o.bbox for o in objects])
    same = np.array([[d.cls == o.cls for o in objects] for d in detections], dtype=bool).reshape(iou.shape)
    taken = np.array([o.matched for o in objects], dtype=bool)
    best_score: dict[int, float] = {}
    for d, row, same_row in zip(detections, iou, same):
        if d.matched:
            continue
        if not objects:
            d.error = "background"
            continue
        same_iou, other_iou, taken_iou = row * same_row, row * ~same_row, row * same_row * taken
        j = int(same_iou.argmax())
        if BACKGROUND_IOU <= same_iou[j] <= POSITIVE_IOU:
            d.error, d.target = "localisation", j
        elif other_iou[(j := int(other_iou.argmax()))] >= POSITIVE_IOU:
            d.error, d.target = "classification", j
        elif taken_iou.max() >= POSITIVE_IOU:
            d.error = "duplicate"
        elif row.max() <= BACKGROUND_IOU:
            d.error = "background"
        else:
            d.error = "both"
        if d.target is not None and not taken[d.target] and d.score > best_score.get(d.target, -1.0):
            best_score[d.target] = d.score
    fixed_objects = set()
    for d in detections:  # TIDE fixes the first (highest-scored) error box of each free object
        if d.target is not None and not taken[d.target] and d.target not in fixed_objects \
                and d.score == best_score[d.target]:
            fixed_objects.add(d.target)
            d.fix = True
    targeted = {d.target for d in detections if d.target is not None and not taken[d.target]}
    for j, obj in enumerate(objects):  # missed: unmatched, and no Cls/Loc error points at it
        obj.error = None if obj.matched or j in targeted else "missed"


def _average_precision(points: dict[int, list], n_objects: dict[int, int], recall_thresholds: np.ndarray,
                       classes: list[int]) -> float:
    """COCOeval's AP at one IoU: per class, detections by descending score (ties in ``order``),
    the precision envelope read at the recall thresholds; the mean over ``classes`` (those with
    objects before any fix; one that a fix leaves without objects scores 0, as in ``tidecv``)."""
    aps = []
    for cls in classes:
        n_gt = n_objects.get(cls, 0)
        if n_gt <= 0:
            aps.append(0.0)
            continue
        chosen = sorted(points.get(cls, []), key=lambda p: p[1])
        scores = np.array([p[0] for p in chosen], dtype=np.float64)
        true = np.array([p[2] for p in chosen], dtype=bool)
        index = np.argsort(-scores, kind="mergesort")
        tp, fp = np.cumsum(true[index]), np.cumsum(~true[index])
        recall = tp / n_gt
        precision = tp / (tp + fp + np.spacing(1))  # COCOeval's own formula, to the last bit
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(recall, recall_thresholds, side="left")
        sampled = np.zeros(len(recall_thresholds))
        sampled[at < len(envelope)] = envelope[at[at < len(envelope)]]
        aps.append(float(np.mean(sampled)))
    return float(np.mean(aps)) if aps else float("nan")


def _points(images, fixed: str | None = None, perfect_precision: bool = False) -> tuple[dict, dict]:
    """The (score, order, true) points per class and the object count per class, with the errors
    of type ``fixed`` fixed (``"false_negatives"``: every unmatched object dropped)."""
    points: dict[int, list] = {}
    n_objects: dict[int, int] = {}
    for detections, objects in images:
        for obj in objects:
            drop = (fixed == "missed" and obj.error == "missed") or (fixed == "false_negatives" and not obj.matched)
            n_objects[obj.cls] = n_objects.get(obj.cls, 0) + (0 if drop else 1)
        for d in detections:
            cls, true = d.cls, d.matched
            if d.error is not None and d.error == fixed:
                if d.error not in ("classification", "localisation") or not d.fix:
                    continue  # removed
                cls, true = (objects[d.target].cls if d.error == "classification" else d.cls), True
            score = (1.0 if true else 0.0) if perfect_precision else d.score
            points.setdefault(cls, []).append((score, d.order, true))
    return points, n_objects


def error_breakdown(evaluator) -> dict:
    """The TIDE breakdown of a COCOeval whose ``evaluate()`` has run (see the module docstring)."""
    images = _collect(evaluator)
    for detections, objects in images:
        _classify(detections, objects)
    recall_thresholds = np.asarray(evaluator.params.recThrs, dtype=np.float64)
    points, n_objects = _points(images)
    classes = sorted(cls for cls, n in n_objects.items() if n > 0)
    base = _average_precision(points, n_objects, recall_thresholds, classes)

    def gain(**how) -> float | None:
        value = _average_precision(*_points(images, **how), recall_thresholds, classes)
        return max(value - base, 0.0) if np.isfinite(value) and np.isfinite(base) else None

    detections = [d for dets, _ in images for d in dets]
    objects = [o for _, objs in images for o in objs]
    counts = {name: sum(d.error == name for d in detections) for name in ERRORS if name != "missed"}
    counts["missed"] = sum(o.error == "missed" for o in objects)
    return {
        "iou_threshold": POSITIVE_IOU,
        "background_iou": BACKGROUND_IOU,
        "AP50": base if np.isfinite(base) else None,  # None: no class has objects (as the coco block says)
        "dAP": {name: gain(fixed=name) for name in ERRORS},
        "false_positives_dAP": gain(perfect_precision=True),
        "false_negatives_dAP": gain(fixed="false_negatives"),
        "counts": counts,
        "detections": len(detections),
        "true_positives": sum(d.matched for d in detections),
        "objects": len(objects),
    }
