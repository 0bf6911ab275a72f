"""The ``generate_synthetic_crops`` step: the classification demo's images, one square crop per
object of the synthetic defect world, in class folders (``detstudy.tasks.classification.data.synthetic``)."""

from __future__ import annotations

import logging

from detstudy.tasks.classification.data.synthetic import generate_classification_dataset

log = logging.getLogger("detstudy.data")


def generate_synthetic_crops(settings: dict, *, out_dir) -> dict:
    settings = dict(settings or {})
    splits = generate_classification_dataset(out_dir, seed=settings.get("seed", 0), split_sizes=settings.get("splits"),
                                             image_size=settings.get("image_size", 256),
                                             crop_size=settings.get("crop_size", 64),
                                             max_defects=settings.get("max_defects", 4))
    log.info("synthetic crops written under %s (%s)", out_dir, ", ".join(splits))
    return splits
