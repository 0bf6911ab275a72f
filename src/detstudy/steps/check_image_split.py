"""The ``check_image_split`` step: one classification split checked before any training, every
problem listed with its file and the fix (``detstudy.tasks.classification.data.checks``): val and
test against the training split's classes and image contents (leakage), test against val's too.

The report holds the split's classes and images per class, and the checksum of its images (each
file with its class) read back into every run's provenance; the training split's also holds every image's content digest,
which the other splits' leakage checks read.
"""

from __future__ import annotations

import hashlib
import logging

from detstudy.engine.io import file_digest, read_json, write_json
from detstudy.tasks.classification.data.checks import SplitCounts, check_split
from detstudy.tasks.classification.data.layout import ImageSplit

log = logging.getLogger("detstudy.data")


def reference_counts(check) -> SplitCounts:
    """The training split's counts as its check report recorded them."""
    report = read_json(check)
    counts = report["counts"]
    return SplitCounts(name=report["split"], classes=counts["classes"],
                       images_per_class={e["name"]: e["images"] for e in counts["per_class"]}, digests=report["digests"])


def split_digests(name: str, source: str) -> SplitCounts:
    """Another split's image contents (SHA-256 -> its first file), hashed without decoding: what
    the test check keeps test apart from (val's; val's own check decodes and checks its images)."""
    digests: dict[str, str] = {}
    for path, _ in ImageSplit.of(source).samples():
        if path.is_file():
            digests.setdefault(file_digest(path), str(path))
    return SplitCounts(name=name, classes=[], images_per_class={}, digests=digests)


def check_image_split(name: str, source: str, *, check_json, train_check=None, val_source=None) -> dict:
    """Fail with every problem of one split listed, or write its check report (val: against
    train; test: against train and the images of ``val_source``)."""
    split = ImageSplit.of(source)
    counts = check_split(split, name, reference_counts(train_check) if train_check else None,
                         split_digests("val", val_source) if val_source else None)
    digest = hashlib.sha256()  # every image with its class: a relabelled or duplicated image changes it
    for path, label, sha in counts.files:
        digest.update(f"{path}:{label}:{sha},".encode())
    report = {"split": name, "source": str(split.source), "counts": counts.to_dict(),
              "warnings": [f"{len(counts.duplicates)} images repeat another of the split"] if counts.duplicates else [],
              "checksum": {"source": str(split.source), "images": sum(counts.images_per_class.values()),
                           "images_sha256": digest.hexdigest()},
              **({"digests": counts.digests} if name == "train" else {})}
    write_json(check_json, report)  # written only once every check passed
    log.info("split %s OK: %d images of %d classes; images sha256 %s", name, report["checksum"]["images"],
             len(counts.classes), report["checksum"]["images_sha256"][:12])
    return report
