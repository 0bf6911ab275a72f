"""Segmentation data: the demo's masks, and the checks naming every problem with its fix."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from detstudy.tasks.dataset_errors import DatasetError, DatasetWarning
from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
from detstudy.tasks.segmentation.data.checks import check_classes_present, check_split, class_weights
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.data.synthetic import class_names, generate_segmentation_dataset

SIZES = {"train": 6, "val": 2, "test": 3}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    return root, generate_segmentation_dataset(root, seed=2, split_sizes=SIZES, image_size=64)


def test_the_demo_is_the_detection_worlds_images_seen_as_masks(demo, tmp_path):
    root, paths = demo
    detection = generate_synthetic_dataset(tmp_path / "det", seed=2, split_sizes=SIZES, image_size=64)
    import json

    coco = json.loads(open(detection["train"]["annotations"]).read())
    for image in coco["images"]:
        stem = image["file_name"].rsplit(".", 1)[0]
        seg_image = root / "images" / "train" / f"{stem}.png"
        assert seg_image.read_bytes() == (tmp_path / "det" / "images" / "train" / image["file_name"]).read_bytes()
        mask = np.asarray(Image.open(root / "masks" / "train" / f"{stem}.png"))
        for box in (a for a in coco["annotations"] if a["image_id"] == image["id"]):
            x, y, w, h = (int(v) for v in box["bbox"])
            inside = mask[y:y + h, x:x + w]
            assert (inside == box["category_id"]).any()  # its class is painted inside its box ...
        boxes = np.zeros(mask.shape, dtype=bool)
        for box in (a for a in coco["annotations"] if a["image_id"] == image["id"]):
            x, y, w, h = (int(v) for v in box["bbox"])
            boxes[y:y + h, x:x + w] = True
        assert not mask[~boxes].any()  # ... and nothing outside the boxes


def test_the_demo_has_thin_classes_and_checks_clean(demo):
    root, paths = demo
    counts = check_split(MaskSplit.of(**paths["train"]), "train", len(class_names()))
    assert counts.images == SIZES["train"] and counts.pixels.sum() == SIZES["train"] * 64 * 64
    assert counts.pixels[0] > counts.pixels[1:].sum()  # the intact surface covers most pixels


def _split(tmp_path, masks: dict[str, np.ndarray], images: dict[str, tuple[int, int]] | None = None) -> MaskSplit:
    split = MaskSplit.of(tmp_path / "images", tmp_path / "masks")
    split.images.mkdir()
    split.masks.mkdir()
    for stem, size in (images or {stem: mask.shape[::-1] for stem, mask in masks.items()}).items():
        Image.new("RGB", size, (90, 90, 90)).save(split.images / f"{stem}.jpg")
    for stem, mask in masks.items():
        Image.fromarray(mask).save(split.masks / f"{stem}.png")
    return split


def test_every_problem_is_named_with_its_file_and_fix(tmp_path):
    good = np.zeros((8, 8), dtype=np.uint8)
    bad_values = good.copy()
    bad_values[0, :3] = 9
    split = _split(tmp_path, {"a": good, "values": bad_values, "small": np.zeros((4, 4), dtype=np.uint8),
                              "orphan": good}, images={"a": (8, 8), "values": (8, 8), "small": (8, 8), "lonely": (8, 8)})
    Image.new("RGB", (8, 8), (255, 0, 0)).save(split.masks / "rgb.png")
    Image.new("RGB", (8, 8)).save(split.images / "rgb.jpg")
    (split.images / "broken.jpg").write_bytes(b"not an image")
    Image.fromarray(good).save(split.masks / "broken.png")
    # a truncated JPEG: Pillow's verify() passes it, decoding does not
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(split.images / "cut.jpg", quality=95)
    (split.images / "cut.jpg").write_bytes((split.images / "cut.jpg").read_bytes()[:2000])
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(split.masks / "cut.png")
    Image.new("RGB", (8, 8)).save(split.images / "junkmask.jpg")
    (split.masks / "junkmask.png").write_bytes(b"not a mask")
    with pytest.raises(DatasetError) as error:
        check_split(split, "train", num_classes=4)
    text = str(error.value)
    for expected in [r"lonely\.jpg: no mask .*Fix", r"orphan\.png: no image of stem 'orphan'.*Fix",
                     r"values\.png: values 9 \(3 px\) are neither a class index \(0\.\.3\) nor the ignore value 255.*Fix",
                     r"small\.png: mask 4x4 px, image small\.jpg 8x8 px.*nearest",
                     r"rgb\.png: a RGB mask.*Fix: convert it", r"broken\.jpg: unreadable image",
                     r"cut\.jpg: unreadable image \(cannot be read .*truncated.*Fix",
                     r"junkmask\.png: unreadable mask.*Fix"]:
        assert re.search(expected, text), expected


def test_a_palette_mask_is_converted_with_the_configs_palette(tmp_path):
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    palette_image = Image.fromarray(indices, mode="P")
    palette = [(0, 0, 0), (200, 10, 10), (10, 200, 10)]
    palette_image.putpalette([v for colour in palette for v in colour])
    split = _split(tmp_path, {})
    Image.new("RGB", (2, 2)).save(split.images / "p.jpg")
    palette_image.save(split.masks / "p.png")
    with pytest.raises(DatasetError, match=r"p\.png: a P mask.*dataset\.palette"):
        check_split(split, "train", num_classes=3)
    counts = check_split(split, "train", num_classes=3, palette=palette)
    assert counts.pixels.tolist() == [1, 2, 1]


def test_ignore_pixels_are_counted_apart_and_absent_classes_warned(tmp_path):
    mask = np.array([[0, 255], [255, 1]], dtype=np.uint8)
    counts = check_split(_split(tmp_path, {"m": mask}), "train", num_classes=3)
    assert counts.pixels.tolist() == [1, 1, 0] and counts.ignored == 2
    with pytest.warns(DatasetWarning, match=r"classes \['c'\] have no pixel"):
        check_classes_present(counts, ["a", "b", "c"])


def test_an_empty_split_and_a_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="masks folder .* does not exist"):
        check_split(MaskSplit.of(tmp_path, tmp_path / "nope"), "val", 3)
    with pytest.raises(DatasetError, match="no image with a mask"):
        check_split(_split(tmp_path, {}), "val", 3)


def test_class_weights():
    pixels = np.array([900, 90, 10, 0])
    assert class_weights(pixels, "inverse_log") == pytest.approx(1 / np.log(1.02 + pixels / 1000))
    assert class_weights(pixels, "median_frequency") == pytest.approx([0.09 / 0.9, 1.0, 9.0, 0.0])
    assert class_weights(pixels, "none").tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="expected 4 non-negative numbers"):
        class_weights(pixels, given=[1, 2])


def test_every_mask_value_survives_every_augmentation(tmp_path):
    """Scale, crop, flips and jitter: the mask's values stay class indices of the original mask
    (or the ignore padding), never rescaled into another class (the study's old loader bug)."""
    import torch

    from detstudy.tasks.segmentation.data.dataset import MaskAugmentation, MaskDataset, train_transform

    rng = np.random.default_rng(0)
    # three classes far apart: an interpolated mask would show values between them, a rescaled
    # one (the old loader's (mask * 255).clamp(0, 15)) would show 15 alone
    mask = rng.choice(np.array([0, 7, 15], dtype=np.uint8), (40, 56))
    mask[:5] = 255
    split = _split(tmp_path, {"m": mask})
    augmentation = MaskAugmentation(vertical_flip=0.5)
    dataset = MaskDataset(split, 16, train_transform(augmentation, 32, 255))
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        image, augmented = dataset[0]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert augmented.shape == (32, 32) and augmented.dtype == torch.int64
        values = set(augmented.unique().tolist())
        assert values <= {0, 7, 15, 255}
        seen |= values
    assert seen == {0, 7, 15, 255}  # every class and the ignore value came through


def test_image_and_mask_stay_aligned_through_the_training_augmentation(tmp_path):
    """The project's training transform (random scale, crop, both flips; jitter off): each
    pixel's class, written into the image's red channel, is read back from the augmented image
    and equals the augmented mask's wherever the mask is uniform around it (block interiors,
    away from the blend of the image's interpolation)."""
    import torch
    from torch.nn import functional as F

    from detstudy.tasks.segmentation.data.dataset import (IMAGENET_MEAN, IMAGENET_STD, MaskAugmentation,
                                                          MaskDataset, train_transform)

    classes = np.arange(16, dtype=np.uint8).reshape(4, 4).repeat(16, axis=0).repeat(16, axis=1)  # 64 x 64 blocks
    split = MaskSplit.of(tmp_path / "images", tmp_path / "masks")
    split.images.mkdir()
    split.masks.mkdir()
    red = (20 + 10 * classes.astype(np.int64)).astype(np.uint8)
    Image.fromarray(np.stack([red, np.zeros_like(red), np.zeros_like(red)], axis=-1)).save(split.images / "a.png")
    Image.fromarray(classes).save(split.masks / "a.png")
    augmentation = MaskAugmentation(scale_range=(0.5, 2.0), horizontal_flip=0.5, vertical_flip=0.5, brightness=0.0,
                                    contrast=0.0, saturation=0.0, hue=0.0)
    dataset = MaskDataset(split, 16, train_transform(augmentation, 32, 255))
    torch.manual_seed(0)
    checked = 0
    for _ in range(30):
        image, mask = dataset[0]
        value = (image[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255
        read = torch.round((value - 20) / 10).long()
        padded = F.pad(mask[None, None].float(), (1, 1, 1, 1), mode="replicate")
        uniform = (F.max_pool2d(padded, 3, 1) == F.max_pool2d(-padded, 3, 1).neg())[0, 0]
        interior = uniform & (mask != 255)
        assert torch.equal(read[interior], mask[interior])
        checked += int(interior.sum())
    assert checked > 30 * 32 * 32 // 4  # most of every crop was compared