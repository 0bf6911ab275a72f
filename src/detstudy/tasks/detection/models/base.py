"""The interface every detector family implements for training and evaluation."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from detstudy.tasks.detection.multimodal.fusion import FUSION_PREFIX


class DetectorAdapter:
    """Wraps a detector so the training loop and the evaluation need not know its family.

    Conventions: images are float tensors in [0, 1], CHW, at their original size;
    targets hold ``boxes`` (xyxy, original pixels) and ``labels`` (0-based contiguous
    class indices). Predictions come back in the same conventions.
    """

    family: str = ""
    backbone_prefix: str = ""  # parameter-name prefix of the backbone (for its own learning rate)

    def __init__(self, model: nn.Module, architecture: str, num_classes: int, resolution: int,
                 settings: dict[str, Any]):
        self.model = model
        self.architecture = architecture
        self.num_classes = num_classes
        self.resolution = resolution
        self.settings = settings

    def losses(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Loss components for one batch (the model is in train mode)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Per image: ``boxes`` (xyxy, original pixels), ``scores``, ``labels`` (0-based)."""
        raise NotImplementedError

    @property
    def lr_prefixes(self) -> dict[str, str]:
        """The parts that may train at a rate of their own (``backbone_lr``, ``fusion_lr``): their
        parameter-name prefixes (``detstudy.engine.schedules.build_optimizer``)."""
        return {"backbone_lr": self.backbone_prefix, "fusion_lr": FUSION_PREFIX}

    def decays(self, name: str, parameter: nn.Parameter) -> bool:
        """Whether the optimizer applies weight decay to this parameter: not to norms and biases."""
        return parameter.ndim > 1

    def set_epoch(self, epoch: int) -> None:
        """Called with the 0-based epoch before each training epoch (for epoch-dependent losses)."""

    def parameter_count(self) -> dict[str, int]:
        params = list(self.model.parameters())
        return {"total": sum(p.numel() for p in params),
                "trainable": sum(p.numel() for p in params if p.requires_grad)}

    def to(self, device: torch.device) -> "DetectorAdapter":
        self.model.to(device)
        return self

    def describe(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this detector."""
        return {"architecture": self.architecture, "num_classes": self.num_classes,
                "resolution": self.resolution, "settings": self.settings}
