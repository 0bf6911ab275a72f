"""The ``classification_statistics`` step: bootstrap intervals of one classification run over its
test images, from every image's predicted probabilities (``detstudy.statistics.classification``)."""

from __future__ import annotations

import logging

from detstudy.engine.io import read_json
from detstudy.statistics.classification import run_intervals

log = logging.getLogger("detstudy.statistics")


def classification_statistics(*, predictions, metrics, settings: dict, statistics_path, bootstrap_path) -> dict:
    result = run_intervals(predictions_path=predictions, metrics=read_json(metrics), settings=settings,
                           statistics_path=statistics_path, bootstrap_path=bootstrap_path)
    accuracy = result["metrics"]["accuracy"]
    log.info("accuracy %.4f, %d%% %s interval [%.4f, %.4f] (%d resamples of %d images)", accuracy["estimate"],
             round(100 * result["settings"]["level"]), accuracy["method"], accuracy["low"], accuracy["high"],
             result["settings"]["resamples"], result["images"])
    return result
