"""The segmentation loss of the study: cross-entropy with class weights plus soft Dice, both
leaving the ignore pixels out."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DiceCrossEntropy(nn.Module):
    """``ce_weight`` x weighted cross-entropy + ``dice_weight`` x (1 - soft Dice).

    The Dice term is computed per class over the batch's valid pixels and averaged over the
    classes present in the batch's ground truth (an absent class would otherwise add a free 0
    or a pointless 1); class weights apply to the cross-entropy, whose imbalance they correct."""

    def __init__(self, class_weights: torch.Tensor | None, ignore_index: int = 255, ce_weight: float = 1.0,
                 dice_weight: float = 1.0, smooth: float = 1.0):
        super().__init__()
        self.register_buffer("class_weights", None if class_weights is None else class_weights.float())
        self.ignore_index, self.ce_weight, self.dice_weight, self.smooth = ignore_index, ce_weight, dice_weight, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = logits.float()
        losses = {"loss_ce": self.ce_weight * F.cross_entropy(logits, target, weight=self.class_weights,
                                                              ignore_index=self.ignore_index)}
        if self.dice_weight:
            losses["loss_dice"] = self.dice_weight * self.dice(logits, target)
        return losses

    def dice(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        valid = (target != self.ignore_index).unsqueeze(1).float()  # [B, 1, H, W]
        probabilities = logits.softmax(dim=1) * valid
        one_hot = F.one_hot(torch.where(target == self.ignore_index, 0, target), num_classes).permute(0, 3, 1, 2).float()
        one_hot = one_hot * valid
        dims = (0, 2, 3)
        intersection = (probabilities * one_hot).sum(dims)
        cardinality = probabilities.sum(dims) + one_hot.sum(dims)
        dice = (2 * intersection + self.smooth) / (cardinality + self.smooth)
        present = one_hot.sum(dims) > 0
        if not present.any():
            return logits.sum() * 0.0
        return 1.0 - dice[present].mean()
