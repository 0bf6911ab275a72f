"""Classification inference over a dataset in order: the logits the validation reads and the
probabilities the evaluation keeps. Apart from the training loop, so that a job that only reads
a checkpoint (evaluation, latency) does not list the loop among its code inputs: editing the
loop retrains, and reruns the evaluations only through their new checkpoints."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from detstudy.tasks.classification.data.dataset import ImageDataset
from detstudy.tasks.classification.models import Classifier


@torch.no_grad()
def predict_logits(model: Classifier, data: ImageDataset, device: torch.device, batch_size: int = 64,
                   use_amp: bool = False, amp_dtype: torch.dtype = torch.float16) -> tuple[torch.Tensor, torch.Tensor]:
    """(true classes [N], logits [N, C] in float32 on the CPU) of ``data`` in order."""
    model.eval()
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, generator=torch.Generator())
    truths, logits = [], []
    for images, labels in loader:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            logits.append(model(images.to(device)).float().cpu())
        truths.append(labels)
    if not truths:
        return torch.zeros(0, dtype=torch.int64), torch.zeros((0, len(data.class_names)))
    return torch.cat(truths), torch.cat(logits)


def predict_probabilities(model: Classifier, data: ImageDataset, device: torch.device, batch_size: int = 64,
                          use_amp: bool = False, amp_dtype: torch.dtype = torch.float16) -> tuple[np.ndarray, np.ndarray]:
    """(true classes [N], softmax probabilities [N, C]) of ``data`` in order."""
    true, logits = predict_logits(model, data, device, batch_size, use_amp, amp_dtype)
    return true.numpy(), logits.softmax(dim=1).numpy()
