"""Benchmark: DEIMv2 training throughput with and without the DEIM augmentation pipeline.

Trains the model of the default config's `deimv2_demo` entry on the embedded synthetic
dataset for a fixed number of iterations, twice: once with flips only and once with every
op of the official recipe switched on (mosaic, photometric, zoom-out, IoU crop, mixup,
copy-blend, at the official probabilities, inside their epoch windows), and prints the
training images/s of both and their ratio, plus the rate of the data pipeline alone.
Target: the augmented rate is at least 0.8 of the augmentation-free one, i.e. data
preparation is not the bottleneck.

    python benchmarks/augmentation_throughput.py [--iterations 40] [--threads 1] [--workers 0]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from detstudy.tasks.detection.data.augment import DEIM_OFFICIAL, AugmentationSettings, BatchAugment, EpochWindows, TrainAugmentation
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection, collate
from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
from detstudy.tasks.detection.models import build_detector

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.8


def loader(data: CocoDetection, augmentation: dict, batch_size: int, workers: int, resolution: int) -> DataLoader:
    settings = AugmentationSettings.from_dict(augmentation)
    windows = EpochWindows(0, 1, 1)  # epoch 0 lies inside every window: all ops are live
    dataset = TrainAugmentation(data, settings, windows, resolution)
    collate_fn = BatchAugment(settings, windows) if settings.batch_level else collate
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=collate_fn,
                      num_workers=workers)


def batches(data_loader: DataLoader, count: int):
    produced = 0
    while True:
        for batch in data_loader:
            yield batch
            produced += 1
            if produced == count:
                return


def data_rate(data_loader: DataLoader, iterations: int) -> float:
    started = time.perf_counter()
    images = sum(len(images) for images, _ in batches(data_loader, iterations))
    return images / (time.perf_counter() - started)


def training_rate(entry: dict, categories: int, resolution: int, data_loader: DataLoader, iterations: int) -> float:
    torch.manual_seed(0)
    adapter = build_detector(entry["architecture"], categories, resolution, entry.get("model") or {})
    adapter.model.train()
    optimizer = torch.optim.AdamW(adapter.model.parameters(), lr=entry["training"].get("lr", 5e-4))
    warmup = 3  # first iterations allocate; not timed
    images = 0
    for step, (batch, targets) in enumerate(batches(data_loader, iterations + warmup)):
        if step == warmup:
            started = time.perf_counter()
        pixels = [image.float().div_(255.0) for image in batch]
        targets = [{"boxes": t["boxes"].as_subclass(torch.Tensor), "labels": t["labels"]} for t in targets]
        loss = sum(adapter.losses(pixels, targets).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        images += len(batch) if step >= warmup else 0
    return images / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the default grid's jobs use 1)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (the demo config uses 0)")
    parser.add_argument("--model", default="deimv2_demo", help="an entry of config/config.yaml's models")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    entry = config["models"][args.model]
    resolution = config["grid"]["resolutions"][0]
    batch_size = entry["training"].get("batch_size", 4)
    synthetic = config["dataset"]["synthetic"]
    with tempfile.TemporaryDirectory(prefix="detstudy-aug-bench-") as folder:
        paths = generate_synthetic_dataset(folder, seed=synthetic["seed"], image_size=synthetic["image_size"],
                                 split_sizes={"train": 64, "val": 1, "test": 1})
        data = CocoDetection(SplitPaths.of(**paths["train"]))
        plain = {"horizontal_flip": 0.5}
        full = dict(DEIM_OFFICIAL)
        print(f"{args.model} ({entry['architecture']}) at {resolution} px, batch {batch_size}, "
              f"{args.threads} thread(s), {args.workers} worker(s), {args.iterations} timed iterations")
        rates = {}
        for name, augmentation in (("flips only", plain), ("DEIM recipe", full)):
            random.seed(0)
            torch.manual_seed(0)
            pipeline = data_rate(loader(data, augmentation, batch_size, args.workers, resolution), args.iterations)
            rates[name] = training_rate(entry, len(data.categories), resolution,
                                        loader(data, augmentation, batch_size, args.workers, resolution),
                                        args.iterations)
            print(f"  {name:12s} training {rates[name]:6.2f} img/s   data pipeline alone {pipeline:7.1f} img/s")
    ratio = rates["DEIM recipe"] / rates["flips only"]
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(f"  ratio {ratio:.2f} ({verdict} the target >= {TARGET_RATIO})")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
