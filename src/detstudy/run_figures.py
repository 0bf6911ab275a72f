"""The figures step of one run: everything drawn from its metrics, detections and history."""

from __future__ import annotations

from typing import Any

from detstudy.data.coco import load_coco_json
from detstudy.figures import (plot_confusion_matrix, plot_per_class_ap, plot_pr_curves, plot_predictions,
                              plot_training_curves)
from detstudy.io import read_json


def draw_run_figures(*, metrics_json, detections_json, history_csv, annotations, images_dir,
                     outputs: dict[str, str], score_threshold: float, style: dict[str, Any]) -> None:
    """Write the five per-run figures named in ``outputs`` (training_curves, per_class_ap,
    pr_curves, confusion_matrix, predictions)."""
    metrics = read_json(metrics_json)
    run = metrics["run"]
    name = f"{run['model']} · {run['resolution']} px · {run['phase']} · seed {run['seed']}"
    style = dict(style)
    max_images = style.pop("prediction_images", 8)
    best_by = f"val_{metrics.get('training', {}).get('select_metric', 'AP50')}"
    plot_training_curves(history_csv, outputs["training_curves"], best_by=best_by,
                         title=f"Training: {name}", style=style)
    plot_per_class_ap(metrics, outputs["per_class_ap"], title=f"Per-class AP (test): {name}", style=style)
    plot_pr_curves(metrics["pr_curves"], outputs["pr_curves"], title=f"Precision-recall, IoU 0.5: {name}",
                   style=style)
    plot_confusion_matrix(metrics["confusion"], outputs["confusion_matrix"],
                          title=f"Confusion at score >= {score_threshold}: {name}", style=style)
    plot_predictions(load_coco_json(annotations), read_json(detections_json), images_dir, outputs["predictions"],
                     score_threshold=score_threshold, max_images=max_images, seed=run["seed"],
                     title=f"Ground truth (green) vs predictions (orange): {name}", style=style)
