"""Benchmark: the segmentation split check (``check_mask_split``: every image header verified,
every mask decoded and counted, both hashed for provenance) on a dataset of 10 000 image/mask
pairs, against the target of at most 60 s on a 2-core CPU.

The pairs are generated once into --workdir (random JPEG images, PNG masks of a few classes with
an ignore border), then checked by the step the workflow runs.

    python benchmarks/mask_check_speed.py [--pairs 10000] [--size 512] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from detstudy.steps.check_mask_split import check_mask_split  # noqa: E402

TARGET_SECONDS = 60.0
CLASSES = [f"class{k}" for k in range(16)]


def generate(folder: Path, pairs: int, size: int) -> None:
    images, masks = folder / "images", folder / "masks"
    if masks.is_dir() and len(list(masks.iterdir())) == pairs:
        return
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    for k in range(pairs):
        Image.fromarray(np.roll(noise, k, axis=0)).save(images / f"{k:05d}.jpg", quality=85)
        mask = np.zeros((size, size), dtype=np.uint8)
        y, x = rng.integers(0, size - 64, 2)
        mask[y:y + 64, x:x + 64] = rng.integers(1, len(CLASSES))
        mask[:8] = 255
        Image.fromarray(mask).save(masks / f"{k:05d}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="mask-check-"))
    start = time.perf_counter()
    generate(folder, args.pairs, args.size)
    print(f"{args.pairs} pairs of {args.size}x{args.size} px in {folder} (generated in {time.perf_counter() - start:.0f} s)")
    start = time.perf_counter()
    report = check_mask_split("train", {"images": str(folder / "images"), "masks": str(folder / "masks")},
                              classes=CLASSES, check_json=folder / "check.json")
    seconds = time.perf_counter() - start
    print(f"checked {report['counts']['images']} pairs in {seconds:.1f} s (target {TARGET_SECONDS:.0f} s): "
          f"{1000 * seconds / args.pairs:.2f} ms per pair")
    return 0 if seconds <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
