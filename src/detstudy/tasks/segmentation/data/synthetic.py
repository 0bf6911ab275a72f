"""The segmentation demo: the synthetic defect world (:mod:`detstudy.tasks.synthetic_defects`)
seen as masks. Each split is ``images/<split>/<stem>.png`` and ``masks/<split>/<stem>.png``
(class indices: 0 background, 1..6 the six classes in the detection demo's order), the same
images the detection demo draws from the same seed.
"""

from __future__ import annotations

from pathlib import Path

from detstudy.study.splits import DEFAULT_SPLIT_SIZES, SPLITS, synthetic_stem
from detstudy.study.classes import synthetic_class_names as class_names
from detstudy.tasks.synthetic_defects import check_world_settings, image_rng, render_image, save_png


__all__ = ["class_names", "generate_segmentation_dataset"]


def generate_segmentation_dataset(out_dir, *, seed: int = 0, split_sizes: dict[str, int] | None = None,
                                  image_size: int = 256, max_defects: int = 4,
                                  empty_fraction: float = 0.05) -> dict[str, dict[str, str]]:
    """Write every split's images and masks under ``out_dir``; returns
    ``{split: {"images": folder, "masks": folder}}``. Same arguments, byte-identical files."""
    check_world_settings(image_size, max_defects, empty_fraction)
    sizes = {**DEFAULT_SPLIT_SIZES, **(split_sizes or {})}
    unknown = sorted(set(sizes) - set(SPLITS))
    if unknown:
        raise ValueError(f"split_sizes: unknown split(s) {unknown}; the splits are {list(SPLITS)}")
    out_dir = Path(out_dir)
    result = {}
    for split in SPLITS:
        images, masks = out_dir / "images" / split, out_dir / "masks" / split
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        for index in range(int(sizes[split])):
            pixels, _, labels = render_image(image_rng(seed, split, index), image_size, max_defects, empty_fraction)
            stem = synthetic_stem(split, index)
            save_png(images / f"{stem}.png", pixels)
            save_png(masks / f"{stem}.png", labels)
        result[split] = {"images": str(images), "masks": str(masks)}
    return result
