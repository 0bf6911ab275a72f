"""The evaluation step: one protocol for every model, written to one metrics JSON.

Test-split detections in COCO results format, pycocotools COCOeval, per-class AP,
precision/recall/F1 at the best-F1 and at the configured score threshold, the
confusion matrix and parameter count in the metrics JSON. The timings are the latency step's
(``detstudy.steps.latency``), in a job of their own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from detstudy.tasks.detection.checkpoint import load_checkpoint
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.tasks.detection.evaluation.confusion import confusion_matrix
from detstudy.tasks.detection.evaluation.errors import error_breakdown
from detstudy.tasks.detection.evaluation.inference import predict_dataset
from detstudy.engine.cost import autocast_for, check_precision
from detstudy.tasks.detection.evaluation.metrics import best_f1_operating_point, coco_evaluate, operating_point
from detstudy.engine.io import write_json
from detstudy.tasks.detection.multimodal.analysis import text_similarity
from detstudy.engine.provenance import collect
from detstudy.engine.runtime import resolve_device
from detstudy.engine.history import trained_epochs

log = logging.getLogger("detstudy.evaluate")


def _training_summary(trained: list[dict[str, str]], extra: dict[str, Any]) -> dict[str, Any]:
    return {"epochs": len(trained),
            "select_metric": extra.get("train_settings", {}).get("select_metric", "AP"),
            "best_epoch": extra.get("epoch"), "best_val_AP": extra.get("val_AP"),
            "best_val_AP50": extra.get("val_AP50"),
            **({"imported_from": extra["imported_from"], "imported_sha256": extra.get("imported_sha256")}
               if extra.get("imported_from") else {})}


def evaluate(*, checkpoint, history, test_split: SplitPaths, metrics_path, detections_path,
             run: dict[str, Any], score_threshold: float = 0.5, iou_threshold: float = 0.5,
             batch_size: int = 4, precision: str = "fp32", device: str = "auto",
             threads: int | None = None,
             run_config: dict[str, Any] | None = None,
             checks: dict[str, str | Path] | None = None) -> dict[str, Any]:
    """Evaluate one run. ``run_config`` (its resolved configuration) and ``checks`` (each split's
    dataset-check JSON, holding its checksums) go into the metrics' provenance record.

    The metrics JSON of a deterministic run is byte-identical when it is run again.
    ``precision`` (``fp32``, ``float16``, ``bfloat16``: autocast on CUDA) is one setting for
    every model, whatever each was trained with (the official DEIM and torchvision evaluate in fp32).
    """
    check_precision(precision)  # before any work
    if threads:
        torch.set_num_threads(threads)
    device_ = resolve_device(device)
    adapter, categories, extra = load_checkpoint(checkpoint, device_)
    trained = trained_epochs(history)
    dataset = CocoDetection(test_split)
    if dataset.categories != categories:
        raise ValueError(f"{test_split.annotations}: categories {dataset.categories.as_list()} differ from the "
                         f"ones {checkpoint} was trained on ({categories.as_list()}). "
                         "Fix: use splits of the same dataset (the dataset check compares them).")
    amp, amp_dtype = autocast_for(precision, device_)
    log.info("predicting %d test images on %s", len(dataset), device_)
    detections = predict_dataset(adapter, dataset, device_, batch_size, amp=amp, amp_dtype=amp_dtype)
    coco = coco_evaluate(dataset.coco, detections, errors=error_breakdown)
    confusion = confusion_matrix(dataset.coco, detections, score_threshold=score_threshold,
                                 iou_threshold=iou_threshold)
    metrics = {
        "run": run,
        "dataset": {"split": "test", "annotations": str(test_split.annotations), "images": len(dataset),
                    "boxes": sum(1 for a in dataset.coco["annotations"] if not a.get("iscrowd", 0)),
                    "categories": categories.as_list()},
        "coco": coco["coco"],
        "per_class": coco["per_class"],
        "operating_points": {
            "iou_threshold": iou_threshold,
            "best_f1": best_f1_operating_point(dataset.coco, detections, iou_threshold),
            "configured": operating_point(dataset.coco, detections, score_threshold, iou_threshold),
        },
        "params": adapter.parameter_count(),
        "precision": precision if amp else "fp32",  # what the test predictions ran in
        "training": _training_summary(trained, extra),
        "detections": len(detections),
        "pr_curves": coco["pr_curves"],
        "errors": coco["errors"],
        "confusion": confusion,
    }
    metrics["provenance"] = collect(run_config=run_config or {}, checks=checks or {}, device=device_)
    similarity = text_similarity(adapter, dataset, device_, iou_threshold, batch_size)
    if similarity is not None:
        metrics["text_similarity"] = similarity
    write_json(detections_path, detections, indent=None)
    write_json(metrics_path, metrics)
    log.info("test mAP %s AP50 %s AR@100 %s", *(_number(coco["coco"][k]) for k in ("AP", "AP50", "AR100")))
    return metrics


def _number(value: float | None) -> str:
    """A COCO number for the log; pycocotools has none without ground-truth boxes."""
    return "undefined (no ground-truth boxes)" if value is None else f"{value:.4f}"
