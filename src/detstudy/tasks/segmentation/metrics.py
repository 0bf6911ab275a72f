"""The segmentation protocol: confusion matrices and the metrics read from them.

One confusion matrix over the test split (rows: ground truth, columns: prediction; pixels whose
ground truth is the ignore value left out) gives every number, as mmsegmentation's
``IoUMetric`` computes it: per class IoU, Dice, accuracy (recall), precision and pixel support;
mIoU, mean Dice and mean class accuracy over the classes present in the ground truth or the
prediction (a class with neither is absent: NaN, left out of the means, never 0); aAcc, the
share of correctly labelled pixels.

The matrices are counted by :mod:`detstudy.tasks.segmentation.confusion` (torch, on the
device); everything here is NumPy, so the statistics jobs read it without torch. A dataset's
matrix is the sum of its images' (``confusion.image_confusions`` keeps them per image),
so a bootstrap resample's metrics are exact: the weighted sum of its images' matrices, then
:func:`metrics_from_confusion` (:func:`resampled_statistics` does it for many at once).
"""

from __future__ import annotations

import warnings

import numpy as np

#: The headline numbers of a run, in the order the statistics resample them.
SUMMARY = ("mIoU", "mDice", "aAcc", "mAcc")
HEADLINE = "mIoU"


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Per class (last axis; leading axes are batches of matrices): IoU, Dice, Acc (recall),
    Precision and Support (ground-truth pixels). NaN where the class is absent from both the
    ground truth and the prediction (IoU, Dice), from the ground truth (Acc) or from the
    prediction (Precision)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    intersect = np.diagonal(confusion, axis1=-2, axis2=-1)
    truth = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    union = truth + predicted - intersect
    return {"IoU": _ratio(intersect, union), "Dice": _ratio(2 * intersect, truth + predicted),
            "Acc": _ratio(intersect, truth), "Precision": _ratio(intersect, predicted), "Support": truth}


def summary(confusion: np.ndarray) -> np.ndarray:
    """[..., len(SUMMARY)]: mIoU, mDice, aAcc and mAcc of one or a batch of confusion matrices."""
    confusion = np.asarray(confusion, dtype=np.float64)
    scores = class_scores(confusion)
    total = confusion.sum(axis=(-2, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all classes absent (an empty resample): NaN
        means = [np.nanmean(scores["IoU"], axis=-1), np.nanmean(scores["Dice"], axis=-1),
                 _ratio(np.trace(confusion, axis1=-2, axis2=-1), total), np.nanmean(scores["Acc"], axis=-1)]
    return np.stack(means, axis=-1)


def metrics_from_confusion(confusion: np.ndarray, class_names: list[str]) -> dict:
    """The ``metrics`` block of a segmentation run's metrics.json: the headline numbers (as
    fractions) and the per-class table (mmsegmentation's Class | IoU | Acc | Dice, with
    precision and support), absent values as None."""
    confusion = np.asarray(confusion)
    if confusion.shape != (len(class_names), len(class_names)):
        raise ValueError(f"a {confusion.shape} confusion matrix for {len(class_names)} classes")
    values = summary(confusion)
    scores = class_scores(confusion)

    def number(value):
        return None if not np.isfinite(value) else float(value)

    per_class = [{"name": name, **{key: number(scores[key][k]) for key in ("IoU", "Dice", "Acc", "Precision")},
                  "support": int(scores["Support"][k])} for k, name in enumerate(class_names)]
    return {**{name: number(value) for name, value in zip(SUMMARY, values)},
            "pixels": int(confusion.sum()), "per_class": per_class}


def resampled_statistics(confusions: np.ndarray, weights: np.ndarray, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``weights`` ([B, N] copies of each test image): the :data:`SUMMARY`
    numbers ([B, 4]) and each class's IoU ([B, C]) of the resampled test set, whose confusion
    matrix is the weighted sum of its images' ``confusions`` ([N, C, C]): exact, not approximated."""
    confusions = np.asarray(confusions, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n, c = confusions.shape[0], confusions.shape[1]
    if weights.ndim != 2 or weights.shape[1] != n:
        raise ValueError(f"weights of shape {weights.shape}: expected [resamples, {n} images]")
    flat = confusions.reshape(n, c * c)
    summaries, per_class = [], []
    for start in range(0, len(weights), chunk):
        pooled = (weights[start:start + chunk] @ flat).reshape(-1, c, c)
        summaries.append(summary(pooled))
        per_class.append(class_scores(pooled)["IoU"])
    if not summaries:
        return np.zeros((0, len(SUMMARY))), np.zeros((0, c))
    return np.concatenate(summaries), np.concatenate(per_class)
