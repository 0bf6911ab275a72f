"""Bootstrap intervals of one segmentation run: its per-image confusion matrices resampled
(:func:`detstudy.tasks.segmentation.metrics.resampled_statistics`, exact), on the draws every
run of the study shares (:mod:`detstudy.statistics.bootstrap`)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from detstudy.engine.io import atomic_path, write_json
from detstudy.statistics.bootstrap import column_interval, image_digest, resample
from detstudy.tasks.segmentation.metrics import SUMMARY, resampled_statistics


def run_intervals(*, confusions_path, metrics: dict, settings: dict[str, Any], statistics_path, bootstrap_path) -> dict:
    """Bootstrap intervals of mIoU, mDice, aAcc, mAcc and each class's IoU for one run (the
    same draws for every run of the study: ``settings`` seed and resamples)."""
    resamples, seed = int(settings["resamples"]), int(settings["seed"])
    level, method = float(settings["level"]), str(settings["method"])
    stored = np.load(confusions_path)
    confusions, stems = stored["confusions"], [str(s) for s in stored["stems"]]
    values = resample(partial(resampled_statistics, confusions), len(stems), resamples=resamples, seed=seed)
    expected = [metrics["metrics"][name] for name in SUMMARY]
    for name, want, got in zip(SUMMARY, expected, values["estimate"]):
        if (want is None) != (not np.isfinite(got)) or (want is not None and abs(want - got) > 1e-9):
            raise ValueError(f"{confusions_path}: {name} {got} from the confusion matrices, {want} in the metrics. "
                             "Fix: rerun the run's evaluation, which writes both from one checkpoint")

    def describe(column: int, per_class: bool = False) -> dict:
        return column_interval(values, column, level=level, method=method, per_class=per_class)

    result = {"run": metrics["run"], "settings": {"resamples": resamples, "seed": seed, "level": level, "method": method},
              "images": len(stems), "image_ids_sha256": image_digest(stems),
              "metrics": {name: describe(j) for j, name in enumerate(SUMMARY)},
              "per_class": [{"id": k, "name": entry["name"], "IoU": describe(k, per_class=True)}
                            for k, entry in enumerate(metrics["metrics"]["per_class"])]}
    with atomic_path(bootstrap_path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **values, stems=np.asarray(stems))
    write_json(statistics_path, result)
    return result
