"""The segmentation evaluation of one run and its bootstrap intervals.

:func:`evaluate` runs the best checkpoint over the test split (whole-image or sliding-window
inference, as configured) and keeps one confusion matrix per test image: their sum gives the
metrics block (:func:`detstudy.tasks.segmentation.metrics.metrics_from_confusion`), and the
bootstrap resamples them (:func:`statistics`): a resample's matrix is the sum of its drawn
images', so its mIoU is exact.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import numpy as np

from detstudy.engine.io import atomic_path, write_json
from detstudy.engine.runtime import resolve_device
from detstudy.statistics.bootstrap import image_digest, resample
from detstudy.statistics.intervals import METHODS, interval
from detstudy.tasks.segmentation.checkpoint import load_checkpoint
from detstudy.tasks.segmentation.data.dataset import MaskDataset, eval_transform
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.inference import dataset_confusions
from detstudy.tasks.segmentation.metrics import SUMMARY, metrics_from_confusion, resampled_statistics

log = logging.getLogger("detstudy.evaluate")


def evaluate(*, checkpoint, test_split: MaskSplit, run: dict[str, Any], metrics_path, confusions_path,
             inference: str = "whole", palette: list | None = None, device: str = "auto") -> dict:
    """Write ``metrics_path`` (the run, the protocol, the metrics block) and ``confusions_path``
    (``.npz``: the per-image confusion matrices and the test images' stems, for the bootstrap)."""
    device_ = resolve_device(device)
    model, state = load_checkpoint(checkpoint, device_)
    class_names, ignore_index = state["class_names"], state["ignore_index"]
    resolution = model.settings["resolution"]
    data = MaskDataset(test_split, len(class_names), eval_transform(resolution, inference), ignore_index=ignore_index,
                       palette=palette, resize_mask=False)
    confusions = dataset_confusions(model, data, device_, resolution, inference).numpy()
    stems = [image.stem for image, _ in data.pairs]
    metrics = metrics_from_confusion(confusions.sum(axis=0), class_names)
    record = {"run": run, "task": "segmentation",
              "protocol": {"inference": inference, "resolution": resolution, "ignore_index": ignore_index,
                           "images": len(stems), "classes": class_names},
              "metrics": metrics, "confusion": confusions.sum(axis=0).tolist()}
    with atomic_path(confusions_path) as tmp:
        with open(tmp, "wb") as handle:  # np.savez given a name would append .npz to the temporary one
            np.savez(handle, confusions=confusions, stems=np.asarray(stems))
    write_json(metrics_path, record)
    log.info("%s: mIoU %.4f, mDice %.4f, aAcc %.4f on %d test images", run.get("model", "?"), metrics["mIoU"] or 0,
             metrics["mDice"] or 0, metrics["aAcc"] or 0, len(stems))
    return record


def statistics(*, confusions_path, metrics: dict, settings: dict[str, Any], statistics_path, bootstrap_path) -> dict:
    """Bootstrap intervals of mIoU, mDice, aAcc, mAcc and each class's IoU for one run (the
    same draws for every run of the study: ``settings`` seed and resamples)."""
    resamples, seed = int(settings["resamples"]), int(settings["seed"])
    level, method = float(settings["level"]), str(settings["method"])
    stored = np.load(confusions_path)
    confusions, stems = stored["confusions"], [str(s) for s in stored["stems"]]
    values = resample(partial(resampled_statistics, confusions), len(stems), resamples=resamples, seed=seed)
    expected = [metrics["metrics"][name] for name in SUMMARY]
    for name, want, got in zip(SUMMARY, expected, values["estimate"]):
        if (want is None) != (not np.isfinite(got)) or (want is not None and abs(want - got) > 1e-9):
            raise ValueError(f"{confusions_path}: {name} {got} from the confusion matrices, {want} in the metrics. "
                             "Fix: rerun the run's evaluation, which writes both from one checkpoint")

    def describe(column: int, per_class: bool = False) -> dict:
        key = "class_" if per_class else ""
        out = {name: interval(values[f"{key}replicates"][:, column], values[f"{key}estimate"][column],
                              jackknife=values[f"{key}jackknife"][:, column], level=level, method=name,
                              bounds=(0.0, 1.0)).to_dict() for name in METHODS}
        return {**out[method], "method": method, **{name: [out[name]["low"], out[name]["high"]] for name in METHODS}}

    result = {"run": metrics["run"], "settings": {"resamples": resamples, "seed": seed, "level": level, "method": method},
              "images": len(stems), "image_ids_sha256": image_digest(stems),
              "metrics": {name: describe(j) for j, name in enumerate(SUMMARY)},
              "per_class": [{"id": k, "name": entry["name"], "IoU": describe(k, per_class=True)}
                            for k, entry in enumerate(metrics["metrics"]["per_class"])]}
    with atomic_path(bootstrap_path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **values, stems=np.asarray(stems))
    write_json(statistics_path, result)
    return result
