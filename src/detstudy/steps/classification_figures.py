"""The ``classification_figures`` step: the figures of one classification run, drawn from its
metrics, history and the test predictions its evaluation kept (no model is loaded)."""

from __future__ import annotations

from typing import Any

import numpy as np

from detstudy.engine.io import read_json
from detstudy.figures.confusion import plot_normalised_confusion
from detstudy.study.grid import run_label
from detstudy.tasks.classification.plots import (most_confident_mistakes, plot_classification_curves, plot_mistakes,
                                                 plot_per_class_scores, plot_reliability)
from detstudy.tasks.images import load_rgb


def mistake_items(predictions_npz, class_names: list[str], count: int) -> list[dict]:
    """The ``count`` most confident mistakes with their images (as stored: the test split's files)."""
    stored = np.load(predictions_npz)
    true, probabilities, paths = stored["true"], stored["probabilities"], stored["paths"]
    items = []
    for i in most_confident_mistakes(true, probabilities, count):
        predicted = int(probabilities[i].argmax())
        items.append({"image": np.asarray(load_rgb(str(paths[i]))), "name": str(paths[i]).rsplit("/", 1)[-1],
                      "truth": class_names[int(true[i])], "predicted": class_names[predicted],
                      "confidence": float(probabilities[i, predicted])})
    return items


def classification_figures(*, metrics_json, history_csv, predictions_npz, outputs: dict[str, str],
                           style: dict[str, Any], prediction_images: int = 8) -> None:
    """Write the five per-run figures named in ``outputs`` (training_curves, confusion_matrix,
    per_class_f1, reliability, mistakes)."""
    record = read_json(metrics_json)
    name = run_label(record["run"])
    names = record["protocol"]["classes"]
    metrics = record["metrics"]
    plot_classification_curves(history_csv, outputs["training_curves"], best_epoch=record.get("training", {}).get("best_epoch"),
                               title=f"Training: {name}", style=style)
    plot_normalised_confusion(metrics["confusion"], names, outputs["confusion_matrix"], unit="images",
                              title=f"Confusion (row-normalised, test): {name}", style=style)
    plot_per_class_scores(metrics, outputs["per_class_f1"], title=f"Per-class scores (test): {name}", style=style)
    plot_reliability(metrics, outputs["reliability"], title=f"Reliability (test, ECE {metrics['ECE']:.3f}): {name}",
                     style=style)
    plot_mistakes(mistake_items(predictions_npz, names, prediction_images), outputs["mistakes"],
                  title=f"The most confident mistakes (test): {name}", style=style)
