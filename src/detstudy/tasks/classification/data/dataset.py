"""Classification images as tensors: torchvision's reference transforms (a random resized crop and
a flip in training; resize to resolution / 0.875 and a centre crop in evaluation), each image
decoded the one way the workflow decodes images, normalised as its family expects."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from detstudy.tasks.classification.data.layout import ImageSplit
from detstudy.tasks.images import load_rgb

EVAL_CROP = 0.875  # torchvision's references: resize to resolution / 0.875, then the centre crop


@dataclass(frozen=True)
class ImageAugmentation:
    """The training augmentation: a random resized crop of ``crop_scale`` of the image's area, flips;
    per batch MixUp / CutMix with Beta(alpha, alpha) (0: off; both on: one of them per batch)."""

    crop_scale: tuple[float, float] = (0.08, 1.0)
    horizontal_flip: float = 0.5
    vertical_flip: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "ImageAugmentation":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown classification augmentation settings {unknown}. Fix: use only {', '.join(sorted(known))}")
        if "crop_scale" in values:
            values["crop_scale"] = tuple(values["crop_scale"])
        return cls(**values)

    def batch_mixing(self, num_classes: int) -> v2.Transform | None:
        """The per-batch MixUp / CutMix of torchvision's references (labels become soft), or None."""
        mixes = ([v2.MixUp(alpha=self.mixup_alpha, num_classes=num_classes)] if self.mixup_alpha else []) + \
                ([v2.CutMix(alpha=self.cutmix_alpha, num_classes=num_classes)] if self.cutmix_alpha else [])
        return None if not mixes else mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


def _normalise(preprocessing: dict) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(preprocessing["mean"], preprocessing["std"])]


def train_transform(augmentation: ImageAugmentation, resolution: int, preprocessing: dict) -> v2.Transform:
    steps = [v2.RandomResizedCrop(resolution, scale=augmentation.crop_scale, antialias=True)]
    if augmentation.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip(augmentation.horizontal_flip))
    if augmentation.vertical_flip:
        steps.append(v2.RandomVerticalFlip(augmentation.vertical_flip))
    return v2.Compose(steps + _normalise(preprocessing))


def eval_transform(resolution: int, preprocessing: dict) -> v2.Transform:
    return v2.Compose([v2.Resize(int(round(resolution / EVAL_CROP)), antialias=True), v2.CenterCrop(resolution),
                       *_normalise(preprocessing)])


class ImageDataset(Dataset):
    """(image [3, H, W] float, class index) of a split, the classes numbered as ``class_names``."""

    def __init__(self, split: ImageSplit, class_names: list[str], transform: v2.Transform):
        self.split, self.class_names, self.transform = split, list(class_names), transform
        index = {name: k for k, name in enumerate(self.class_names)}
        self.samples = [(path, index[label]) for path, label in split.samples()]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[item]
        image = tv_tensors.Image(torch.from_numpy(np.asarray(load_rgb(path)).copy()).permute(2, 0, 1))
        return self.transform(image).as_subclass(torch.Tensor), label
