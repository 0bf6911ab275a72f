"""The DEIM augmentation recipe, switched on and off by epoch windows.

Per sample (``TrainAugmentation``): mosaic, photometric distortion, zoom-out and random IoU
crop are the *policy* ops: off for the first ``start`` epochs, mosaic (instead of zoom-out
and IoU crop) with its probability until ``flat``, the others until ``stop``, and nothing
but flips from ``stop`` on (the no-augmentation epochs). Per batch (``BatchAugment``): mixup
from ``start`` to ``flat`` and copy-blend from ``start`` to ``stop``, never both on one batch.

Box-aware ops come from torchvision.transforms.v2; only mosaic, mixup and copy-blend, which
it lacks, are written here. Every op ends with boxes clipped to the image and degenerate
ones (under 1 px) dropped with their labels. Epochs are 0-based here, as in the official
configs: ``[4, 64, 120]`` of 132 epochs means epochs 0-3 plain, 120-131 plain.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.ops import box_area
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.study.epochs import EpochWindows  # the windows' rule lives in the torch-free spec


@dataclass(frozen=True)
class AugmentationSettings:
    """Probabilities (0 switches an op off) and the few shape parameters of the recipe.

    An op the config does not name is off, so a CNN run with ``{horizontal_flip: 0.5}`` gets
    torchvision's reference recipe; ``DEIM_OFFICIAL`` lists the official DEIMv2 values.
    The shape parameters default to the official ones."""

    horizontal_flip: float = 0.5
    vertical_flip: float = 0.0
    photometric: float = 0.0
    zoom_out: float = 0.0
    zoom_out_max: float = 4.0  # canvas side up to this many times the image side
    iou_crop: float = 0.0
    mosaic: float = 0.0
    mosaic_degrees: float = 10.0
    mosaic_translate: float = 0.1
    mosaic_scale: tuple[float, float] = (0.5, 1.5)
    mixup: float = 0.0
    copy_blend: float = 0.0
    copy_blend_min_area: float = 100.0  # px^2: smaller objects are not copied
    copy_blend_objects: int = 3
    # official with_expand: each copied object brings a margin of this fraction (drawn per
    # object) of its size on every side where both images have room; its box stays the object's
    copy_blend_expand: tuple[float, float] | None = (0.1, 0.25)
    # official mosaic use_cache: the other three tiles come from the last this-many resized
    # samples (one random entry, never the newest, leaves when it is full); 0 draws them from the dataset
    mosaic_cache: int = 50
    # official output_size: each mosaic tile's shorter side in px (320 at 640 px); None: half the resolution
    mosaic_size: int | None = None
    epochs: list[int] | None = None  # [start, flat, stop]; None derives them from the run's epochs

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "AugmentationSettings":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown augmentation settings {unknown}. Fix: use only {sorted(known)}.")
        if "mosaic_scale" in values:
            values["mosaic_scale"] = tuple(values["mosaic_scale"])
        if values.get("copy_blend_expand") is not None:
            values["copy_blend_expand"] = tuple(values["copy_blend_expand"])
        return cls(**values)

    @property
    def batch_level(self) -> bool:
        return self.mixup > 0 or self.copy_blend > 0


# Every op, by its probability's name in AugmentationSettings.
OPS = ("horizontal_flip", "vertical_flip", "photometric", "zoom_out", "iou_crop", "mosaic", "mixup", "copy_blend")

# The official DEIMv2 recipe (configs deimv2_dinov3_{s,m}_coco and their base dataloader).
DEIM_OFFICIAL: dict[str, Any] = {
    "horizontal_flip": 0.5, "vertical_flip": 0.0, "photometric": 0.5, "zoom_out": 0.5, "zoom_out_max": 4.0,
    "iou_crop": 0.8, "mosaic": 0.5, "mosaic_degrees": 10.0, "mosaic_translate": 0.1, "mosaic_scale": [0.5, 1.5],
    "mixup": 0.5, "copy_blend": 0.5, "copy_blend_min_area": 100.0, "copy_blend_objects": 3,
    "copy_blend_expand": [0.1, 0.25], "mosaic_cache": 50, "mosaic_size": None,  # None: 320 at 640 px
}


def _sanitize(image, target):
    """Clip boxes to the canvas, then drop those under 1 px with their labels."""
    target = dict(target)
    target["boxes"] = TF.clamp_bounding_boxes(target["boxes"])
    return v2.SanitizeBoundingBoxes(min_size=1.0)(image, target)


def _resize(image, target, size: tuple[int, int]):
    image = TF.resize(image, list(size), antialias=True)
    target = {**target, "boxes": TF.resize(target["boxes"], list(size))}
    return image, target


class TrainAugmentation(Dataset):
    """A training split with the per-sample recipe; ``set_epoch`` moves it through the windows."""

    def __init__(self, data: CocoDetection, settings: AugmentationSettings, windows: EpochWindows,
                 resolution: int | None = None):
        if data.transforms is not None:
            raise ValueError("TrainAugmentation applies its own transforms; pass a CocoDetection without them")
        self.data, self.settings, self.windows = data, settings, windows
        self.mosaic_size = settings.mosaic_size or (resolution // 2 if resolution else None)
        if settings.mosaic > 0 and not self.mosaic_size:
            raise ValueError("mosaic needs its tile size: set augmentation.mosaic_size or give the resolution")
        self.epoch = 0
        s = settings
        self.flips = v2.Compose([v2.RandomHorizontalFlip(s.horizontal_flip), v2.RandomVerticalFlip(s.vertical_flip)])
        self.photometric = v2.RandomPhotometricDistort(p=s.photometric)
        self.zoom_out = v2.RandomZoomOut(fill=0, side_range=(1.0, s.zoom_out_max), p=s.zoom_out)
        self.iou_crop = v2.RandomIoUCrop()
        self.mosaic_affine = v2.RandomAffine(degrees=s.mosaic_degrees, translate=(s.mosaic_translate,) * 2,
                                             scale=s.mosaic_scale, fill=0)
        self.mosaic_tiles: list[tuple] = []  # the mosaic cache (per data-loader worker, as official)

    @property
    def categories(self):
        return self.data.categories

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def policy_active(self) -> bool:
        return self.windows.start <= self.epoch < self.windows.stop

    def mosaic_active(self) -> bool:
        return self.windows.start <= self.epoch < self.windows.flat and self.settings.mosaic > 0

    def mosaic(self, index: int):
        """Official Mosaic: four samples, each resized to a shorter side of ``mosaic_size`` px
        (aspect kept), at the top-left corners of the quadrants of a canvas twice the largest
        tile in each direction (black elsewhere), then a random affine (rotation, translation,
        scale) of the whole canvas."""
        tiles = self._mosaic_samples(index)
        height = max(image.shape[-2] for image, _ in tiles)
        width = max(image.shape[-1] for image, _ in tiles)
        first = tiles[0][0]
        canvas = first.new_zeros((first.shape[0], 2 * height, 2 * width))
        boxes, labels = [], []
        for tile, (image, target) in enumerate(tiles):
            top, left = (tile // 2) * height, (tile % 2) * width
            canvas[:, top:top + image.shape[-2], left:left + image.shape[-1]] = image
            boxes.append(target["boxes"].as_subclass(torch.Tensor) + torch.tensor([left, top, left, top]))
            labels.append(target["labels"])
        target = {**tiles[0][1], "boxes": tv_tensors.BoundingBoxes(torch.cat(boxes), format="XYXY",
                                                                     canvas_size=(2 * height, 2 * width)),
                  "labels": torch.cat(labels)}
        return self.mosaic_affine(tv_tensors.Image(canvas), target)

    def _tile(self, sample):
        image, target = sample
        image = TF.resize(image, [self.mosaic_size], antialias=True)  # the shorter side, as T.Resize(int)
        return image, {**target, "boxes": TF.resize(target["boxes"], [self.mosaic_size])}

    def _mosaic_samples(self, index):
        """The sample and three others, resized to tiles: from the cache of recent tiles
        (official use_cache, random_pop, drawn with replacement) or, without a cache, from the
        dataset."""
        first = self._tile(self.data[index])
        limit = self.settings.mosaic_cache
        if limit <= 0:
            return [first] + [self._tile(self.data[random.randrange(len(self.data))]) for _ in range(3)]
        self.mosaic_tiles.append(first)
        if len(self.mosaic_tiles) > limit:
            self.mosaic_tiles.pop(random.randint(0, len(self.mosaic_tiles) - 2))  # never the newest
        return [first] + random.choices(self.mosaic_tiles, k=3)

    def __getitem__(self, index: int):
        s = self.settings
        if self.policy_active():
            with_mosaic = self.mosaic_active() and random.random() < s.mosaic
            image, target = self.mosaic(index) if with_mosaic else self.data[index]
            image, target = _sanitize(image, target)
            if s.photometric > 0:
                image, target = self.photometric(image, target)
            if not with_mosaic:  # mosaic replaces zoom-out and IoU crop on the same sample
                if s.zoom_out > 0:
                    image, target = self.zoom_out(image, target)
                if s.iou_crop > 0 and random.random() < s.iou_crop:
                    image, target = self.iou_crop(image, target)
            image, target = _sanitize(image, target)
        else:
            image, target = self.data[index]
        image, target = self.flips(image, target)
        return image, target


class BatchAugment:
    """Collate with the batch-level ops: mixup (each image blended with the previous one of
    the batch, their boxes joined) and copy-blend (objects of the batch blended into random
    places of each image). Images keep their own sizes; batches are lists."""

    def __init__(self, settings: AugmentationSettings, windows: EpochWindows):
        self.settings, self.windows = settings, windows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __call__(self, batch):
        images, targets = (list(part) for part in zip(*batch))
        s, w = self.settings, self.windows
        if len(images) > 1 and w.start <= self.epoch < w.flat and random.random() < s.mixup:
            return mixup(images, targets)
        if w.start <= self.epoch < w.stop and random.random() < s.copy_blend:
            return copy_blend(images, targets, s.copy_blend_min_area, s.copy_blend_objects, s.copy_blend_expand)
        return images, targets


def _blend(a: torch.Tensor, b: torch.Tensor, beta: float) -> torch.Tensor:
    mixed = a.float() * beta + b.float() * (1.0 - beta)
    return mixed.round_().clamp_(0, 255).to(a.dtype) if not a.is_floating_point() else mixed


def _with_boxes(target: dict, boxes: torch.Tensor, labels: torch.Tensor, canvas_size) -> dict:
    return {**target, "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=canvas_size),
            "labels": labels}


def mixup(images: list, targets: list[dict]):
    """DEIM's mixup: image i blended with image i-1 (resized to it), beta in [0.45, 0.55]."""
    beta = random.uniform(0.45, 0.55)
    mixed_images, mixed_targets = [], []
    for i, (image, target) in enumerate(zip(images, targets)):
        other, other_target = images[i - 1], targets[i - 1]
        size = tuple(image.shape[-2:])
        if tuple(other.shape[-2:]) != size:
            other, other_target = _resize(other, other_target, size)
        boxes = torch.cat([target["boxes"].as_subclass(torch.Tensor), other_target["boxes"].as_subclass(torch.Tensor)])
        labels = torch.cat([target["labels"], other_target["labels"]])
        mixed_images.append(tv_tensors.Image(_blend(image, other, beta)))
        mixed_targets.append(_with_boxes(target, boxes, labels, size))
    return mixed_images, mixed_targets


def copy_blend(images: list, targets: list[dict], min_area: float = 100.0, max_objects: int = 3,
               expand: tuple[float, float] | None = None):
    """DEIMv2's copy-blend: up to ``max_objects`` objects of at least ``min_area`` px^2 from
    anywhere in the batch, each blended (beta in [0.45, 0.55]) into a random place of each
    image and added to its boxes. With ``expand`` (official with_expand, ratios [0.1, 0.25]),
    the blended patch carries a margin of context around the object, limited on each side by
    the room in both images; the added box is the object's own."""
    pool = [(source, box, label)
            for source, target in enumerate(targets)
            for box, label, area in zip(target["boxes"].as_subclass(torch.Tensor).round().int(), target["labels"],
                                        box_area(target["boxes"].as_subclass(torch.Tensor)))
            if area >= min_area]
    if not pool:
        return images, targets
    beta = random.uniform(0.45, 0.55)
    out_images, out_targets = [], []
    for image, target in zip(images, targets):
        image = image.clone()
        height, width = image.shape[-2:]
        boxes, labels = [target["boxes"].as_subclass(torch.Tensor)], [target["labels"]]
        for source, box, label in random.sample(pool, min(max_objects, len(pool))):
            x1, y1, x2, y2 = box.tolist()
            w, h = min(x2 - x1, width), min(y2 - y1, height)  # a patch larger than this image is cut
            if w <= 0 or h <= 0:
                continue
            x, y = random.randint(0, width - w), random.randint(0, height - h)
            left = top = right = bottom = 0
            if expand is not None:
                alpha = random.uniform(*expand)
                margin_w, margin_h = int(w * alpha), int(h * alpha)
                source_h, source_w = images[source].shape[-2:]
                left, top = min(margin_w, x1, x), min(margin_h, y1, y)
                right = max(min(margin_w, source_w - (x1 + w), width - (x + w)), 0)
                bottom = max(min(margin_h, source_h - (y1 + h), height - (y + h)), 0)
            patch = images[source][:, y1 - top:y1 + h + bottom, x1 - left:x1 + w + right]
            rows, columns = slice(y - top, y + h + bottom), slice(x - left, x + w + right)
            image[:, rows, columns] = _blend(image[:, rows, columns], patch, beta)
            boxes.append(torch.tensor([[x, y, x + w, y + h]], dtype=boxes[0].dtype))
            labels.append(label.view(1))
        out_images.append(image)
        out_targets.append(_with_boxes(target, torch.cat(boxes), torch.cat(labels), (height, width)))
    return out_images, out_targets
