"""The classification protocol equals scikit-learn's to 1e-12 (accuracy, top-5, macro and
weighted precision/recall/F1, per-class scores, the confusion matrix), a class never predicted
included; a bootstrap resample is the test set of its drawn images; calibration by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, confusion_matrix, precision_recall_fscore_support,
                             top_k_accuracy_score)

from detstudy.tasks.classification.metrics import calibration, metrics_from_predictions, top_k_correct


def _case(n=300, classes=8, seed=0, never_predicted=3):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 2.0 * np.eye(classes)[true]
    logits[:, never_predicted] -= 100.0  # a class that is never the argmax
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return true, probabilities


@pytest.mark.parametrize("classes", [3, 8])
def test_the_metrics_are_scikit_learns(classes):
    true, probabilities = _case(classes=classes, never_predicted=classes - 1)
    names = [f"c{k}" for k in range(classes)]
    metrics = metrics_from_predictions(true, probabilities, names)
    predicted = probabilities.argmax(axis=1)
    labels = list(range(classes))
    assert (predicted == classes - 1).sum() == 0
    assert metrics["accuracy"] == pytest.approx(accuracy_score(true, predicted), abs=1e-12)
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(true, predicted, labels=labels, average=average, zero_division=0)
        if average == "macro":
            assert metrics["macro_precision"] == pytest.approx(p, abs=1e-12)
            assert metrics["macro_recall"] == pytest.approx(r, abs=1e-12)
            assert metrics["macro_F1"] == pytest.approx(f, abs=1e-12)
        else:
            assert metrics["weighted_F1"] == pytest.approx(f, abs=1e-12)
            assert metrics["weighted_precision"] == pytest.approx(p, abs=1e-12)
            assert metrics["weighted_recall"] == pytest.approx(r, abs=1e-12)
    p, r, f, s = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    for k, entry in enumerate(metrics["per_class"]):
        assert (entry["precision"], entry["recall"], entry["F1"], entry["support"]) == \
            (pytest.approx(p[k], abs=1e-12), pytest.approx(r[k], abs=1e-12), pytest.approx(f[k], abs=1e-12), s[k])
    assert metrics["confusion"] == confusion_matrix(true, predicted, labels=labels).tolist()
    if classes > 5:
        assert metrics["top5"] == pytest.approx(top_k_accuracy_score(true, probabilities, k=5, labels=labels), abs=1e-12)
    else:
        assert metrics["top5"] is None


def test_top_k_breaks_ties_as_scikit_learn():
    probabilities = np.full((4, 7), 1 / 7)  # every class tied
    true = np.array([0, 4, 5, 6])
    assert top_k_correct(true, probabilities).tolist() == [False, True, True, True]
    assert top_k_correct(true, probabilities).mean() == top_k_accuracy_score(true, probabilities, k=5, labels=range(7))


def test_calibration_by_hand():
    confidence = np.array([0.05, 0.5, 0.55, 0.95, 1.0])
    correct = np.array([0, 1, 0, 1, 1])
    found = calibration(confidence, correct, bins=2)  # (0, 0.5] and (0.5, 1]
    low, high = found["bins"]
    assert (low["images"], high["images"]) == (2, 3)
    assert low["accuracy"] == 0.5 and high["accuracy"] == pytest.approx(2 / 3)
    expected = (2 * abs(0.5 - 0.275) + 3 * abs(2 / 3 - (0.55 + 0.95 + 1.0) / 3)) / 5
    assert found["ECE"] == pytest.approx(expected, abs=1e-12)


