"""Benchmark: the classification bootstrap, 10 000 resamples of 10 000 test predictions (10
classes), with the leave-one-out values the BCa interval needs, against the target of at most
5 s on a 2-core CPU (``detstudy.statistics.classification.resample_predictions``, the step's own code).

    python benchmarks/classification_speed.py [--images 10000] [--resamples 10000] [--classes 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from detstudy.statistics.classification import resample_predictions  # noqa: E402

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
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    start = time.perf_counter()
    values = resample_predictions(true, probabilities, resamples=args.resamples, seed=0)
    total = time.perf_counter() - start
    accuracy = values["replicates"][:, 0]
    print(f"{args.resamples} resamples of {args.images} predictions ({args.classes} classes), with the jackknife: "
          f"{total:.2f} s (target {TARGET_SECONDS:.0f} s); accuracy {values['estimate'][0]:.4f}, "
          f"bootstrap sd {accuracy.std():.4f}")
    return 0 if total <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
