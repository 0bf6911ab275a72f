"""Bootstrap intervals of one classification run over its test images.

A resample of the test set is summarised by its confusion matrix, the count of its images'
(true, predicted) cells, so every resample's numbers are exact and cheap: the draws are image
indices (:func:`detstudy.statistics.bootstrap.draw_indices`, the same for every run of the
study, so the comparisons are paired), each block's confusion matrices one ``bincount``. The
leave-one-out sets the BCa interval needs differ from the full matrix by one image, so there are
at most 2 C² distinct ones ((cell, top-5 hit) of the image left out): computed once each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detstudy.engine.io import atomic_path, write_json
from detstudy.statistics.bootstrap import column_interval, draw_indices, image_digest
from detstudy.tasks.classification.metrics import SUMMARY, TOP_K, class_scores, summary, top_k_correct


def _statistics(confusions: np.ndarray, top5: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    return summary(confusions, top5), class_scores(confusions)["F1"]


def resample_predictions(true, probabilities, *, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """:data:`SUMMARY` and per-class F1 of the test set (``estimate``), of every resample
    (``replicates``) and of every leave-one-out set (``jackknife``), the layout of
    :func:`detstudy.statistics.bootstrap.resample`."""
    true = np.asarray(true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n, num_classes = probabilities.shape
    cells = num_classes * num_classes
    cell = true * num_classes + probabilities.argmax(axis=1)
    hits = top_k_correct(true, probabilities).astype(np.float64) if num_classes > TOP_K else None
    full = np.bincount(cell, minlength=cells)
    summaries, per_class = [], []
    for block in draw_indices(n, resamples, seed):
        rows = np.arange(len(block))[:, None] * cells
        confusion = np.bincount((rows + cell[block]).ravel(), minlength=len(block) * cells)
        summaries_, per_class_ = _statistics(confusion.reshape(-1, num_classes, num_classes),
                                             None if hits is None else hits[block].mean(axis=1))
        summaries.append(summaries_)
        per_class.append(per_class_)
    estimate, class_estimate = _statistics(full.reshape(1, num_classes, num_classes),
                                           None if hits is None else np.array([hits.mean()]))
    # leave-one-out: one matrix per distinct (cell, top-5 hit) of the image left out
    kind = cell * 2 + (0 if hits is None else hits.astype(np.int64))
    kinds, inverse = np.unique(kind, return_inverse=True)
    left_out = np.tile(full, (len(kinds), 1))
    left_out[np.arange(len(kinds)), kinds // 2] -= 1
    top5 = None if hits is None else (hits.sum() - kinds % 2) / max(n - 1, 1)
    jackknife, class_jackknife = _statistics(left_out.reshape(-1, num_classes, num_classes), top5)
    return {"estimate": estimate[0], "class_estimate": class_estimate[0],
            "replicates": np.concatenate(summaries) if summaries else np.zeros((0, len(SUMMARY))),
            "class_replicates": np.concatenate(per_class) if per_class else np.zeros((0, num_classes)),
            "jackknife": jackknife[inverse], "class_jackknife": class_jackknife[inverse]}


def run_intervals(*, predictions_path, metrics: dict, settings: dict[str, Any], statistics_path, bootstrap_path) -> dict:
    """Bootstrap intervals of accuracy, the macro and weighted scores, top-5 and each class's F1
    for one run; ``bootstrap.npz`` also keeps which test images the run got right (McNemar)."""
    resamples, seed = int(settings["resamples"]), int(settings["seed"])
    level, method = float(settings["level"]), str(settings["method"])
    stored = np.load(predictions_path)
    true, probabilities, paths = stored["true"], stored["probabilities"], [str(p) for p in stored["paths"]]
    names = [entry["name"] for entry in metrics["metrics"]["per_class"]]
    if probabilities.ndim != 2 or probabilities.shape[1] != len(names):
        raise ValueError(f"{predictions_path}: probabilities of shape {probabilities.shape} for the {len(names)} classes "
                         "of the run's metrics. Fix: rerun the run's evaluation, which writes both from one checkpoint")
    values = resample_predictions(true, probabilities, resamples=resamples, seed=seed)
    for name, got in zip(SUMMARY, values["estimate"]):
        want = metrics["metrics"][name]
        if (want is None) != (not np.isfinite(got)) or (want is not None and abs(want - got) > 1e-9):
            raise ValueError(f"{predictions_path}: {name} {got} from the predictions, {want} in the metrics. "
                             "Fix: rerun the run's evaluation, which writes both from one checkpoint")
    defined = [j for j in range(len(SUMMARY)) if np.isfinite(values["estimate"][j])]  # top-5: more than 5 classes
    for key in ("estimate", "replicates", "jackknife"):
        values[key] = values[key][..., defined]
    reported = [SUMMARY[j] for j in defined]
    result = {"run": metrics["run"], "settings": {"resamples": resamples, "seed": seed, "level": level, "method": method},
              "images": len(true), "image_ids_sha256": image_digest(paths),
              "metrics": {name: column_interval(values, j, level=level, method=method)
                          for j, name in enumerate(reported)},
              "per_class": [{"id": k, "name": name, "F1": column_interval(values, k, level=level, method=method,
                                                                          per_class=True)}
                            for k, name in enumerate(names)]}
    with atomic_path(bootstrap_path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **{key: value for key, value in values.items()},
                     correct=probabilities.argmax(axis=1) == true, paths=np.asarray(paths))
    write_json(statistics_path, result)
    return result
