"""The bootstrap over test images, for any task's per-image statistic.

A task gives ``statistic(weights) -> (summary [B, S], per_class [B, C])``: its numbers on the
test set made of each row's copies of every image (detection: COCOeval re-accumulated from
the matches; segmentation: the sum of the images' confusion matrices). :func:`resample`
evaluates it on the test set itself, on ``resamples`` bootstrap draws and on every
leave-one-out set (the jackknife BCa needs); the draws depend only on the number of images
and the seed, so every run of a study is resampled on the same draws (paired comparisons).
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from detstudy.statistics.intervals import METHODS, interval

Statistic = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def resample_weights(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n_images]: how many times each test image is drawn, ``n_images`` draws with
    replacement per resample. The same arguments give the same draws for every run."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=resamples)


#: Resamples per block of :func:`draw_indices` (part of what fixes the draws: keep it).
INDEX_BLOCK = 500


def draw_indices(n_images: int, resamples: int, seed: int):
    """Yield [rows, n_images] blocks of drawn image indices (``resamples`` rows in all), ``n_images``
    draws with replacement per row: the classification bootstrap's draws, shared by every run of
    a study like :func:`resample_weights`' (whose multinomial counts cost 3x more at 10 000 x 10 000),
    from their own stream."""
    rng = np.random.default_rng([seed, 2])
    for start in range(0, resamples, INDEX_BLOCK):
        yield rng.integers(0, n_images, size=(min(INDEX_BLOCK, resamples - start), n_images))


def jackknife_weights(n_images: int) -> np.ndarray:
    """[n_images, n_images]: every test image once, except the one left out."""
    return 1 - np.eye(n_images, dtype=np.int64)


def image_digest(image_ids) -> str:
    """SHA-256 of the test images' identifiers (COCO ids, file stems) in evaluation order: runs
    compared resample by resample must share it. Integer ids are written as integers."""
    names = (str(int(i)) if isinstance(i, (int, np.integer)) else str(i) for i in image_ids)
    return hashlib.sha256(",".join(names).encode()).hexdigest()


def resample(statistic: Statistic, n_images: int, *, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """``statistic`` of the test set (``estimate``), of every resample (``replicates``) and of
    every leave-one-out set (``jackknife``), each with its per-class ``class_`` counterpart."""
    summary, per_class = statistic(np.ones((1, n_images), dtype=np.int64))
    replicates, class_replicates = statistic(resample_weights(n_images, resamples, seed))
    jackknife, class_jackknife = statistic(jackknife_weights(n_images))
    return {"estimate": summary[0], "class_estimate": per_class[0], "replicates": replicates,
            "class_replicates": class_replicates, "jackknife": jackknife, "class_jackknife": class_jackknife}


def column_interval(values: dict[str, np.ndarray], column: int, *, level: float, method: str,
                    per_class: bool = False) -> dict:
    """One column of :func:`resample`'s ``values`` as a statistics.json entry: the interval of
    the configured ``method`` (estimate, low, high, bias, standard error), and every method's
    [low, high] beside it. Every statistic of the tasks is a share (AP, recall, IoU, accuracy),
    so the intervals are cut to [0, 1]."""
    key = "class_" if per_class else ""
    found = {name: interval(values[f"{key}replicates"][:, column], values[f"{key}estimate"][column],
                            jackknife=values[f"{key}jackknife"][:, column], level=level, method=name,
                            bounds=(0.0, 1.0)).to_dict() for name in METHODS}
    return {**found[method], "method": method, **{name: [found[name]["low"], found[name]["high"]] for name in METHODS}}
