"""How long the bootstrap statistics take: the default grid's 11 runs on its 64 test images with
10 000 paired resamples (target: <= 60 s), and one run on 1 000 test images with 1 000 resamples
(target: <= 30 s), on detections shaped like the demo's (6 classes, 100 detections per image, as
DEIMv2 keeps). Each run is matched once by COCOeval and re-accumulated per resample
(detstudy.tasks.detection.evaluation.resampled_ap); the times include the matching and the leave-one-out pass.

    python benchmarks/bootstrap_speed.py [--runs 11] [--images 64] [--resamples 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from detstudy.tasks.detection.evaluation.metrics import coco_evaluator  # noqa: E402
from detstudy.tasks.detection.evaluation.resampled_ap import extract_matches  # noqa: E402
from detstudy.steps.run_statistics import bootstrap  # noqa: E402

CLASSES = 6
PER_IMAGE = 100


def scene(n_images: int, seed: int) -> tuple[dict, list[dict]]:
    """A test split of 1-4 boxes per image and 100 detections per image: most boxes found with
    some displacement and a confident score, the rest low-scoring false positives."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 192, "height": 192} for i in range(n_images)]
    annotations, detections = [], []
    for image in images:
        found = 0
        for _ in range(rng.integers(1, 5)):
            x, y = rng.uniform(0, 140, 2)
            w, h = rng.uniform(8, 50, 2)
            label = int(rng.integers(1, CLASSES + 1))
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": label,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            if rng.random() < 0.7:
                found += 1
                detections.append({"image_id": image["id"], "category_id": label, "score": float(rng.uniform(0.3, 1)),
                                   "bbox": [x + rng.normal(0, 3), y + rng.normal(0, 3), w, h]})
        for _ in range(PER_IMAGE - found):
            detections.append({"image_id": image["id"], "category_id": int(rng.integers(1, CLASSES + 1)),
                               "score": float(rng.uniform(0, 0.5)),
                               "bbox": [*rng.uniform(0, 140, 2), *rng.uniform(8, 50, 2)]})
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(CLASSES)]
    return {"images": images, "categories": categories, "annotations": annotations}, detections


def time_runs(n_runs: int, n_images: int, resamples: int) -> float:
    gt, _ = scene(n_images, 0)
    start = time.perf_counter()
    for run in range(n_runs):
        _, detections = scene(n_images, 0)  # the same test split for every run ...
        rng = np.random.default_rng(run + 1)  # ... and each run's own detections
        detections = [{**d, "score": float(np.clip(d["score"] + rng.normal(0, 0.05), 0, 1))} for d in detections]
        bootstrap(extract_matches(coco_evaluator(gt, detections)), resamples=resamples, seed=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--resamples", type=int, default=10000)
    args = parser.parse_args()
    grid = time_runs(args.runs, args.images, args.resamples)
    print(f"{args.runs} runs x {args.images} images, {args.resamples} resamples each: {grid:.1f} s (target <= 60 s)")
    large = time_runs(1, 1000, 1000)
    print(f"1 run x 1000 images, 1000 resamples: {large:.1f} s (target <= 30 s)")


if __name__ == "__main__":
    main()
