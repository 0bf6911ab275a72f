"""COCO AP of a resampled test set without re-running COCOeval: match once, re-accumulate.

COCOeval matches detections to ground truth image by image (``evaluate``) and only then pools
the images (``accumulate``). A bootstrap resample of test images changes how many times each
image is pooled, never how its detections match, so the matches are extracted once
(:class:`Matches`) and each resample is accumulated from per-image counts.

The statistic of a resample is what COCOeval computes on a dataset made of the drawn images,
each copy an image of its own, the copies given consecutive ids in the original image order
(that order only breaks ties between equal scores). It is computed exactly, not approximated:

* COCOeval's precision-recall points at true positives are the only ones that can be sampled
  (recall grows only there) and false-positive points never raise the precision envelope, so
  each true positive's weighted counts of true and false positives up to it (one matrix
  product with the resample's image counts) give the curve;
* ``c`` copies of one true positive are ``c`` consecutive points whose envelope is the same,
  so one point with count ``c`` samples to the same precision at every recall threshold.

One case breaks the second argument: an image with two detections of one class at exactly the
same score, one a true and the other a false positive. Such classes are accumulated copy by
copy, like COCOeval (slow, and logged); ``tests/test_statistics.py`` checks both paths against
COCOeval on resampled datasets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("detstudy.statistics")

#: The statistics of one resample, in the order of the columns :func:`resampled_statistics` returns.
SUMMARY = ("AP", "AP50", "AP75", "AR100")


@dataclass
class ClassMatches:
    """One class's detections over the test images (area all, at most 100 per image), in
    COCOeval's pooled order: by score, ties in image order."""

    image: np.ndarray  # [D] index of each detection's image
    true: np.ndarray  # [T, D] a true positive at each IoU threshold
    false: np.ndarray  # [T, D] a false positive (neither: matched to a crowd region, ignored)
    score: np.ndarray  # [D]
    gt_counts: np.ndarray  # [N] boxes of this class per image that count (not crowd)
    tied: bool  # an image has a true and a false positive at one score: accumulated copy by copy


@dataclass
class Matches:
    """Everything the resampled statistics need from one COCOeval ``evaluate`` of a run."""

    image_ids: list[int]  # COCOeval's image order (weights are given in this order)
    category_ids: list[int]
    classes: list[ClassMatches]
    iou_thresholds: np.ndarray  # [T]
    recall_thresholds: np.ndarray  # [R]

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    def subset(self, images) -> "Matches":
        """The matches of a test set made of some of these images (indices, in this order's
        sense): what COCOeval matches on that set, since matching is per image."""
        images = np.sort(np.asarray(images, dtype=np.int64))
        position = np.full(self.n_images, -1)
        position[images] = np.arange(len(images))
        classes = []
        for cls in self.classes:
            keep = position[cls.image] >= 0
            image = position[cls.image[keep]]
            true, false, score = cls.true[:, keep], cls.false[:, keep], cls.score[keep]
            classes.append(ClassMatches(image=image, true=true, false=false, score=score,
                                        gt_counts=cls.gt_counts[images], tied=_mixed_ties(image, score, true, false)))
        return Matches(image_ids=[self.image_ids[i] for i in images], category_ids=list(self.category_ids),
                       classes=classes, iou_thresholds=self.iou_thresholds, recall_thresholds=self.recall_thresholds)


def extract_matches(evaluator) -> Matches:
    """The per-image matches of an evaluated ``COCOeval`` (``evaluate()`` done), area ``all``,
    the largest ``maxDets``."""
    params = evaluator.params
    n_images, n_areas = len(params.imgIds), len(params.areaRng)
    area = list(params.areaRngLbl).index("all")
    max_dets = params.maxDets[-1]
    n_thresholds = len(params.iouThrs)
    classes = []
    for k, _ in enumerate(params.catIds):
        entries = [evaluator.evalImgs[k * n_areas * n_images + area * n_images + i] for i in range(n_images)]
        images, scores, matched, ignored = [], [], [], []
        gt_counts = np.zeros(n_images, dtype=np.int64)
        for i, entry in enumerate(entries):
            if entry is None:
                continue
            gt_counts[i] = int(np.count_nonzero(np.asarray(entry["gtIgnore"]) == 0))
            dt_scores = np.asarray(entry["dtScores"][:max_dets], dtype=float)
            images.append(np.full(len(dt_scores), i, dtype=np.int64))
            scores.append(dt_scores)
            matched.append(np.asarray(entry["dtMatches"])[:, :max_dets].reshape(n_thresholds, -1))
            ignored.append(np.asarray(entry["dtIgnore"])[:, :max_dets].reshape(n_thresholds, -1))
        if scores:
            score = np.concatenate(scores)
            order = np.argsort(-score, kind="mergesort")  # COCOeval's pooled order
            image, score = np.concatenate(images)[order], score[order]
            dtm = np.concatenate(matched, axis=1)[:, order]
            dt_ignored = np.concatenate(ignored, axis=1)[:, order].astype(bool)
        else:
            image, score = np.zeros(0, dtype=np.int64), np.zeros(0)
            dtm = dt_ignored = np.zeros((n_thresholds, 0), dtype=bool)
        true = np.logical_and(dtm, ~dt_ignored)
        false = np.logical_and(np.logical_not(dtm), ~dt_ignored)
        classes.append(ClassMatches(image=image, true=true, false=false, score=score, gt_counts=gt_counts,
                                    tied=_mixed_ties(image, score, true, false)))
    return Matches(image_ids=[int(i) for i in params.imgIds], category_ids=[int(c) for c in params.catIds],
                   classes=classes, iou_thresholds=np.asarray(params.iouThrs, dtype=float),
                   recall_thresholds=np.asarray(params.recThrs, dtype=float))


def _mixed_ties(image, score, true, false) -> bool:
    """An image with a true and a false positive of one score at some IoU threshold (ignored
    detections never move the counts, so ties with them are harmless)."""
    if len(score) < 2:
        return False
    starts = np.flatnonzero(np.r_[True, (image[1:] != image[:-1]) | (score[1:] != score[:-1])])
    if len(starts) == len(score):  # tied detections of one image are adjacent: no group of two
        return False
    any_true = np.logical_or.reduceat(true, starts, axis=1)
    any_false = np.logical_or.reduceat(false, starts, axis=1)
    return bool(np.any(any_true & any_false))


def _minimal_counts(recall_thresholds: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """[B, R]: the least true-positive count ``v`` with ``v / n_gt >= threshold`` in floating point,
    the comparison COCOeval's ``searchsorted`` makes on ``tp / npig``."""
    n = np.maximum(n_gt, 1).astype(float)[:, None]
    v = np.ceil(recall_thresholds[None, :] * n)
    for _ in range(2):  # the product may round either way: settle on the float comparison itself
        v = np.where((v - 1 >= 0) & ((v - 1) / n >= recall_thresholds[None, :]), v - 1, v)
        v = np.where(v / n < recall_thresholds[None, :], v + 1, v)
    return v


def _counts_before(events: np.ndarray, image: np.ndarray, n_images: int, at: np.ndarray | None = None) -> np.ndarray:
    """[len(at), N]: per image, how many of ``events`` (positions in the pooled order) lie at or
    before each position of ``at`` (default: the events themselves)."""
    at = events if at is None else at
    if not len(events) or not len(at):
        return np.zeros((len(at), n_images))
    # events keyed by (image, position), sorted: one search per (query position, image)
    span = int(max(events.max(), at.max())) + 1
    keys = np.sort(image[events] * span + events)
    starts = np.searchsorted(keys, np.arange(n_images) * span)
    queries = np.arange(n_images)[None, :] * span + at[:, None]
    return (np.searchsorted(keys, queries, side="right") - starts[None, :]).astype(float)


def _threshold_counts(cls: ClassMatches, t: int, n_images: int):
    """For each true positive at IoU threshold ``t``, in the pooled order, per image: its true and
    false positives at or before it ([P, N] each), or None without a true positive. They do not
    depend on the resample: computed once per run, one (class, threshold) at a time, since each
    pair is P x N floats (800 MB for 20 000 true positives on 5 000 images)."""
    positions = np.flatnonzero(cls.true[t])
    if not len(positions):
        return None
    return (_counts_before(positions, cls.image, n_images),
            _counts_before(np.flatnonzero(cls.false[t]), cls.image, n_images, at=positions))


def _threshold_precision(weights: np.ndarray, true_before: np.ndarray, false_before: np.ndarray,
                         needed: np.ndarray, n_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision [B, R] and recall [B] at one IoU threshold for a batch of resamples."""
    batch, n_positions = len(weights), true_before.shape[0]
    w = weights.astype(float)
    tp = w @ true_before.T  # [B, P], exact: sums of small integers
    fp = w @ false_before.T
    pr = tp / (fp + tp + np.spacing(1))
    envelope = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    # the envelope where the count of true positives first reaches v, for v = 0 .. max + 1
    # (rows are searched at once: each row's counts are offset above the previous row's)
    top = int(tp[:, -1].max()) + 1
    span = top + 1
    offsets = np.arange(batch, dtype=float)[:, None] * span
    counts = np.arange(top + 1, dtype=float)[None, :]
    found = np.searchsorted((tp + offsets).ravel(), (counts + offsets).ravel(), side="left").reshape(batch, -1)
    found -= np.arange(batch)[:, None] * n_positions
    at_count = np.where(found < n_positions, np.take_along_axis(envelope, np.minimum(found, n_positions - 1), axis=1),
                        0.0)
    return (np.take_along_axis(at_count, np.minimum(needed, top).astype(np.int64), axis=1),
            tp[:, -1] / np.maximum(n_gt, 1))


def _class_precision(cls: ClassMatches, weights: np.ndarray, recall_thresholds: np.ndarray, chunk: int):
    """Interpolated precision [B, T, R] and recall [B, T] of one class, and which resamples count
    the class (it has a box that counts). The resamples go through in chunks of ``chunk`` rows,
    so the [chunk, P] count matrices stay bounded too."""
    batch, n_thresholds = len(weights), cls.true.shape[0]
    n_gt = weights @ cls.gt_counts
    precision = np.zeros((batch, n_thresholds, len(recall_thresholds)))
    recall = np.zeros((batch, n_thresholds))
    needed = _minimal_counts(recall_thresholds, n_gt)
    for t in range(n_thresholds):
        before = _threshold_counts(cls, t, weights.shape[1])
        if before is None:
            continue
        for start in range(0, batch, chunk):
            rows = slice(start, start + chunk)
            precision[rows, t], recall[rows, t] = _threshold_precision(weights[rows], *before, needed[rows], n_gt[rows])
        del before
    return precision, recall, n_gt > 0


def _class_precision_copies(cls: ClassMatches, weights: np.ndarray, recall_thresholds: np.ndarray):
    """:func:`_class_precision` the way COCOeval accumulates: every copy of every image pooled."""
    batch, n_thresholds = len(weights), cls.true.shape[0]
    precision = np.zeros((batch, n_thresholds, len(recall_thresholds)))
    recall = np.zeros((batch, n_thresholds))
    n_gt = weights @ cls.gt_counts
    by_image = [np.flatnonzero(cls.image == i) for i in range(weights.shape[1])]
    for b in range(batch):
        if n_gt[b] == 0:
            continue
        # the resampled dataset's pooled order: images (copies adjacent) in order, then by score
        rows = np.concatenate([np.tile(np.sort(by_image[i]), c) for i, c in enumerate(weights[b]) if c] or
                              [np.zeros(0, dtype=np.int64)])
        rows = rows[np.argsort(-cls.score[rows], kind="mergesort")]
        tp = np.cumsum(cls.true[:, rows], axis=1).astype(float)
        fp = np.cumsum(cls.false[:, rows], axis=1).astype(float)
        for t in range(n_thresholds):
            if not len(rows):
                continue
            rc = tp[t] / n_gt[b]
            pr = np.maximum.accumulate((tp[t] / (fp[t] + tp[t] + np.spacing(1)))[::-1])[::-1]
            found = np.searchsorted(rc, recall_thresholds, side="left")
            precision[b, t] = np.where(found < len(rows), pr[np.minimum(found, len(rows) - 1)], 0.0)
            recall[b, t] = rc[-1]
    return precision, recall, n_gt > 0


def resampled_statistics(matches: Matches, weights: np.ndarray, chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's AP, AP50, AP75 and AR@100 ([B, 4], columns :data:`SUMMARY`) and each class's AP50
    ([B, K]) for each row of ``weights`` ([B, N] copies of each test image, in ``matches.image_ids``
    order). NaN where COCOeval reports -1 (no box that counts in the resample).

    Classes are accumulated one at a time: memory is that of the largest class at one IoU
    threshold (``benchmarks/bootstrap_memory.py`` measures it), not of all classes together."""
    weights = np.asarray(weights, dtype=np.int64)
    if weights.ndim != 2 or weights.shape[1] != matches.n_images:
        raise ValueError(f"weights of shape {weights.shape}: expected [resamples, {matches.n_images} images]")
    batch, n_classes = len(weights), len(matches.classes)
    thresholds = matches.iou_thresholds
    t50 = np.where(thresholds == 0.5)[0]  # COCOeval.summarize's own lookup
    t75 = np.where(thresholds == 0.75)[0]
    ap_sum = np.zeros((batch, 3))  # over .50:.95, at .50, at .75
    recall_sum = np.zeros(batch)
    valid = np.zeros(batch)
    per_class = np.full((batch, n_classes), np.nan)
    for k, cls in enumerate(matches.classes):
        if cls.tied:
            log.info("class %s: an image has a true and a false positive at one score; accumulating its "
                     "resamples copy by copy", matches.category_ids[k])
            precision, recall, present = _class_precision_copies(cls, weights, matches.recall_thresholds)
        else:
            precision, recall, present = _class_precision(cls, weights, matches.recall_thresholds, chunk)
        mask = present.astype(float)
        ap_sum[:, 0] += mask * precision.mean(axis=(1, 2))
        ap_sum[:, 1] += mask * precision[:, t50].mean(axis=(1, 2))
        ap_sum[:, 2] += mask * precision[:, t75].mean(axis=(1, 2))
        recall_sum += mask * recall.mean(axis=1)
        valid += mask
        per_class[:, k] = np.where(present, precision[:, t50].mean(axis=(1, 2)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        summary = np.column_stack([ap_sum / valid[:, None], recall_sum / valid])
    summary[valid == 0] = np.nan
    return summary, per_class
