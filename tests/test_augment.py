"""The DEIM augmentation recipe: epoch windows, box safety of every op, batch-level ops."""

from __future__ import annotations

import json
import random

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from detstudy.tasks.detection.data.augment import (DEIM_OFFICIAL, OPS, AugmentationSettings, BatchAugment, EpochWindows,
                                   TrainAugmentation, copy_blend, mixup)
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
from detstudy.engine.settings import TrainSettings


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    paths = generate_synthetic_dataset(root, seed=5, split_sizes={"train": 8, "val": 1, "test": 1}, image_size=96)
    return CocoDetection(SplitPaths.of(**paths["train"]))


def assert_valid(image, target):
    boxes = target["boxes"].as_subclass(torch.Tensor)
    height, width = image.shape[-2:]
    assert tuple(target["boxes"].canvas_size) == (height, width)
    assert len(boxes) == len(target["labels"])
    if len(boxes):
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        assert ((boxes[:, 2:] - boxes[:, :2]) >= 1).all(), "degenerate boxes must be dropped"
    assert image.dtype == torch.uint8


def test_official_epoch_rule():
    assert EpochWindows.derive(132).as_tuple() == (4, 64, 120)  # deimv2_s
    assert EpochWindows.derive(102).as_tuple() == (4, 49, 90)  # deimv2_m
    assert EpochWindows.derive(32).as_tuple() == (4, 14, 20)  # the README's 20-epoch fine-tuning example
    short = EpochWindows.derive(12)  # scaled down, still ordered and inside the run
    assert 0 <= short.start <= short.flat <= short.stop < 12


def test_given_windows_are_checked():
    assert EpochWindows.resolve(10, [1, 5, 8]).as_tuple() == (1, 5, 8)
    with pytest.raises(ValueError, match=r"\[start, flat, stop\].*Fix"):
        EpochWindows.resolve(10, [5, 1, 8])
    with pytest.raises(ValueError, match="epochs"):
        EpochWindows.resolve(10, [1, 5, 11])


def test_unknown_augmentation_is_rejected():
    with pytest.raises(ValueError, match="unknown augmentation settings.*mosiac"):
        AugmentationSettings.from_dict({"mosiac": 0.5})


def test_unnamed_ops_are_off_and_the_official_values_are_named():
    assert AugmentationSettings.from_dict({"horizontal_flip": 0.5}).mosaic == 0.0
    official = AugmentationSettings.from_dict(DEIM_OFFICIAL)
    assert (official.mosaic, official.mixup, official.copy_blend, official.iou_crop) == (0.5, 0.5, 0.5, 0.8)


@pytest.mark.parametrize("op", OPS)
def test_every_op_keeps_boxes_inside_and_drops_degenerate_ones(dataset, op):
    random.seed(0)
    torch.manual_seed(0)
    settings = AugmentationSettings.from_dict({"horizontal_flip": 0.0, op: 1.0})
    windows = EpochWindows(0, 5, 5)
    samples = TrainAugmentation(dataset, settings, windows, resolution=96)
    collate = BatchAugment(settings, windows)
    for _ in range(3):
        batch = [samples[i] for i in range(len(samples))]
        for image, target in zip(*collate(batch)):
            assert_valid(image, target)


def test_policy_ops_follow_the_epoch_windows(dataset):
    settings = AugmentationSettings.from_dict({**DEIM_OFFICIAL, "horizontal_flip": 0.0})
    samples = TrainAugmentation(dataset, settings, EpochWindows(2, 4, 6), resolution=96)
    raw = [dataset[i] for i in range(len(dataset))]
    for epoch, changed in [(0, False), (1, False), (2, True), (5, True), (6, False), (9, False)]:
        samples.set_epoch(epoch)
        random.seed(epoch)
        torch.manual_seed(epoch)
        same = all(torch.equal(samples[i][0], raw[i][0]) for i in range(len(dataset)))
        assert same != changed, f"epoch {epoch}"


def test_mosaic_only_until_the_flat_epoch(dataset):
    settings = AugmentationSettings.from_dict({"horizontal_flip": 0.0, "mosaic": 1.0})
    samples = TrainAugmentation(dataset, settings, EpochWindows(0, 2, 4), resolution=96)
    samples.set_epoch(1)
    assert samples.mosaic_active()
    image, target = samples[0]
    assert image.shape[-2:] == (96, 96)  # four 48 px tiles on a canvas twice their size
    samples.set_epoch(2)
    assert not samples.mosaic_active()
    assert torch.equal(samples[0][0], dataset[0][0])


def test_batch_ops_follow_their_windows(dataset):
    settings = AugmentationSettings.from_dict({"mixup": 1.0, "copy_blend": 1.0})
    collate = BatchAugment(settings, EpochWindows(1, 2, 3))
    batch = [dataset[i] for i in range(4)]
    boxes = sum(len(t["labels"]) for _, t in batch)
    counts = {}
    for epoch in range(4):
        collate.set_epoch(epoch)
        counts[epoch] = sum(len(t["labels"]) for t in collate(batch)[1])
    assert counts[0] == boxes and counts[3] == boxes  # outside [start, stop): untouched
    assert counts[1] == 2 * boxes  # mixup (until flat) joins every image's boxes with its neighbour's
    assert boxes < counts[2] <= boxes + 3 * 4  # copy-blend adds at most 3 objects per image


def test_mixup_blends_images_and_joins_boxes(dataset):
    images, targets = zip(*[dataset[i] for i in range(2)])
    random.seed(1)
    mixed, joined = mixup(list(images), list(targets))
    assert len(joined[0]["labels"]) == len(targets[0]["labels"]) + len(targets[1]["labels"])
    beta_image = mixed[0].float()
    low = torch.minimum(images[0], images[1]).float() - 1
    high = torch.maximum(images[0], images[1]).float() + 1
    assert ((beta_image >= low) & (beta_image <= high)).all()


def test_mixup_resizes_a_partner_of_another_size(dataset):
    small = v2.Resize((48, 64))(*dataset[1])
    random.seed(3)
    mixed, joined = mixup([dataset[0][0], small[0]], [dataset[0][1], small[1]])
    for image, target in zip(mixed, joined):
        assert tuple(target["boxes"].canvas_size) == tuple(image.shape[-2:])
    assert tuple(mixed[1].shape[-2:]) == (48, 64)
    partner_boxes = joined[1]["boxes"].as_subclass(torch.Tensor)[len(small[1]["labels"]):]
    assert (partner_boxes[:, 2] <= 64).all() and (partner_boxes[:, 3] <= 48).all()


def test_copy_blend_skips_small_objects(dataset):
    images, targets = zip(*[dataset[i] for i in range(4)])
    before = [len(t["labels"]) for t in targets]
    _, unchanged = copy_blend(list(images), list(targets), min_area=1e9)
    assert [len(t["labels"]) for t in unchanged] == before
    random.seed(2)
    blended, added = copy_blend(list(images), list(targets), min_area=0.0, max_objects=2)
    assert [len(t["labels"]) for t in added] == [n + 2 for n in before]
    for image, target in zip(blended, added):
        assert_valid(image, target)


def _box_target(boxes, size):
    from torchvision import tv_tensors

    return {"boxes": tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), format="XYXY",
                                              canvas_size=size), "labels": torch.zeros(len(boxes), dtype=torch.int64)}


def test_copy_blend_context_margin_stays_inside_both_images():
    """Official with_expand: the patch carries a margin around the object where both images
    have room; the added box is the object's own."""
    source = torch.full((3, 40, 40), 200, dtype=torch.uint8)
    canvas = torch.zeros((3, 40, 40), dtype=torch.uint8)
    object_box = [[10, 10, 30, 30]]  # 20 x 20, 10 px of room on every side of the source
    random.seed(0)
    images, targets = copy_blend([canvas, source], [_box_target([], (40, 40)), _box_target(object_box, (40, 40))],
                                 min_area=0, max_objects=1, expand=(0.25, 0.25))
    x1, y1, x2, y2 = targets[0]["boxes"].as_subclass(torch.Tensor)[-1].tolist()
    assert (x2 - x1, y2 - y1) == (20, 20)
    changed = images[0][0] > 0
    rows, columns = changed.any(1).nonzero(), changed.any(0).nonzero()
    margin = 5  # 0.25 x 20 px, cut where the pasted box meets the canvas border
    assert rows.min() == max(int(y1) - margin, 0) and rows.max() + 1 == min(int(y2) + margin, 40)
    assert columns.min() == max(int(x1) - margin, 0) and columns.max() + 1 == min(int(x2) + margin, 40)
    random.seed(0)
    plain, _ = copy_blend([canvas, source], [_box_target([], (40, 40)), _box_target(object_box, (40, 40))],
                          min_area=0, max_objects=1, expand=None)
    assert (plain[0][0] > 0).sum() == 400  # without the margin: the box only


def test_mosaic_draws_its_other_tiles_from_a_bounded_cache(dataset):
    settings = AugmentationSettings.from_dict({"horizontal_flip": 0.0, "mosaic": 1.0, "mosaic_cache": 3,
                                               "mosaic_size": 48})
    samples = TrainAugmentation(dataset, settings, EpochWindows(0, 2, 4))
    samples.set_epoch(0)
    random.seed(4)
    for index in range(6):
        samples[index]
        assert len(samples.mosaic_tiles) == min(index + 1, 3)
    newest = samples.mosaic_tiles[-1][0]
    assert torch.equal(newest, v2.functional.resize(dataset[5][0], [48], antialias=True))  # kept as a tile
    plain = TrainAugmentation(dataset, AugmentationSettings.from_dict({"mosaic": 1.0, "mosaic_cache": 0}),
                              EpochWindows(0, 2, 4), resolution=64)
    plain[0]
    assert plain.mosaic_tiles == []


def test_mosaic_tiles_sit_in_the_corners_of_a_canvas_twice_the_largest_tile(tmp_path):
    """Official geometry: shorter side 16 px (aspect kept: a 40x80 image becomes 16x32), each
    tile at its quadrant's top-left corner, the canvas 2x the largest tile in each direction."""
    sizes = [(40, 80), (64, 32), (48, 48), (40, 80)]  # (height, width)
    images, annotations = [], []
    for index, (height, width) in enumerate(sizes):
        Image.new("RGB", (width, height), (50 * index + 20, 0, 0)).save(tmp_path / f"{index}.png")
        images.append({"id": index + 1, "file_name": f"{index}.png", "height": height, "width": width})
        annotations.append({"id": index + 1, "image_id": index + 1, "category_id": 1, "bbox": [0, 0, 8, 8],
                            "area": 64, "iscrowd": 0})
    (tmp_path / "a.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                 "categories": [{"id": 1, "name": "x"}]}))
    data = CocoDetection(SplitPaths.of(annotations=tmp_path / "a.json", images=tmp_path))
    settings = AugmentationSettings.from_dict({"horizontal_flip": 0.0, "mosaic": 1.0, "mosaic_size": 16,
                                               "mosaic_cache": 0, "mosaic_degrees": 0.0, "mosaic_translate": 0.0,
                                               "mosaic_scale": [1.0, 1.0]})  # the affine: identity
    samples = TrainAugmentation(data, settings, EpochWindows(0, 1, 1))
    random.seed(0)
    tiles = samples._mosaic_samples(0)
    assert [tuple(image.shape[-2:]) for image, _ in tiles][0] == (16, 32)
    height = max(image.shape[-2] for image, _ in tiles)
    width = max(image.shape[-1] for image, _ in tiles)
    random.seed(0)
    canvas, target = samples.mosaic(0)
    assert tuple(canvas.shape[-2:]) == (2 * height, 2 * width)
    boxes = target["boxes"].as_subclass(torch.Tensor)
    for tile, (image, tile_target) in enumerate(tiles):
        top, left = (tile // 2) * height, (tile % 2) * width
        h, w = image.shape[-2:]
        assert torch.equal(canvas[:, top:top + h, left:left + w], image)
        assert not canvas[:, top + h:top + height, left:left + width].any()  # black beyond the tile
        shift = torch.tensor([left, top, left, top], dtype=boxes.dtype)
        assert torch.allclose(boxes[tile], tile_target["boxes"].as_subclass(torch.Tensor)[0] + shift)


def test_mosaic_needs_its_tile_size(dataset):
    with pytest.raises(ValueError, match="mosaic_size"):
        TrainAugmentation(dataset, AugmentationSettings.from_dict({"mosaic": 0.5}), EpochWindows(0, 1, 1))


def test_training_derives_the_schedule_from_the_windows():
    settings = TrainSettings(epochs=132, lr_schedule="flat_cosine")
    assert settings.epoch_windows.as_tuple() == (4, 64, 120)
    given = TrainSettings(epochs=20, augmentation={"epochs": [2, 8, 16]})
    assert given.epoch_windows.as_tuple() == (2, 8, 16)


def test_boxes_leaving_the_image_are_clipped_and_slivers_dropped(tmp_path):
    """A box half outside the image is clipped to it; one under 1 px wide is dropped with its label."""
    Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "a.png")
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 30, 40, 30], "area": 1, "iscrowd": 0},
                            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [10, 10, 0.5, 20], "area": 1, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    data = CocoDetection(SplitPaths(tmp_path / "a.json", tmp_path))
    samples = TrainAugmentation(data, AugmentationSettings.from_dict({"horizontal_flip": 0.0, "photometric": 1.0}),
                                EpochWindows(0, 1, 1))
    image, target = samples[0]
    assert target["labels"].tolist() == [0]
    assert target["boxes"].as_subclass(torch.Tensor).tolist() == [[40.0, 30.0, 64.0, 48.0]]
