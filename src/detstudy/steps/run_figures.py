"""The ``run_figures`` step: the figures of one run, drawn from its metrics, detections and history."""

from __future__ import annotations

from typing import Any

from detstudy.tasks.detection.data.coco import load_coco_json
from detstudy.engine.io import read_json
from detstudy.engine.history import DEFAULT_SELECT_METRIC
from detstudy.tasks.detection.plots import (plot_confusion_matrix, plot_error_breakdown, plot_per_class_ap,
                                            plot_pr_curves, plot_predictions, plot_training_curves)
from detstudy.study.grid import run_label


def run_figures(*, metrics_json, detections_json, history_csv, annotations, images_dir,
                outputs: dict[str, str], score_threshold: float, style: dict[str, Any],
                prediction_images: int = 8) -> None:
    """Write the six per-run figures named in ``outputs`` (training_curves, per_class_ap,
    pr_curves, confusion_matrix, errors, predictions)."""
    metrics = read_json(metrics_json)
    run = metrics["run"]
    name = run_label(run)
    max_images = prediction_images
    # a run trained before the metric was recorded picked its best checkpoint by the default
    best_by = f"val_{metrics.get('training', {}).get('select_metric', DEFAULT_SELECT_METRIC)}"
    plot_training_curves(history_csv, outputs["training_curves"], best_by=best_by,
                         best_epoch=metrics.get("training", {}).get("best_epoch"),  # what best.pt holds
                         title=f"Training: {name}", style=style)
    plot_per_class_ap(metrics, outputs["per_class_ap"], title=f"Per-class AP (test): {name}", style=style)
    plot_pr_curves(metrics["pr_curves"], outputs["pr_curves"], title=f"Precision-recall, IoU 0.5: {name}",
                   style=style)
    plot_confusion_matrix(metrics["confusion"], outputs["confusion_matrix"],
                          title=f"Confusion at score >= {score_threshold}: {name}", style=style)
    plot_error_breakdown(metrics["errors"], outputs["errors"],
                         title=f"Where AP50 is lost (TIDE, IoU 0.5, test): {name}", style=style)
    plot_predictions(load_coco_json(annotations), read_json(detections_json), images_dir, outputs["predictions"],
                     score_threshold=score_threshold, max_images=max_images, seed=run["seed"],
                     title=f"Ground truth (green) vs predictions (orange): {name}", style=style)
