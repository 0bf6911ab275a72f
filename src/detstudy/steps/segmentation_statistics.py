"""The ``segmentation_statistics`` step: bootstrap intervals of one segmentation run over its test
images, from its per-image confusion matrices (``detstudy.statistics.segmentation``)."""

from __future__ import annotations

import logging

from detstudy.engine.io import read_json
from detstudy.statistics.segmentation import run_intervals

log = logging.getLogger("detstudy.statistics")


def segmentation_statistics(*, confusions, metrics, settings: dict, statistics_path, bootstrap_path) -> dict:
    result = run_intervals(confusions_path=confusions, metrics=read_json(metrics), settings=settings,
                           statistics_path=statistics_path, bootstrap_path=bootstrap_path)
    miou = result["metrics"]["mIoU"]
    if None not in (miou["estimate"], miou["low"], miou["high"]):
        log.info("mIoU %.4f, %d%% %s interval [%.4f, %.4f] (%d resamples of %d images)", miou["estimate"],
                 round(100 * result["settings"]["level"]), miou["method"], miou["low"], miou["high"],
                 result["settings"]["resamples"], result["images"])
    return result
