"""Benchmark: the classification bootstrap, 10 000 resamples of 10 000 test predictions (10
classes), against the target of at most 5 s on a 2-core CPU; the resample draws (the study's
shared ``statistics.bootstrap.resample_weights``) and the statistics timed apart.

    python benchmarks/classification_speed.py [--images 10000] [--resamples 10000] [--classes 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from detstudy.statistics.bootstrap import resample_weights  # noqa: E402
from detstudy.tasks.classification.metrics import resampled_statistics, top_k_correct  # noqa: E402

TARGET_SECONDS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    true = rng.integers(0, args.classes, args.images)
    logits = rng.normal(size=(args.images, args.classes)) + 2.5 * np.eye(args.classes)[true]
    predicted = logits.argmax(axis=1)
    top5 = top_k_correct(true, logits) if args.classes > 5 else None
    start = time.perf_counter()
    weights = resample_weights(args.images, args.resamples, seed=0)
    drawn = time.perf_counter() - start
    start = time.perf_counter()
    values, _ = resampled_statistics(true, predicted, top5, weights, args.classes)
    computed = time.perf_counter() - start
    total = drawn + computed
    print(f"{args.resamples} resamples of {args.images} predictions ({args.classes} classes): draws {drawn:.2f} s, "
          f"statistics {computed:.2f} s, total {total:.2f} s (target {TARGET_SECONDS:.0f} s); "
          f"accuracy {values[:, 0].mean():.4f} +- {values[:, 0].std():.4f}")
    return 0 if total <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
