"""How often the bootstrap intervals cover the truth, for every interval method the workflow offers.

A large population of generated test images (the demo's generator and image size, a seed of
its own) is detected once by one trained demo model, so the population's AP50 and mAP are
known. Test sets of the demo's size are drawn from it without replacement; on each, the 95%
interval of every method is computed from the workflow's own bootstrap (resampled COCOeval)
and checked against the population value. Target: the default method covers 92-98%.

    python benchmarks/bootstrap_coverage.py --checkpoint results/runs/frcnn_resnet18/192px/base/seed0/best.pt
        [--population 2000] [--draws 300] [--test-images 64] [--resamples 2000] [--workdir DIR]

The checkpoint is a finished run of the default grid (run `snakemake --cores 2` first); the
population is generated under --workdir (default: a temporary folder) and reused when present.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from detstudy.statistics.intervals import METHODS, interval  # noqa: E402
from detstudy.tasks.detection.evaluation.resampled_ap import SUMMARY, extract_matches, resampled_statistics  # noqa: E402
from detstudy.statistics.bootstrap import jackknife_weights, resample_weights  # noqa: E402

COLUMNS = {"AP50": SUMMARY.index("AP50"), "mAP": SUMMARY.index("AP")}


def population_detections(checkpoint: Path, folder: Path, size: int, seed: int):
    """The population split and the checkpoint's detections on it (both cached in ``folder``)."""
    import json

    import torch

    from detstudy.tasks.detection.checkpoint import load_checkpoint
    from detstudy.tasks.detection.data.coco import SplitPaths
    from detstudy.tasks.detection.data.dataset import CocoDetection
    from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
    from detstudy.tasks.detection.evaluation.inference import predict_dataset

    synthetic = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["dataset"]["synthetic"]
    split = SplitPaths(folder / "annotations" / "test.json", folder / "images" / "test")
    if not split.annotations.is_file():
        generate_synthetic_dataset(folder, seed=seed, image_size=synthetic["image_size"],
                                   max_defects=synthetic.get("max_defects", 4),
                                   split_sizes={"train": 0, "val": 0, "test": size})
    cached = folder / f"detections_{checkpoint.parent.parent.parent.parent.name}.json"
    if not cached.is_file():
        torch.set_num_threads(2)
        adapter, _, _ = load_checkpoint(checkpoint, torch.device("cpu"))
        start = time.perf_counter()
        detections = predict_dataset(adapter, CocoDetection(split), torch.device("cpu"), 8)
        print(f"detected {size} population images in {time.perf_counter() - start:.0f} s")
        cached.write_text(json.dumps(detections))
    return json.loads(split.annotations.read_text()), json.loads(cached.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--population", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--test-images", type=int, default=64)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        sys.exit(f"{args.checkpoint}: no such checkpoint. Fix: run the default grid (snakemake --cores 2) first, "
                 "or name another run's best.pt.")
    from detstudy.tasks.detection.evaluation.metrics import coco_evaluator

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="coverage-"))
    gt, detections = population_detections(args.checkpoint, workdir / "population", args.population, seed=1000)
    population = extract_matches(coco_evaluator(gt, detections))
    truth, _ = resampled_statistics(population, np.ones((1, population.n_images), dtype=np.int64))
    print(f"population of {population.n_images} images: " +
          ", ".join(f"{name} {truth[0, j]:.4f}" for name, j in COLUMNS.items()))
    rng = np.random.default_rng(0)
    covered = {(method, name): 0 for method in METHODS for name in COLUMNS}
    widths = {key: [] for key in covered}
    estimates = {name: [] for name in COLUMNS}
    start = time.perf_counter()
    for draw in range(args.draws):
        test = population.subset(rng.choice(population.n_images, args.test_images, replace=False))
        n = test.n_images
        estimate, _ = resampled_statistics(test, np.ones((1, n), dtype=np.int64))
        replicates, _ = resampled_statistics(test, resample_weights(n, args.resamples, seed=draw))
        jackknife, _ = resampled_statistics(test, jackknife_weights(n))
        for name, j in COLUMNS.items():
            estimates[name].append(estimate[0, j])
            for method in METHODS:
                found = interval(replicates[:, j], estimate[0, j], jackknife=jackknife[:, j], level=args.level,
                                 method=method)
                covered[(method, name)] += bool(found.low <= truth[0, j] <= found.high)
                widths[(method, name)].append(found.high - found.low)
    seconds = time.perf_counter() - start
    print(f"{args.draws} test sets of {args.test_images} images, {args.resamples} resamples each ({seconds:.0f} s)")
    for name in COLUMNS:
        bias = np.mean(estimates[name]) - truth[0, COLUMNS[name]]
        print(f"{name}: mean test-set estimate {np.mean(estimates[name]):.4f} (bias {bias:+.4f} against the population)")
        for method in METHODS:
            rate = covered[(method, name)] / args.draws
            print(f"  {method:10s} coverage {100 * rate:5.1f}% of nominal {100 * args.level:.0f}%"
                  f" (mean width {np.mean(widths[(method, name)]):.3f})")


if __name__ == "__main__":
    main()
