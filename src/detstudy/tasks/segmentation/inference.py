"""Segmentation inference: whole-image (the image resized to the model's resolution) or
sliding-window (windows of the resolution over the image at its own size, logits averaged
where they overlap), the logits brought back to the mask's size either way."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from detstudy.tasks.segmentation.confusion import confusion_matrix, predicted_labels

MODES = ("whole", "slide")


def predict_logits(model, image: torch.Tensor, size: tuple[int, int], resolution: int, mode: str = "whole",
                   overlap: float = 1 / 3) -> torch.Tensor:
    """[C, H, W] logits of one normalised image ([3, h, w]) at mask size ``size`` = (H, W).

    ``whole``: ``image`` is the resized input (the dataset's eval transform); ``slide``:
    ``image`` is at the mask's size and is covered by ``resolution`` windows overlapping by
    ``overlap`` (mmsegmentation's slide mode; an image smaller than a window is padded)."""
    if mode not in MODES:
        raise ValueError(f"inference mode {mode!r}: use one of {', '.join(MODES)}")
    batch = image.unsqueeze(0)
    if mode == "whole":
        logits = model(batch)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)[0]
    h, w = image.shape[-2:]
    pad_h, pad_w = max(resolution - h, 0), max(resolution - w, 0)
    batch = F.pad(batch, (0, pad_w, 0, pad_h))
    full_h, full_w = batch.shape[-2:]
    stride = max(1, int(resolution * (1 - overlap)))
    rows = max(math.ceil((full_h - resolution) / stride), 0) + 1
    cols = max(math.ceil((full_w - resolution) / stride), 0) + 1
    total, count = None, torch.zeros(1, 1, full_h, full_w, device=image.device)
    for r in range(rows):
        for c in range(cols):
            y0, x0 = min(r * stride, full_h - resolution), min(c * stride, full_w - resolution)
            logits = model(batch[..., y0:y0 + resolution, x0:x0 + resolution])
            if total is None:
                total = torch.zeros(1, logits.shape[1], full_h, full_w, device=image.device)
            total[..., y0:y0 + resolution, x0:x0 + resolution] += logits
            count[..., y0:y0 + resolution, x0:x0 + resolution] += 1
    logits = (total / count)[..., :h, :w]
    if (h, w) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits[0]


@torch.no_grad()
def dataset_confusions(model, dataset, device: torch.device, resolution: int, mode: str = "whole",
                       use_amp: bool = False, on_image=None, amp_dtype: torch.dtype = torch.float16) -> torch.Tensor:
    """[N, C, C] per-image confusion matrices of ``dataset`` (a ``MaskDataset`` built with the
    transform of ``mode``: resized images for ``whole``, full-size ones for ``slide``), under
    ``amp_dtype`` autocast with ``use_amp`` (CUDA). ``on_image(index, prediction, truth)`` sees
    each predicted and ground-truth mask (the overlay figure's samples)."""
    model.eval()
    num_classes = dataset.num_classes
    matrices = []
    for index in range(len(dataset)):
        image, mask = dataset[index]
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            logits = predict_logits(model, image.to(device), tuple(mask.shape), resolution, mode)
        prediction = predicted_labels(logits).cpu()
        matrices.append(confusion_matrix(mask, prediction, num_classes, dataset.ignore_index))
        if on_image is not None:
            on_image(index, prediction, mask)
    return torch.stack(matrices) if matrices else torch.zeros(0, num_classes, num_classes, dtype=torch.int64)
