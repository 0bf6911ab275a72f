"""Run a detector over a dataset and collect COCO-format detections; time it."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from detstudy.tasks.detection.data.dataset import CocoDetection, collate
from detstudy.tasks.detection.models.base import DetectorAdapter


def as_float(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    return image.to(device, non_blocking=True).float().div_(255.0)


def ordered_loader(dataset, batch_size: int) -> DataLoader:
    """The dataset in order. Its own generator: a loader without one draws its seed from the global
    RNG, so each validation would shift the training's random stream after it."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                      generator=torch.Generator())


@torch.no_grad()
def predict_dataset(adapter: DetectorAdapter, dataset: CocoDetection, device: torch.device,
                    batch_size: int = 4, amp: bool = False, amp_dtype: torch.dtype = torch.float16) -> list[dict]:
    """Detections for every image, in COCO results format with the dataset's own category ids."""
    adapter.model.eval()
    loader = ordered_loader(dataset, batch_size)
    detections: list[dict] = []
    for images, targets in loader:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp and device.type == "cuda"):
            outputs = adapter.predict([as_float(image, device) for image in images])
        for target, output in zip(targets, outputs):
            detections.extend(coco_results(output, target["image_id"], dataset.categories))
    return detections


def coco_results(output: dict, image_id: int, categories) -> list[dict]:
    """One image's ``predict`` output in COCO results format: boxes as x, y, w, h in pixels,
    the dataset's category ids (``categories``: a CategoryMap), rounded as every file stores them."""
    boxes = output["boxes"].float().cpu()
    boxes[:, 2:] -= boxes[:, :2]  # xyxy -> COCO xywh
    return [{"image_id": image_id, "category_id": categories.category_id(label),
             "bbox": [round(v, 2) for v in box], "score": round(score, 5)}
            for box, score, label in zip(boxes.tolist(), output["scores"].float().cpu().tolist(),
                                         output["labels"].cpu().tolist())]
