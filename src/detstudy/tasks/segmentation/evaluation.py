"""The segmentation evaluation of one run.

:func:`evaluate` runs the best checkpoint over the test split (whole-image or sliding-window
inference, as configured) and keeps one confusion matrix per test image: their sum gives the
metrics block (:func:`detstudy.tasks.segmentation.metrics.metrics_from_confusion`), and the
bootstrap resamples them (:func:`statistics`): a resample's matrix is the sum of its drawn
images', so its mIoU is exact (:mod:`detstudy.statistics.segmentation`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from detstudy.engine.cost import autocast_for, check_precision
from detstudy.engine.history import trained_epochs
from detstudy.engine.io import atomic_path, write_json
from detstudy.engine.runtime import resolve_device
from detstudy.tasks.segmentation.checkpoint import load_checkpoint
from detstudy.tasks.segmentation.data.dataset import MaskDataset, eval_transform
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.inference import dataset_confusions
from detstudy.tasks.segmentation.metrics import metrics_from_confusion
from detstudy.tasks.segmentation.models import parameter_count
from detstudy.tasks.segmentation.samples import SAMPLES_KEPT, SampleKeeper

log = logging.getLogger("detstudy.evaluate")


def training_summary(state: dict[str, Any], history) -> dict[str, Any]:
    """What the checkpoint's training was: epochs (from ``history``), the best epoch and its
    validation score, the loss and its class weights (``state``: the checkpoint's entries)."""
    metric = state.get("train_settings", {}).get("select_metric", "mIoU")
    return {"epochs": len(trained_epochs(history)), "select_metric": metric, "best_epoch": state.get("epoch"),
            f"best_val_{metric}": state.get(f"val_{metric}"), "class_weights": state.get("class_weights"),
            "loss": state.get("loss")}


def evaluate(*, checkpoint, test_split: MaskSplit, run: dict[str, Any], metrics_path, confusions_path,
             samples_path=None, history=None, inference: str = "whole", palette: list | None = None,
             precision: str = "fp32", device: str = "auto", extra: dict[str, Any] | None = None) -> dict:
    """Write ``metrics_path`` (the run, the protocol, the metrics block, ``extra`` entries),
    ``confusions_path`` (``.npz``: the per-image confusion matrices and the test images' stems,
    for the bootstrap) and ``samples_path`` (the predicted masks of a few test images for the
    overlay figure, :mod:`~detstudy.tasks.segmentation.samples`); with ``history`` (the run's
    history.csv) the metrics hold its :func:`training_summary`. ``precision``: fp32, or
    float16/bfloat16 autocast on CUDA (``evaluation.precision``, one setting for every model)."""
    check_precision(precision)
    device_ = resolve_device(device)
    amp, amp_dtype = autocast_for(precision, device_)
    model, state = load_checkpoint(checkpoint, device_)
    class_names, ignore_index = state["class_names"], state["ignore_index"]
    resolution = model.settings["resolution"]
    data = MaskDataset(test_split, len(class_names), eval_transform(resolution, inference), ignore_index=ignore_index,
                       palette=palette, resize_mask=False)
    keeper = SampleKeeper(data, SAMPLES_KEPT if samples_path else 0)
    log.info("predicting %d test images on %s (%s inference at %d px)", len(data), device_, inference, resolution)
    confusions = dataset_confusions(model, data, device_, resolution, inference, use_amp=amp, amp_dtype=amp_dtype,
                                    on_image=keeper).numpy()
    stems = [image.stem for image, _ in data.pairs]
    metrics = metrics_from_confusion(confusions.sum(axis=0), class_names)
    record = {"run": run, "task": "segmentation",
              "protocol": {"inference": inference, "resolution": resolution, "ignore_index": ignore_index,
                           "images": len(stems), "classes": class_names, "precision": precision if amp else "fp32"},
              "metrics": metrics, "confusion": confusions.sum(axis=0).tolist(),
              "params": {"total": parameter_count(model)},
              **({"training": training_summary(state, history)} if history is not None else {}), **(extra or {})}
    with atomic_path(confusions_path) as tmp:
        with open(tmp, "wb") as handle:  # np.savez given a name would append .npz to the temporary one
            np.savez(handle, confusions=confusions, stems=np.asarray(stems))
    if samples_path:
        keeper.store(samples_path)
    write_json(metrics_path, record)
    log.info("%s: mIoU %.4f, mDice %.4f, aAcc %.4f on %d test images", run.get("model", "?"), metrics["mIoU"] or 0,
             metrics["mDice"] or 0, metrics["aAcc"] or 0, len(stems))
    return record
