"""The classification evaluation of one run: the best checkpoint over the test split, every
image's predicted probabilities kept (``predictions.npz``: the bootstrap resamples them, the
figures show the most confident mistakes), the metrics block read from them
(:func:`detstudy.tasks.classification.metrics.metrics_from_predictions`)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from detstudy.engine.cost import autocast_for, check_precision
from detstudy.engine.history import read_history
from detstudy.engine.io import atomic_path, write_json
from detstudy.engine.runtime import resolve_device
from detstudy.tasks.classification.checkpoint import load_checkpoint
from detstudy.tasks.classification.data.dataset import ImageDataset, eval_transform
from detstudy.tasks.classification.data.layout import ImageSplit
from detstudy.tasks.classification.metrics import metrics_from_predictions
from detstudy.tasks.classification.models import parameter_count
from detstudy.tasks.classification.inference import predict_probabilities

log = logging.getLogger("detstudy.evaluate")


#: The history's columns of the best epoch that the train / val / test table shows.
TRAINING_COLUMNS = ("loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_F1")


def training_summary(state: dict[str, Any], history) -> dict[str, Any]:
    """What the checkpoint's training was: epochs trained, the selection, and the train and
    validation numbers of the best epoch (the one the checkpoint holds), from ``history``."""
    rows = read_history(history) if history else []
    best = next((row for row in rows if int(row["epoch"]) == state.get("epoch")), {})
    return {"epochs": sum(1 for row in rows if row["epoch"] >= 1),
            "select_metric": state.get("train_settings", {}).get("select_metric", "accuracy"),
            "best_epoch": state.get("epoch"), "label_smoothing": state.get("label_smoothing"),
            **{column: best.get(column) for column in TRAINING_COLUMNS}}


def evaluate(*, checkpoint, test_split: ImageSplit, run: dict[str, Any], metrics_path, predictions_path,
             history=None, batch_size: int = 64, precision: str = "fp32", device: str = "auto",
             extra: dict[str, Any] | None = None) -> dict:
    """Write ``metrics_path`` (the run, the protocol, the metrics block, the training summary
    when ``history`` is given, ``extra`` entries) and ``predictions_path`` (``.npz``: ``true``,
    ``probabilities``, ``paths`` in the split's order)."""
    check_precision(precision)
    device_ = resolve_device(device)
    amp, amp_dtype = autocast_for(precision, device_)
    model, state = load_checkpoint(checkpoint, device_)
    class_names, resolution = state["class_names"], state["resolution"]
    data = ImageDataset(test_split, class_names, eval_transform(resolution, state["preprocessing"]))
    log.info("predicting %d test images on %s at %d px", len(data), device_, resolution)
    true, probabilities = predict_probabilities(model, data, device_, batch_size, amp, amp_dtype)
    metrics = metrics_from_predictions(true, probabilities, class_names)
    record = {"run": run, "task": "classification",
              "protocol": {"resolution": resolution, "images": len(true), "classes": class_names,
                           "preprocessing": state["preprocessing"], "precision": precision if amp else "fp32"},
              "metrics": metrics, "params": {"total": parameter_count(model)},
              **({"training": training_summary(state, history)} if history else {}), **(extra or {})}
    with atomic_path(predictions_path) as tmp:
        with open(tmp, "wb") as handle:  # np.savez given a name would append .npz to the temporary one
            np.savez(handle, true=true, probabilities=probabilities,
                     paths=np.asarray([str(path) for path, _ in data.samples]))
    write_json(metrics_path, record)
    log.info("%s: accuracy %.4f, macro F1 %.4f, ECE %.4f on %d test images", run.get("model", "?"),
             metrics["accuracy"] or 0, metrics["macro_F1"] or 0, metrics["ECE"], len(true))
    return record
