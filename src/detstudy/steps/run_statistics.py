"""The run_statistics step: bootstrap intervals of one run's test metrics over its test images.

Each resample draws the test images with replacement (``resamples`` draws, seeded: every run
of the grid draws the same images, so two runs can be compared resample by resample); the
statistics of a resample are COCOeval's on the drawn images (:mod:`.resampled_ap`). Written:
``statistics.json`` (the intervals, ``docs/metrics_schema.md``) and ``bootstrap.npz`` (the
replicates and the leave-one-image-out values, read by the comparisons step).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from detstudy.tasks.detection.data.coco import load_coco_json
from detstudy.tasks.detection.evaluation.metrics import coco_evaluator
from detstudy.engine.io import atomic_path, read_json, write_json
from detstudy.statistics.bootstrap import column_interval, image_digest, resample
from detstudy.tasks.detection.evaluation.resampled_ap import SUMMARY, Matches, extract_matches, resampled_statistics

log = logging.getLogger("detstudy.statistics")

#: How far the resampled statistic of the test set itself may be from metrics.json.
AGREEMENT = 1e-9


def bootstrap(matches: Matches, *, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """The detection statistics of the test set, of every resample and of every leave-one-out set."""
    return {**resample(partial(resampled_statistics, matches), matches.n_images, resamples=resamples, seed=seed),
            "image_ids": np.asarray(matches.image_ids), "category_ids": np.asarray(matches.category_ids)}


def _check_against_metrics(estimate: np.ndarray, class_estimate: np.ndarray, category_ids, metrics: dict,
                           source) -> None:
    """The test set's own statistics must be the evaluation's: otherwise the detections or the
    annotations are not the ones the metrics were computed from."""
    ids = [entry["id"] for entry in metrics["per_class"]]
    if ids != list(category_ids):
        raise ValueError(f"{source}: classes {ids}, the test annotations' {list(category_ids)}. Fix: rerun the "
                         "run's evaluation (delete its metrics.json) on this test split.")
    expected = [metrics["coco"].get(name) for name in SUMMARY]
    expected += [entry.get("AP50") for entry in metrics["per_class"]]
    found = list(estimate) + list(class_estimate)
    for name, want, got in zip(list(SUMMARY) + [f"AP50 of {c['name']}" for c in metrics["per_class"]],
                               expected, found):
        if (want is None) != (not np.isfinite(got)) or (want is not None and abs(want - got) > AGREEMENT):
            raise ValueError(f"{source}: {name} {want} in the metrics, {got} from the detections and the test "
                             "annotations. Fix: rerun the run's evaluation (delete its metrics.json), which "
                             "writes both files from one checkpoint.")


def run_statistics(*, detections, annotations, metrics, settings: dict[str, Any], statistics_path,
                   bootstrap_path) -> dict:
    """Intervals of AP, AP50, AP75, AR@100 and each class's AP50 for one run."""
    resamples, seed = int(settings["resamples"]), int(settings["seed"])
    level, method = float(settings["level"]), str(settings["method"])
    record = read_json(metrics)
    matches = extract_matches(coco_evaluator(load_coco_json(annotations), read_json(detections)))
    values = bootstrap(matches, resamples=resamples, seed=seed)
    _check_against_metrics(values["estimate"], values["class_estimate"], matches.category_ids, record, metrics)

    def describe(column: int, per_class: bool = False) -> dict:
        return column_interval(values, column, level=level, method=method, per_class=per_class)

    result = {
        "run": record["run"],
        "settings": {"resamples": resamples, "seed": seed, "level": level, "method": method},
        "images": matches.n_images,
        "image_ids_sha256": image_digest(matches.image_ids),
        "metrics": {name: describe(j) for j, name in enumerate(SUMMARY)},
        "per_class": [{"id": entry["id"], "name": entry["name"], "AP50": describe(k, per_class=True)}
                      for k, entry in enumerate(record["per_class"])],
    }
    with atomic_path(bootstrap_path) as tmp:
        with open(tmp, "wb") as handle:  # np.savez given a name would append .npz to the temporary one
            np.savez(handle, **values)
    write_json(statistics_path, result)
    ap50 = result["metrics"]["AP50"]

    def shown(value, sign=""):
        return "undefined" if value is None else f"{value:{sign}.3f}"

    log.info("%s: AP50 %s, %d%% %s interval [%s, %s], bootstrap bias %s (%d resamples of %d images)",
             Path(metrics).parent, shown(ap50["estimate"]), round(100 * level), method, shown(ap50["low"]),
             shown(ap50["high"]), shown(ap50["bias"], "+"), resamples, matches.n_images)
    return result
