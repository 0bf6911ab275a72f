"""Segmentation images and masks as tensors, with augmentations that keep them aligned.

torchvision's transforms v2 move an image and its ``tv_tensors.Mask`` together: geometric
transforms (random scale, crop, flip) apply to both, the mask with nearest-neighbour sampling
and the ignore value as padding; photometric ones (colour jitter) touch the image only. A mask
stays a tensor of class indices end to end, never scaled to [0, 1] and back (the bug that
turned every damage class into class 15 in the study's old loader).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from detstudy.study.segmentation import SEGMENTATION_AUGMENTATIONS
from detstudy.tasks.images import load_rgb
from detstudy.tasks.segmentation.data.checks import read_mask
from detstudy.tasks.segmentation.data.layout import MaskSplit

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MaskAugmentation:
    """The training augmentation (mmsegmentation's recipe): random scale of the shorter side in
    ``scale_range`` x resolution, a random ``resolution`` crop (padded with the ignore value),
    a horizontal flip, photometric jitter of the image."""

    scale_range: tuple[float, float] = (0.5, 2.0)
    horizontal_flip: float = 0.5
    vertical_flip: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "MaskAugmentation":
        values = dict(values or {})
        known = set(SEGMENTATION_AUGMENTATIONS)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown segmentation augmentation settings {unknown}. Fix: use only {sorted(known)}")
        if "scale_range" in values:
            values["scale_range"] = tuple(values["scale_range"])
        return cls(**values)


def train_transform(augmentation: MaskAugmentation, resolution: int, ignore_index: int) -> v2.Transform:
    low, high = augmentation.scale_range
    steps = [v2.RandomResize(max(1, int(low * resolution)), max(2, int(high * resolution) + 1), antialias=True),
             v2.RandomCrop(resolution, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index})]
    if augmentation.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip(augmentation.horizontal_flip))
    if augmentation.vertical_flip:
        steps.append(v2.RandomVerticalFlip(augmentation.vertical_flip))
    if any((augmentation.brightness, augmentation.contrast, augmentation.saturation, augmentation.hue)):
        steps.append(v2.ColorJitter(augmentation.brightness, augmentation.contrast, augmentation.saturation,
                                    augmentation.hue))
    return v2.Compose(steps + _to_model_input())


def eval_transform(resolution: int, mode: str = "whole") -> v2.Transform:
    """Inference input: for ``whole``, the image resized to ``resolution`` square; for
    ``slide``, the image at its own size (windows of the resolution cover it). The mask keeps
    its size either way (the logits are brought back to it)."""
    resize = [v2.Resize((resolution, resolution), antialias=True)] if mode == "whole" else []
    return v2.Compose(resize + _to_model_input())


def _to_model_input() -> list[v2.Transform]:
    return [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


class MaskDataset(Dataset):
    """(image [3, H, W] float, normalised; mask [H, W] int64) pairs of a split."""

    def __init__(self, split: MaskSplit, num_classes: int, transform: v2.Transform, *, ignore_index: int = 255,
                 palette: list[tuple[int, int, int]] | None = None, resize_mask: bool = True):
        self.split, self.num_classes, self.palette, self.ignore_index = split, num_classes, palette, ignore_index
        self.pairs = split.pairs()
        self.transform = transform
        self.resize_mask = resize_mask  # False: the mask keeps its size (evaluation)

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        image_path, mask_path = self.pairs[index]
        image = tv_tensors.Image(torch.from_numpy(np.asarray(load_rgb(image_path)).copy()).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(read_mask(mask_path, self.num_classes, self.palette).astype(np.int64)))
        return image, mask

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(index)
        if self.resize_mask:
            image, mask = self.transform(image, mask)
        else:
            image = self.transform(image)
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)


def collate(batch):
    """Training batches: images and masks of one size, stacked."""
    images, masks = zip(*batch)
    return torch.stack(images), torch.stack(masks)


def collate_lists(batch):
    """Evaluation batches: resized images stacked, masks of their own sizes as a list."""
    images, masks = zip(*batch)
    return torch.stack(images), list(masks)
