"""The synthetic industrial-defect generator: deterministic, valid COCO, varied enough to learn from."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detstudy.tasks import synthetic_defects as world
from detstudy.tasks.detection.data import synthetic

TINY = {"train": 8, "val": 3, "test": 2}
SPLITS = ("train", "val", "test")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _load(paths: dict[str, dict[str, str]], split: str) -> dict:
    return json.loads(Path(paths[split]["annotations"]).read_text())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return root, synthetic.generate_synthetic_dataset(root, seed=3, split_sizes=TINY, image_size=96)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A moderate sample at the default size, generated once for the variety checks."""
    root = tmp_path_factory.mktemp("sample")
    paths = synthetic.generate_synthetic_dataset(root, seed=0, split_sizes={"train": 60, "val": 0, "test": 0},
                                       empty_fraction=0.1)
    return _load(paths, "train")


def test_public_names():
    assert world.class_names() == ["NORMAL", "DEFORMACIONES", "ROTURA_FRACTURA", "RAYONES_ARANAZOS",
                                       "PERFORACIONES", "CONTAMINACION"]
    assert [c["id"] for c in world.CATEGORIES] == [1, 2, 3, 4, 5, 6]
    assert set(world.DRAWERS) == set(world.class_names())


def test_layout_and_return_value(tiny):
    root, paths = tiny
    assert set(paths) == set(SPLITS)
    for split in SPLITS:
        assert Path(paths[split]["annotations"]) == root / "annotations" / f"{split}.json"
        assert Path(paths[split]["images"]) == root / "images" / split
        names = sorted(p.name for p in Path(paths[split]["images"]).glob("*.png"))
        assert names == [f"{split}_{i:05d}.png" for i in range(TINY[split])]


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tiny, tmp_path):
    root, _ = tiny
    synthetic.generate_synthetic_dataset(tmp_path / "again", seed=3, split_sizes=TINY, image_size=96)
    first, second = _files(root), _files(tmp_path / "again")
    assert first.keys() == second.keys() and len(first) == sum(TINY.values()) + 3
    assert first == second

    synthetic.generate_synthetic_dataset(tmp_path / "other", seed=4, split_sizes=TINY, image_size=96)
    other = _files(tmp_path / "other")
    pngs = [name for name in first if name.endswith(".png")]
    assert all(first[name] != other[name] for name in pngs)


def test_splits_do_not_depend_on_each_others_sizes(tiny, tmp_path):
    root, _ = tiny
    synthetic.generate_synthetic_dataset(tmp_path, seed=3, split_sizes={"train": 2, "val": 0, "test": 0}, image_size=96)
    for i in range(2):
        name = f"images/train/train_{i:05d}.png"
        assert (tmp_path / name).read_bytes() == (root / name).read_bytes()


def test_coco_json_is_valid(tiny):
    _, paths = tiny
    for split in SPLITS:
        data = _load(paths, split)
        assert {"info", "images", "annotations", "categories"} <= set(data)
        assert [(c["id"], c["name"]) for c in data["categories"]] == [
            (c["id"], c["name"]) for c in world.CATEGORIES]
        assert {c["name"]: c["supercategory"] for c in data["categories"]}["NORMAL"] == "surface"
        assert all(c["supercategory"] == "defect" for c in data["categories"] if c["name"] != "NORMAL")

        images = {im["id"]: im for im in data["images"]}
        assert len(images) == len(data["images"]) == TINY[split]
        assert sorted(images) == list(range(1, TINY[split] + 1))
        for im in data["images"]:
            assert (im["width"], im["height"]) == (96, 96)
            assert (Path(paths[split]["images"]) / im["file_name"]).is_file()

        ids = [a["id"] for a in data["annotations"]]
        assert len(set(ids)) == len(ids) and (not ids or min(ids) == 1)
        for a in data["annotations"]:
            assert a["image_id"] in images
            assert a["category_id"] in {1, 2, 3, 4, 5, 6}
            assert a["iscrowd"] == 0
            x, y, w, h = a["bbox"]
            assert all(isinstance(v, float) for v in a["bbox"])
            assert w >= 2 and h >= 2
            assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
            assert a["area"] == pytest.approx(w * h)


def test_images_are_rgb_pngs_of_the_requested_size(tiny):
    _, paths = tiny
    for split in SPLITS:
        for png in Path(paths[split]["images"]).glob("*.png"):
            with Image.open(png) as image:
                assert image.format == "PNG" and image.mode == "RGB" and image.size == (96, 96)
                # a textured, noisy surface, not a flat colour
                assert np.asarray(image).std() > 2


def test_variety_of_classes_sizes_and_counts(sample):
    names = {c["id"]: c["name"] for c in sample["categories"]}
    per_class = Counter(names[a["category_id"]] for a in sample["annotations"])
    assert set(per_class) == set(world.class_names())
    areas = [a["area"] for a in sample["annotations"]]
    assert any(area < 32**2 for area in areas)
    assert any(area > 96**2 for area in areas)
    per_image = Counter(a["image_id"] for a in sample["annotations"])
    assert any(n > 1 for n in per_image.values())
    assert len(per_image) < len(sample["images"])  # some images have no object at all


def test_placed_boxes_do_not_overlap_heavily(sample):
    boxes = {}
    for a in sample["annotations"]:
        boxes.setdefault(a["image_id"], []).append(a["bbox"])
    for image_boxes in boxes.values():
        for i, a in enumerate(image_boxes):
            for b in image_boxes[i + 1:]:
                ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
                iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
                inter = ix * iy
                assert inter / (a[2] * a[3] + b[2] * b[3] - inter) <= world.MAX_IOU + 1e-9


def test_object_count_options(tmp_path):
    none = synthetic.generate_synthetic_dataset(tmp_path / "none", split_sizes={"train": 4, "val": 0, "test": 0},
                                      image_size=64, empty_fraction=1.0)
    data = _load(none, "train")
    assert len(data["images"]) == 4 and data["annotations"] == []

    single = synthetic.generate_synthetic_dataset(tmp_path / "single", split_sizes={"train": 6, "val": 0, "test": 0},
                                        image_size=64, max_defects=1, empty_fraction=0.0)
    per_image = Counter(a["image_id"] for a in _load(single, "train")["annotations"])
    assert max(per_image.values()) == 1


@pytest.mark.parametrize("kwargs", [{"split_sizes": {"holdout": 3}}, {"image_size": 8}, {"max_defects": -1},
                                    {"empty_fraction": 1.5}])
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        synthetic.generate_synthetic_dataset(tmp_path, **kwargs)


def test_the_schema_states_the_generators_own_bounds():
    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "schema.yaml").read_text())
    bounds = schema["properties"]["dataset"]["properties"]["synthetic"]["properties"]
    assert bounds["image_size"]["minimum"] == world.MIN_IMAGE_SIZE
    assert bounds["max_defects"]["minimum"] == world.MIN_DEFECTS
    assert bounds["empty_fraction"]["minimum"] == 0 and bounds["empty_fraction"]["maximum"] == 1
    with pytest.raises(ValueError, match="image_size"):
        synthetic.generate_synthetic_dataset(Path("unused"), image_size=world.MIN_IMAGE_SIZE - 1)
