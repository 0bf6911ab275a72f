"""How long the segmentation protocol takes (targets of the segmentation study):

* metric time of 1 000 test images at 384 px (random masks with ignore pixels and random
  16-class logits): argmax and per-image confusion matrices, then the metrics (target <= 20 s);
* 10 000 bootstrap resamples of 200 images x 16 classes, with the jackknife (target <= 10 s).

    python benchmarks/segmentation_speed.py [--images 1000] [--size 384] [--classes 16]
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from detstudy.statistics.bootstrap import resample  # noqa: E402
from detstudy.tasks.segmentation.confusion import confusion_matrix, predicted_labels  # noqa: E402
from detstudy.tasks.segmentation.metrics import metrics_from_confusion, resampled_statistics  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--bootstrap-images", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=10000)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    metric_seconds, matrices = 0.0, []
    for _ in range(args.images):
        mask = torch.randint(0, args.classes, (args.size, args.size), generator=generator)
        mask[:8] = 255
        logits = torch.randn(args.classes, args.size, args.size, generator=generator)
        start = time.perf_counter()
        matrices.append(confusion_matrix(mask, predicted_labels(logits), args.classes).numpy())
        metric_seconds += time.perf_counter() - start
    start = time.perf_counter()
    metrics_from_confusion(np.sum(matrices, axis=0), [f"c{k}" for k in range(args.classes)])
    metric_seconds += time.perf_counter() - start
    print(f"metrics of {args.images} images at {args.size} px, {args.classes} classes: {metric_seconds:.1f} s "
          "(labels from logits, confusion matrices, metrics; target <= 20 s)")
    confusions = np.stack(matrices[:args.bootstrap_images])
    start = time.perf_counter()
    resample(partial(resampled_statistics, confusions), len(confusions), resamples=args.resamples, seed=0)
    print(f"{args.resamples} resamples of {len(confusions)} images x {args.classes} classes with the jackknife: "
          f"{time.perf_counter() - start:.1f} s (target <= 10 s)")


if __name__ == "__main__":
    main()
