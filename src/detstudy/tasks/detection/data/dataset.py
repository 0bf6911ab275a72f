"""A COCO split as a torch Dataset (training augmentation lives in ``detstudy.tasks.detection.data.augment``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from detstudy.tasks.detection.data.coco import CategoryMap, SplitPaths, load_coco_json
from detstudy.tasks.images import load_rgb


class CocoDetection(Dataset):
    """Images as uint8 ``tv_tensors.Image`` (RGB) and targets with xyxy boxes and 0-based labels.

    Grayscale, palette, RGBA and 16-bit images are converted to RGB by
    :func:`detstudy.tasks.images.load_rgb` (as everywhere else an image meets a model), which is
    why the dataset checks only warn about them.
    """

    def __init__(self, split: SplitPaths, categories: CategoryMap | None = None,
                 transforms: v2.Transform | None = None):
        self.split = split
        self.coco = load_coco_json(split.annotations)
        self.categories = categories or CategoryMap.from_coco(self.coco)
        self.transforms = transforms
        self.images = sorted(self.coco["images"], key=lambda im: im["id"])
        self._annotations: dict[int, list[dict]] = {im["id"]: [] for im in self.images}
        for annotation in self.coco["annotations"]:
            if not annotation.get("iscrowd", 0):
                self._annotations[annotation["image_id"]].append(annotation)

    def __len__(self) -> int:
        return len(self.images)

    def image_path(self, index: int) -> Path:
        return self.split.images / self.images[index]["file_name"]

    def load_image(self, index: int) -> tv_tensors.Image:
        rgb = load_rgb(self.image_path(index))
        return tv_tensors.Image(torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1))

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        image = self.load_image(index)
        info = self.images[index]
        annotations = self._annotations[info["id"]]
        boxes = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # COCO xywh -> xyxy
        height, width = image.shape[-2:]
        target = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor([self.categories.index(a["category_id"]) for a in annotations], dtype=torch.int64),
            "image_id": int(info["id"]),
        }
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def collate(batch):
    """Detection batches are lists: images differ in size and box count."""
    images, targets = zip(*batch)
    return list(images), list(targets)
