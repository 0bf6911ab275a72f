"""The classification demo: the synthetic defect world (:mod:`detstudy.tasks.synthetic_defects`)
seen as crops. Each object the world draws becomes one image, its box widened by a margin and
made square, resized to ``crop_size``; its class is its folder. ``images/<split>/<class>/<stem>.png``
is torchvision's ``ImageFolder`` layout; the same seed gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from detstudy.study.classes import CATEGORIES
from detstudy.study.splits import SPLITS
from detstudy.tasks.synthetic_defects import check_world_settings, image_rng, render_image, save_png

#: Crops per split where the config does not say (the same number per class).
DEFAULT_CROPS = {"train": 480, "val": 120, "test": 240}
MARGIN = 0.25  # of the box's longer side, on each side: the crop shows the defect in its surface


def class_names() -> list[str]:
    return sorted(category["name"] for category in CATEGORIES)  # ImageFolder's order: sorted folders


def square_crop(pixels: np.ndarray, box, size: int) -> np.ndarray:
    """The square around ``box`` (x, y, w, h) widened by :data:`MARGIN`, clipped to the image, at ``size`` px."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * MARGIN)
    cx, cy = x + w / 2, y + h / 2
    height, width = pixels.shape[:2]
    left, top = int(max(0, round(cx - side / 2))), int(max(0, round(cy - side / 2)))
    right, bottom = int(min(width, round(cx + side / 2))), int(min(height, round(cy + side / 2)))
    crop = Image.fromarray(pixels[top:max(bottom, top + 1), left:max(right, left + 1)])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))


def generate_classification_dataset(out_dir, *, seed: int = 0, split_sizes: dict[str, int] | None = None,
                                    image_size: int = 256, crop_size: int = 64, max_defects: int = 4) -> dict[str, str]:
    """Write every split's crops under ``out_dir/images/<split>/<class>/``; returns ``{split: folder}``.
    Scenes are drawn until every class has its share of the split's crops (the classes balanced)."""
    check_world_settings(image_size, max(max_defects, 1), 0.0)
    sizes = {**DEFAULT_CROPS, **(split_sizes or {})}
    unknown = sorted(set(sizes) - set(SPLITS))
    if unknown:
        raise ValueError(f"split_sizes: unknown split(s) {unknown}; the splits are {list(SPLITS)}")
    result = {}
    names = class_names()
    for split in SPLITS:
        root = Path(out_dir) / "images" / split
        for name in names:
            (root / name).mkdir(parents=True, exist_ok=True)
        size = int(sizes[split])
        if size < len(names):
            raise ValueError(f"split_sizes: {split} has {size} crops, fewer than the {len(names)} classes; every "
                             "split needs every class")
        # balanced: each class's share of the split (the first classes one more when it does not divide)
        left = {name: size // len(names) + (k < size % len(names)) for k, name in enumerate(names)}
        scene = 0
        while any(left.values()):
            if scene > 1000 * size:
                raise RuntimeError(f"{split}: the synthetic world drew no {[n for n, v in left.items() if v]} "
                                   f"in {scene} scenes")
            pixels, objects, _ = render_image(image_rng(seed, split, scene), image_size, max(max_defects, 1), 0.0)
            for k, (name, box) in enumerate(objects):
                if left[name]:
                    save_png(root / name / f"{split}_{scene:05d}_{k}.png", square_crop(pixels, box, crop_size))
                    left[name] -= 1
            scene += 1
        result[split] = str(root)
    return result
