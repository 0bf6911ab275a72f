"""The detection demo: the synthetic defect world (:mod:`detstudy.tasks.synthetic_defects`)
written as a COCO dataset, one JSON per split and a folder of PNG images.

The same arguments give byte-identical files, and a split does not depend on the sizes of the
others (each image has its own generator).
"""

from __future__ import annotations

from pathlib import Path

from detstudy.engine.io import write_json
from detstudy.study.classes import CATEGORIES
from detstudy.study.splits import SPLITS
from detstudy.tasks.detection.data.layout import DEFAULT_SPLIT_SIZES, synthetic_file_name
from detstudy.tasks.synthetic_defects import check_world_settings, image_rng, render_image, save_png


def _categories() -> list[dict]:
    return [{**c, "supercategory": "surface" if c["name"] == "NORMAL" else "defect"} for c in CATEGORIES]


def generate_synthetic_dataset(out_dir, *, seed: int = 0, split_sizes: dict[str, int] | None = None,
                               image_size: int = 256, max_defects: int = 4,
                               empty_fraction: float = 0.05) -> dict[str, dict[str, str]]:
    """Writes out_dir/images/{split}/{split}_{index:05d}.png and out_dir/annotations/{split}.json
    for split in ("train","val","test"); returns {split: {"annotations": path, "images": folder}}.

    ``split_sizes`` overrides the default sizes (train 160, val 32, test 64) split by split.
    Files from an earlier, larger run in the same folder are left alone; the JSON lists the
    images of this run only.
    """
    sizes = dict(DEFAULT_SPLIT_SIZES)
    if split_sizes:
        unknown = sorted(set(split_sizes) - set(SPLITS))
        if unknown:
            raise ValueError(f"split_sizes: unknown split(s) {unknown}; the splits are {list(SPLITS)}")
        sizes.update(split_sizes)
    if any(int(n) < 0 for n in sizes.values()):
        raise ValueError(f"split_sizes must be >= 0, got {sizes}")
    check_world_settings(image_size, max_defects, empty_fraction)

    out_dir = Path(out_dir)
    category_ids = {c["name"]: c["id"] for c in CATEGORIES}
    result: dict[str, dict[str, str]] = {}
    for split in SPLITS:
        image_dir = out_dir / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for index in range(int(sizes[split])):
            pixels, objects, _ = render_image(image_rng(seed, split, index), image_size, max_defects, empty_fraction)
            file_name = synthetic_file_name(split, index)
            save_png(image_dir / file_name, pixels)
            image_id = index + 1
            images.append({"id": image_id, "file_name": file_name, "width": image_size, "height": image_size})
            for name, (x, y, w, h) in objects:
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": category_ids[name],
                    "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                })
        coco = {
            "info": {
                "description": "detstudy synthetic industrial-defect dataset (procedural, for demos and tests)",
                "version": "1", "generator": "detstudy.tasks.detection.data.synthetic", "seed": int(seed), "split": split,
                "image_size": int(image_size), "max_defects": int(max_defects),
                "empty_fraction": float(empty_fraction),
            },
            "images": images,
            "annotations": annotations,
            "categories": _categories(),
        }
        annotation_path = out_dir / "annotations" / f"{split}.json"
        write_json(annotation_path, coco, indent=2)
        result[split] = {"annotations": str(annotation_path), "images": str(image_dir)}
    return result
