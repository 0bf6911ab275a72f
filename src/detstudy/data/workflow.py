"""The dataset step of the workflow: check the splits, then describe them."""

from __future__ import annotations

import logging
import warnings

from detstudy.data.checks import DatasetWarning, check_dataset
from detstudy.data.coco import SplitPaths
from detstudy.data.statistics import dataset_statistics, plot_statistics
from detstudy.io import write_json

log = logging.getLogger("detstudy.data")


def check_and_describe(splits: dict[str, dict[str, str]], *, check_json, statistics_json, statistics_png) -> None:
    """Fail with every dataset problem listed, or write the check report, statistics and figure."""
    paths = {name: SplitPaths.of(**split) for name, split in splits.items()}
    with warnings.catch_warnings():  # logged once below, without a traceback line
        warnings.simplefilter("ignore", DatasetWarning)
        report = check_dataset(paths)
    for warning in report.warnings:
        log.warning(warning)
    statistics = dataset_statistics(paths)
    plot_statistics(statistics, statistics_png)
    write_json(statistics_json, statistics)
    write_json(check_json, report.to_dict())  # last: its presence means every check passed
    log.info("dataset OK: %s", ", ".join(f"{s} {v['n_images']} images / {v['n_annotations']} boxes"
                                          for s, v in report.to_dict()["splits"].items()))
