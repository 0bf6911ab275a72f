"""The ``check_mask_split`` step: one segmentation split checked before any training, every
problem listed with its file, value or size and the fix (``detstudy.tasks.segmentation.data.checks``).

The report holds the split's counts (pixels and images per class, ignored pixels), the warnings
(a class absent from the training split) and the checksums of its images and masks, read back
into every run's provenance.
"""

from __future__ import annotations

import hashlib
import logging
import warnings

from detstudy.engine.io import file_digest, write_json
from detstudy.tasks.dataset_errors import DatasetWarning
from detstudy.tasks.segmentation.data.checks import check_classes_present, check_split
from detstudy.tasks.segmentation.data.layout import MaskSplit

log = logging.getLogger("detstudy.data")


def split_digest(split: MaskSplit) -> tuple[str, str]:
    """SHA-256 over the images' and over the masks' contents, in stem order (names included)."""
    images, masks = hashlib.sha256(), hashlib.sha256()
    for image, mask in split.pairs():
        images.update(f"{image.name}:{file_digest(image)},".encode())
        masks.update(f"{mask.name}:{file_digest(mask)},".encode())
    return images.hexdigest(), masks.hexdigest()


def check_mask_split(name: str, split: dict[str, str], *, classes: list[str], ignore_index: int = 255,
                     palette: list | None = None, check_json) -> dict:
    """Fail with every problem of one split listed, or write its check report."""
    paths = MaskSplit.of(**split)
    counts = check_split(paths, name, len(classes), ignore_index, palette)
    found = []
    if name == "train":
        with warnings.catch_warnings():  # logged below, without a traceback line
            warnings.simplefilter("ignore", DatasetWarning)
            found = check_classes_present(counts, classes)
    for warning in found:
        log.warning(warning)
    images_sha, masks_sha = split_digest(paths)
    report = {"split": name, "images": str(paths.images), "masks": str(paths.masks), "classes": list(classes),
              "ignore_index": ignore_index, "counts": counts.to_dict(classes), "warnings": found,
              "checksum": {"images": str(paths.images), "masks": str(paths.masks), "pairs": counts.images,
                           "images_sha256": images_sha, "masks_sha256": masks_sha}}
    write_json(check_json, report)  # written only once every check passed
    log.info("split %s OK: %d image/mask pairs, %d ignored pixels; images sha256 %s", name, counts.images,
             counts.ignored, images_sha[:12])
    return report
