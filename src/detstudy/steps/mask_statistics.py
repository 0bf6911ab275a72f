"""The ``mask_statistics`` step: the checked segmentation splits described (pixels and images
per class and split) with the class weights the loss will use, as JSON and a figure."""

from __future__ import annotations

import logging
from typing import Any

from detstudy.engine.io import read_json, write_json
from detstudy.tasks.segmentation.data.checks import loss_class_weights
from detstudy.tasks.segmentation.plots import plot_mask_statistics

log = logging.getLogger("detstudy.data")


def describe_splits(checks: dict[str, dict], class_weights_setting) -> dict[str, Any]:
    """Per split and class: pixels, their share of the labelled pixels, images containing it;
    and the loss's class weights (from the training split's pixels, or as given)."""
    classes = next(iter(checks.values()))["classes"]
    splits = {}
    for name, check in checks.items():
        entries = check["counts"]["per_class"]
        labelled = sum(entry["pixels"] for entry in entries)
        splits[name] = {"images": check["counts"]["images"], "ignored_pixels": check["counts"]["ignored_pixels"],
                        "labelled_pixels": labelled,
                        "per_class": [{**entry, "pixel_share": entry["pixels"] / labelled if labelled else 0.0}
                                      for entry in entries]}
    train_pixels = [entry["pixels"] for entry in checks["train"]["counts"]["per_class"]]
    weights = loss_class_weights(class_weights_setting, train_pixels, len(classes))
    return {"classes": classes, "splits": splits,
            "class_weights": {"method": class_weights_setting if isinstance(class_weights_setting, str) else "given",
                              "values": [round(float(w), 6) for w in weights]},
            "warnings": [w for check in checks.values() for w in check.get("warnings", [])]}


def mask_statistics(*, checks: dict[str, str], class_weights, statistics_json, statistics_png,
                    style: dict | None = None) -> dict:
    statistics = describe_splits({name: read_json(path) for name, path in checks.items()}, class_weights)
    plot_mask_statistics(statistics, statistics_png, style=style)
    write_json(statistics_json, statistics)
    log.info("class weights (%s): %s", statistics["class_weights"]["method"],
             ", ".join(f"{n} {w:.3f}" for n, w in zip(statistics["classes"], statistics["class_weights"]["values"])))
    return statistics
