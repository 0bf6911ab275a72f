"""The ``segmentation_figures`` step: the figures of one segmentation run, drawn from its metrics,
history and the predicted masks its evaluation kept (no model is loaded)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from detstudy.engine.io import read_json
from detstudy.engine.training_curves import plot_training_curves
from detstudy.study.grid import run_label
from detstudy.tasks.images import load_rgb
from detstudy.tasks.segmentation.data.checks import read_mask
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.samples import read_samples, shrink
from detstudy.figures.confusion import plot_normalised_confusion
from detstudy.tasks.segmentation.plots import plot_overlays, plot_per_class_iou

VALIDATION = (("val_mIoU", "val mIoU"), ("val_mDice", "val mDice"))


def overlay_samples(samples_npz, test_split: MaskSplit, num_classes: int, palette=None,
                    count: int | None = None) -> list[dict]:
    """The kept predictions (``count`` of them: those with the most ground-truth classes) with
    their image and ground truth, shrunk alike."""
    images, masks = test_split.image_files(), test_split.mask_files()
    samples = []
    for stem, prediction in read_samples(samples_npz, count):
        truth = shrink(read_mask(masks[stem], num_classes, palette))
        image = load_rgb(images[stem]).resize((truth.shape[1], truth.shape[0]), Image.Resampling.BILINEAR)
        samples.append({"name": stem, "image": np.asarray(image), "truth": truth, "prediction": prediction})
    return samples


def segmentation_figures(*, metrics_json, history_csv, samples_npz, test_split: dict[str, str],
                         classes: dict[str, list], outputs: dict[str, str], style: dict[str, Any],
                         palette=None, prediction_images: int = 8) -> None:
    """Write the four per-run figures named in ``outputs`` (training_curves, overlays,
    confusion_matrix, per_class_iou)."""
    record = read_json(metrics_json)
    name = run_label(record["run"])
    names, ignore_index = record["protocol"]["classes"], record["protocol"]["ignore_index"]
    training = record.get("training", {})
    metric = training.get("select_metric", "mIoU")
    plot_training_curves(history_csv, outputs["training_curves"], best_by=f"val_{metric}",
                         best_epoch=training.get("best_epoch"), validation=VALIDATION, metric_name="mIoU / mDice",
                         title=f"Training: {name}", style=style)
    samples = overlay_samples(samples_npz, MaskSplit.of(**test_split), len(names), palette, prediction_images)
    plot_overlays(samples, names, classes["colors"], outputs["overlays"], ignore_index=ignore_index,
                  title=f"Image | ground truth | prediction (test): {name}", style=style)
    plot_normalised_confusion(record["confusion"], names, outputs["confusion_matrix"],
                                title=f"Pixel confusion (row-normalised, test): {name}", style=style)
    plot_per_class_iou(record["metrics"], outputs["per_class_iou"], title=f"Per-class IoU and Dice (test): {name}",
                       style=style)
