"""Benchmark: training throughput of the classification CNN on the engine (``train_run``: the
workflow's own training, with its progress, history and checkpointing) against a bare
torchvision-reference-style loop (DataLoader, forward, cross-entropy, backward, AdamW step) on
the same model, data, transforms, batch size and threads; prints images/s of both (the first
epoch left out; the two alternated ``--repeats`` times, the best of each kept) and the ratio
(target: at least 1.0; exits 1 below 0.95).

    python benchmarks/classification_throughput.py [--architecture resnet18] [--epochs 3] [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from detstudy.engine.runtime import seed_everything  # noqa: E402
from detstudy.tasks.classification.data.dataset import (ImageAugmentation, ImageDataset,  # noqa: E402
                                                        train_transform)
from detstudy.tasks.classification.data.layout import ImageSplit  # noqa: E402
from detstudy.tasks.classification.data.synthetic import class_names, generate_classification_dataset  # noqa: E402
from detstudy.tasks.classification.models import PREPROCESSING, build_classifier  # noqa: E402
from detstudy.tasks.classification.training import train_run  # noqa: E402

AUGMENTATION = {"crop_scale": [0.5, 1.0], "horizontal_flip": 0.5}


def bare_loop(architecture: str, split: ImageSplit, resolution: int, batch_size: int, epochs: int) -> float:
    """Images per second of the plain loop, the first epoch (warm-up) left out."""
    seed_everything(0)
    model = build_classifier(architecture, len(class_names()))
    data = ImageDataset(split, class_names(), train_transform(ImageAugmentation.from_dict(AUGMENTATION), resolution,
                                                              PREPROCESSING[model.family]))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    model.train()
    rates = []
    for _ in range(epochs):
        seen, started = 0, time.perf_counter()
        for images, labels in loader:
            loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(images)
        rates.append(seen / (time.perf_counter() - started))
    return sum(rates[1:]) / len(rates[1:])


def engine_loop(architecture: str, splits: dict, resolution: int, batch_size: int, epochs: int, folder: Path) -> float:
    """Images per second the engine's history records (training only, validation excluded), first epoch left out."""
    settings = {"epochs": epochs, "batch_size": batch_size, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05,
                "lr_schedule": "cosine", "warmup_iters": 0, "val_interval": epochs, "augmentation": AUGMENTATION}
    train_run(architecture=architecture, model_settings={}, train_settings=settings,
              train_split=ImageSplit.of(splits["train"]), val_split=ImageSplit.of(splits["val"]),
              class_names=class_names(), resolution=resolution, seed=0, checkpoint_path=folder / "best.pt",
              history_path=folder / "history.csv", label_smoothing=0.1)
    with open(folder / "history.csv") as handle:
        rates = [float(row["images_per_second"]) for row in csv.DictReader(handle)]
    return sum(rates[1:]) / len(rates[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="resnet18")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        splits = generate_classification_dataset(tmp, split_sizes={"train": args.images, "val": 12, "test": 6},
                                                 image_size=256, crop_size=args.resolution)
        bares, engines = [], []
        for _ in range(args.repeats):  # alternated, the best of each kept (timeit's rule: noise only slows)
            bares.append(bare_loop(args.architecture, ImageSplit.of(splits["train"]), args.resolution, args.batch_size,
                                   args.epochs))
            engines.append(engine_loop(args.architecture, splits, args.resolution, args.batch_size, args.epochs,
                                       Path(tmp)))
        bare, engine = max(bares), max(engines)
    ratio = engine / bare
    print(f"{args.architecture} at {args.resolution} px, batch {args.batch_size}, {args.threads} threads: engine "
          f"{engine:.1f} img/s (runs: {', '.join(f'{r:.1f}' for r in engines)}), bare loop {bare:.1f} img/s "
          f"(runs: {', '.join(f'{r:.1f}' for r in bares)}), ratio {ratio:.3f} (target >= 1.0)")
    return 0 if ratio >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
