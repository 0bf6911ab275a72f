"""Peak memory of the bootstrap statistics for a large test set: one run's matches with
``--true-positives`` true positives per class on ``--images`` test images, re-accumulated for
``--resamples`` resamples (detstudy.tasks.detection.evaluation.resampled_ap). The per-image
counts of one (class, IoU threshold) are two [true positives x images] float arrays; classes and
thresholds are processed one at a time, so the peak is about two such arrays, whatever the
number of classes.

    python benchmarks/bootstrap_memory.py [--images 5000] [--true-positives 20000] [--classes 1] [--resamples 200]

Prints the peak resident memory of the computation, measured in a fresh process (the growth
over the process after its imports), and the size of one count array.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from detstudy.statistics.bootstrap import resample_weights  # noqa: E402
from detstudy.tasks.detection.evaluation.resampled_ap import ClassMatches, Matches, resampled_statistics  # noqa: E402

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def synthetic_matches(n_images: int, true_positives: int, n_classes: int, seed: int = 0) -> Matches:
    """Matches shaped like a large evaluation: per class, ``true_positives`` true and as many false
    positives spread over the images, scores distinct, fewer true positives at stricter IoU."""
    rng = np.random.default_rng(seed)
    classes = []
    for _ in range(n_classes):
        n = 2 * true_positives
        score = np.sort(rng.random(n))[::-1]
        image = rng.integers(0, n_images, n)
        is_true = np.zeros(n, dtype=bool)
        is_true[rng.choice(n, true_positives, replace=False)] = True
        strictness = rng.random(n)
        true = np.stack([is_true & (strictness < 1 - 0.08 * t) for t in range(len(IOU_THRESHOLDS))])
        false = ~true
        gt_counts = np.bincount(image[is_true], minlength=n_images) + (rng.random(n_images) < 0.2)
        classes.append(ClassMatches(image=image, true=true, false=false, score=score, gt_counts=gt_counts, tied=False))
    return Matches(image_ids=list(range(1, n_images + 1)), category_ids=list(range(1, n_classes + 1)),
                   classes=classes, iou_thresholds=IOU_THRESHOLDS, recall_thresholds=RECALL_THRESHOLDS)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--true-positives", type=int, default=20000)
    parser.add_argument("--classes", type=int, default=1)
    parser.add_argument("--resamples", type=int, default=200)
    args = parser.parse_args()
    matches = synthetic_matches(args.images, args.true_positives, args.classes)
    weights = resample_weights(args.images, args.resamples, seed=0)
    before = peak_mib()
    start = time.perf_counter()
    summary, _ = resampled_statistics(matches, weights)
    seconds = time.perf_counter() - start
    array = args.true_positives * args.images * 8 / 2**20
    print(f"{args.classes} class(es), {args.true_positives} true positives each, {args.images} images, "
          f"{args.resamples} resamples: peak {peak_mib() - before:.0f} MiB above the {before:.0f} MiB after "
          f"setup; one count array {array:.0f} MiB; {seconds:.1f} s; mean AP {np.nanmean(summary[:, 0]):.3f}")


if __name__ == "__main__":
    main()
