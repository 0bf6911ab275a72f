"""The classification protocol: every number read from the test split's (true class, predicted
probabilities) pairs, as scikit-learn computes it.

* top-1 accuracy, and top-5 accuracy when there are more than 5 classes;
* per class precision, recall, F1 and support, and their macro and support-weighted means over
  every class of the dataset (a class never predicted has precision 0, as scikit-learn's
  ``zero_division=0``);
* the confusion matrix (rows true class, columns prediction);
* calibration: the expected calibration error over equal-width confidence bins and the bins
  themselves (the reliability diagram).

:func:`summary` and :func:`class_scores` take a batch of confusion matrices: the bootstrap
(:mod:`detstudy.statistics.classification`) gives them one per resample, exactly.
"""

from __future__ import annotations

import numpy as np

#: The headline numbers of a run, in the order the statistics resample them.
SUMMARY = ("accuracy", "macro_F1", "macro_precision", "macro_recall", "weighted_F1", "weighted_precision",
           "weighted_recall", "top5")
HEADLINE = "accuracy"
#: Confidence bins of the expected calibration error (Guo et al., 2017: 15).
CALIBRATION_BINS = 15
TOP_K = 5


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """[C, C] counts of (true, predicted) pairs."""
    true, predicted = np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if true.shape != predicted.shape:
        raise ValueError(f"{true.shape} true labels and {predicted.shape} predictions")
    for name, values in (("true", true), ("predicted", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} labels outside 0..{num_classes - 1}")
    return np.bincount(true * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


def _share(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def class_scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Per class (last axis; leading axes are batches of matrices): precision, recall, F1, support."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    support, predicted = confusion.sum(axis=-1), confusion.sum(axis=-2)
    precision, recall = _share(tp, predicted), _share(tp, support)
    return {"precision": precision, "recall": recall, "F1": _share(2 * tp, support + predicted), "support": support}


def summary(confusion: np.ndarray, top5: np.ndarray | float | None = None) -> np.ndarray:
    """[..., len(SUMMARY)] of one or a batch of confusion matrices; ``top5``: the top-5 accuracy
    of each (NaN when not given: 5 classes or fewer)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    scores = class_scores(confusion)
    total = confusion.sum(axis=(-2, -1))
    weights = _share(scores["support"], total[..., None])
    accuracy = _share(np.trace(confusion, axis1=-2, axis2=-1), total)
    top = np.full(accuracy.shape, np.nan) if top5 is None else np.broadcast_to(np.asarray(top5, float), accuracy.shape)
    return np.stack([accuracy, scores["F1"].mean(axis=-1), scores["precision"].mean(axis=-1),
                     scores["recall"].mean(axis=-1), (scores["F1"] * weights).sum(axis=-1),
                     (scores["precision"] * weights).sum(axis=-1), (scores["recall"] * weights).sum(axis=-1), top],
                    axis=-1)


def top_k_correct(true: np.ndarray, probabilities: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """[N] whether each true class is among the ``k`` highest probabilities (ties: the higher
    class index first, as scikit-learn's ``top_k_accuracy_score`` breaks them)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(probabilities, axis=1, kind="stable")[:, ::-1][:, :k]
    return (order == np.asarray(true)[:, None]).any(axis=1)


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """The expected calibration error (the bins' |accuracy - confidence| weighted by their share
    of the images) and the bins: (lower edge, upper edge], images, mean confidence, accuracy."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    mean_confidence = _share(np.bincount(index, confidence, minlength=bins), counts)
    accuracy = _share(np.bincount(index, correct, minlength=bins), counts)
    ece = float((counts * np.abs(accuracy - mean_confidence)).sum() / max(len(confidence), 1))
    return {"ECE": ece, "bins": [{"low": float(edges[b]), "high": float(edges[b + 1]), "images": int(counts[b]),
                                  "confidence": float(mean_confidence[b]) if counts[b] else None,
                                  "accuracy": float(accuracy[b]) if counts[b] else None} for b in range(bins)]}


def metrics_from_predictions(true, probabilities, class_names: list[str]) -> dict:
    """The ``metrics`` block of a classification run's metrics.json from the true classes [N]
    and the predicted probabilities [N, C]."""
    true = np.asarray(true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    num_classes = len(class_names)
    if probabilities.shape != (len(true), num_classes):
        raise ValueError(f"probabilities of shape {probabilities.shape} for {len(true)} images and {num_classes} classes")
    predicted = probabilities.argmax(axis=1)
    confusion = confusion_matrix(true, predicted, num_classes)
    top5 = float(top_k_correct(true, probabilities).mean()) if num_classes > TOP_K and len(true) else None
    values = summary(confusion, top5)
    scores = class_scores(confusion)
    calibrated = calibration(probabilities.max(axis=1), predicted == true)

    def number(value):
        return None if value is None or not np.isfinite(value) else float(value)

    return {**{name: number(value) for name, value in zip(SUMMARY, values)}, "images": int(len(true)),
            "ECE": calibrated["ECE"], "calibration_bins": calibrated["bins"],
            "per_class": [{"name": name, "precision": float(scores["precision"][k]), "recall": float(scores["recall"][k]),
                           "F1": float(scores["F1"][k]), "support": int(scores["support"][k])}
                          for k, name in enumerate(class_names)],
            "confusion": confusion.tolist()}
