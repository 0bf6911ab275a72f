"""The ``generate_synthetic_masks`` step: the segmentation demo's images and masks (the detection
demo's synthetic world seen as per-pixel masks, ``detstudy.tasks.segmentation.data.synthetic``)."""

from __future__ import annotations

import logging

from detstudy.tasks.segmentation.data.synthetic import generate_segmentation_dataset

log = logging.getLogger("detstudy.data")


def generate_synthetic_masks(settings: dict, *, out_dir) -> dict:
    settings = dict(settings or {})
    splits = generate_segmentation_dataset(out_dir, seed=settings.get("seed", 0), split_sizes=settings.get("splits"),
                                           image_size=settings.get("image_size", 256),
                                           max_defects=settings.get("max_defects", 4),
                                           empty_fraction=settings.get("empty_fraction", 0.05))
    log.info("synthetic masks written under %s (%s)", out_dir, ", ".join(splits))
    return splits
