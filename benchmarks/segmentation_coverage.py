"""How often the bootstrap intervals of mIoU (and mDice) cover the truth, for every interval method.

A large population of generated test images (the segmentation demo's generator and image size,
a seed of its own) is segmented once by one trained demo model, so the population's mIoU (its
summed confusion matrix's) is known. Test sets of the demo's size are drawn from it without
replacement; on each, the 95% interval of every method is computed from the workflow's own
bootstrap (the test images' confusion matrices resampled) and checked against the population
value. Target: the default method covers 92-98%.

    python benchmarks/segmentation_coverage.py --checkpoint results/segmentation/runs/maxvit_demo/160px/base/seed0/best.pt
        [--population 2000] [--draws 300] [--test-images 48] [--resamples 2000] [--workdir DIR]

The checkpoint is a finished run of the segmentation demo (snakemake --configfile
config/segmentation.yaml --cores 2 first); the population's confusion matrices are cached under
--workdir (default: a temporary folder).
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

from detstudy.statistics.bootstrap import jackknife_weights, resample_weights  # noqa: E402
from detstudy.statistics.intervals import METHODS, interval  # noqa: E402
from detstudy.tasks.segmentation.metrics import SUMMARY, resampled_statistics  # noqa: E402

COLUMNS = {"mIoU": SUMMARY.index("mIoU"), "mDice": SUMMARY.index("mDice")}


def population_confusions(checkpoint: Path, folder: Path, size: int, seed: int) -> np.ndarray:
    """[N, C, C]: the checkpoint's per-image confusion matrices on a generated population (cached)."""
    cached = folder / f"confusions_{checkpoint.parent.parent.parent.parent.name}.npy"
    if cached.is_file():
        return np.load(cached)
    import torch

    from detstudy.tasks.segmentation.checkpoint import load_checkpoint
    from detstudy.tasks.segmentation.data.dataset import MaskDataset, eval_transform
    from detstudy.tasks.segmentation.data.layout import MaskSplit
    from detstudy.tasks.segmentation.data.synthetic import generate_segmentation_dataset
    from detstudy.tasks.segmentation.inference import dataset_confusions

    synthetic = yaml.safe_load((ROOT / "config" / "segmentation.yaml").read_text())["dataset"]["synthetic"]
    paths = generate_segmentation_dataset(folder, seed=seed, image_size=synthetic["image_size"],
                                          max_defects=synthetic.get("max_defects", 4),
                                          split_sizes={"train": 0, "val": 0, "test": size})
    torch.set_num_threads(2)
    model, state = load_checkpoint(checkpoint, torch.device("cpu"))
    resolution = model.settings["resolution"]
    data = MaskDataset(MaskSplit.of(**paths["test"]), len(state["class_names"]), eval_transform(resolution),
                       ignore_index=state["ignore_index"], resize_mask=False)
    start = time.perf_counter()
    confusions = dataset_confusions(model, data, torch.device("cpu"), resolution).numpy()
    print(f"segmented {size} population images in {time.perf_counter() - start:.0f} s")
    np.save(cached, confusions)
    return confusions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--population", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--test-images", type=int, default=48)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        sys.exit(f"{args.checkpoint}: no such checkpoint. Fix: run the segmentation demo first, or name another "
                 "segmentation run's best.pt.")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="segmentation-coverage-"))
    population = population_confusions(args.checkpoint, workdir / "population", args.population, seed=1000)
    truth, _ = resampled_statistics(population, np.ones((1, len(population))))
    print(f"population of {len(population)} images: " +
          ", ".join(f"{name} {truth[0, j]:.4f}" for name, j in COLUMNS.items()))
    rng = np.random.default_rng(0)
    covered = {(method, name): 0 for method in METHODS for name in COLUMNS}
    widths = {key: [] for key in covered}
    estimates = {name: [] for name in COLUMNS}
    start = time.perf_counter()
    for draw in range(args.draws):
        test = population[rng.choice(len(population), args.test_images, replace=False)]
        n = len(test)
        estimate, _ = resampled_statistics(test, np.ones((1, n)))
        replicates, _ = resampled_statistics(test, resample_weights(n, args.resamples, seed=draw))
        jackknife, _ = resampled_statistics(test, jackknife_weights(n))
        for name, j in COLUMNS.items():
            estimates[name].append(estimate[0, j])
            for method in METHODS:
                found = interval(replicates[:, j], estimate[0, j], jackknife=jackknife[:, j], level=args.level,
                                 method=method, bounds=(0.0, 1.0))
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
