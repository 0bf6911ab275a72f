"""The ``dataset_statistics`` step: the checked splits described (objects per class and size,
images), as a JSON file and a figure."""

from __future__ import annotations

import logging

from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.tasks.detection.data.dataset_statistics import count_splits, plot_statistics
from detstudy.engine.io import write_json

log = logging.getLogger("detstudy.data")


def dataset_statistics(splits: dict[str, dict[str, str]], *, statistics_json, statistics_png) -> dict:
    """Per-split, per-class counts of the checked splits, as JSON and as a figure."""
    statistics = count_splits({name: SplitPaths.of(**split) for name, split in splits.items()})
    plot_statistics(statistics, statistics_png)
    write_json(statistics_json, statistics)
    return statistics
