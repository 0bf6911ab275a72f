"""Counting a segmentation's confusion matrix (torch, where the predictions are): rows ground
truth, columns prediction, ignore pixels left out; the metrics read from it are
:mod:`detstudy.tasks.segmentation.metrics` (NumPy)."""

from __future__ import annotations

import numpy as np
import torch


def confusion_matrix(target: torch.Tensor, prediction: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """[C, C] int64 counts of (ground truth, prediction) pixel pairs; ``target`` pixels equal to
    ``ignore_index`` are left out. Both tensors hold class indices and have the same shape."""
    if target.shape != prediction.shape:
        raise ValueError(f"target {tuple(target.shape)} and prediction {tuple(prediction.shape)} differ in shape")
    valid = target != ignore_index
    truth, predicted = torch.where(valid, target, 0).long(), prediction.long()
    if truth.numel():
        high, low = int(truth.max()), int(truth.min())
        if high >= num_classes or low < 0:
            raise ValueError(f"ground truth holds class {high if high >= num_classes else low} outside "
                             f"0..{num_classes - 1} (and is not the ignore value {ignore_index})")
        if int(predicted.max()) >= num_classes or int(predicted.min()) < 0:
            raise ValueError(f"prediction holds a class outside 0..{num_classes - 1}")
    # ignored pixels go to one extra bin, dropped after counting (cheaper than selecting the valid ones)
    index = torch.where(valid, truth * num_classes + predicted, num_classes**2)
    counts = torch.bincount(index.flatten(), minlength=num_classes**2 + 1)
    return counts[:num_classes**2].reshape(num_classes, num_classes)


def predicted_labels(logits: torch.Tensor) -> torch.Tensor:
    """[H, W] the class of highest logit per pixel of [C, H, W] logits, the first on ties like
    argmax (``max(dim=0)`` reduces the class axis several times faster than ``argmax`` on CPU)."""
    return logits.max(dim=0).indices


def image_confusions(targets, predictions, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """[N, C, C]: one confusion matrix per image (pairs of masks of any sizes)."""
    matrices = [confusion_matrix(t, p, num_classes, ignore_index).cpu().numpy() for t, p in zip(targets, predictions)]
    return np.stack(matrices) if matrices else np.zeros((0, num_classes, num_classes), dtype=np.int64)
