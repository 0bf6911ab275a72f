"""The dataset step of the workflow: check each split on its own, then describe them all.

One check job per split means an edited test image reruns the test check and the
evaluations, while the training runs, which never read the test split, stay valid.
"""

from __future__ import annotations

import logging
import warnings

from detstudy.tasks.dataset_errors import DatasetWarning
from detstudy.tasks.detection.data.checks import check_dataset
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.engine.io import file_digest, write_json

log = logging.getLogger("detstudy.data")


def check_split(name: str, split: dict[str, str], *, check_json, reference: tuple[str, str] | None = None) -> dict:
    """Fail with every problem of one split listed, or write its check report.

    ``reference`` (split name, annotation file) is the split whose categories this one must
    share (the training split). The report records the split's checksums (SHA-256 of the
    annotation file and of its images, hashed as the check reads them), read back into every
    run's provenance.
    """
    paths = SplitPaths.of(**split)
    with warnings.catch_warnings():  # logged once below, without a traceback line
        warnings.simplefilter("ignore", DatasetWarning)
        report = check_dataset({name: paths}, reference=reference).to_dict()
    for warning in report["warnings"]:
        log.warning(warning)
    summary = report["splits"][name]
    report["checksum"] = {"annotations": str(paths.annotations), "annotations_sha256": file_digest(paths.annotations),
                          "images": summary["n_images"], "images_sha256": summary.pop("images_sha256")}
    write_json(check_json, report)  # written only once every check passed
    log.info("split %s OK: %d images / %d boxes; images sha256 %s", name, summary["n_images"],
             summary["n_annotations"], report["checksum"]["images_sha256"][:12])
    return report
