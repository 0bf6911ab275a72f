"""The classification families, built from the libraries made for them.

* CNN: torchvision's ResNet-18 / ResNet-50 (the demo: a one-block-per-stage ResNet, same class);
* hybrid: transformers' ``MobileViTForImageClassification`` (MobileViT-S: ``apple/mobilevit-small``);
* ViT: transformers' DINOv3 ViT (the backbone family of the detection study's DEIMv2) with a
  linear head on the class token and the mean patch token, as DINOv3's linear probes read it.

A variant of ``detstudy.study.architectures.CLASSIFICATION_VARIANTS`` fixes the sizes. Every
model maps images [B, 3, H, W] (normalised by :data:`PREPROCESSING` of its family) to logits
[B, classes]. ``fine_tune`` picks what trains: ``full``, ``head`` or ``last_<n>`` (the last n
blocks or stages and the head), the study's progressive-unfreezing vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models import ResNet
from torchvision.models.resnet import BasicBlock, Bottleneck
from transformers import DINOv3ViTConfig, DINOv3ViTModel, MobileViTConfig, MobileViTForImageClassification

from detstudy.study.architectures import CLASSIFICATION_VARIANTS
from detstudy.tasks.classification.weights import load_pretrained

#: The input each pretrained family expects, recorded in every run: the data pipeline scales RGB
#: to [0, 1] and normalises by ``mean``/``std`` (ImageNet's for the torchvision ResNets and DINOv3;
#: none for MobileViT, whose image processor only rescales); the model flips to ``channel_order``
#: itself (MobileViT's processor feeds BGR: ``do_flip_channel_order``), so predict needs nothing more.
PREPROCESSING = {
    "resnet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "channel_order": "RGB"},
    "mobilevit": {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "channel_order": "BGR"},
    "dinov3": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "channel_order": "RGB"},
}


class Classifier(nn.Module):
    """One interface for the three families: ``forward(images) -> logits``; ``blocks`` (the
    stages in input order, for ``last_<n>`` fine-tuning) and ``head``."""

    def __init__(self, network: nn.Module, architecture: str, settings: dict[str, Any]):
        super().__init__()
        self.network, self.architecture, self.settings = network, architecture, dict(settings)
        self.family = CLASSIFICATION_VARIANTS[architecture]["library"]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.family == "resnet":
            return self.network(images)
        if self.family == "mobilevit":  # its checkpoints were trained on BGR input (the image processor's flip)
            return self.network(pixel_values=images.flip(1)).logits
        hidden = self.network.backbone(pixel_values=images).last_hidden_state
        registers = self.network.backbone.config.num_register_tokens
        features = torch.cat([hidden[:, 0], hidden[:, 1 + registers:].mean(dim=1)], dim=-1)
        return self.network.head(features)

    def blocks(self) -> list[nn.Module]:
        if self.family == "resnet":
            n = self.network
            return [nn.ModuleList([n.conv1, n.bn1]), n.layer1, n.layer2, n.layer3, n.layer4]
        if self.family == "mobilevit":
            return [self.network.mobilevit.conv_stem, *self.network.mobilevit.encoder.layer,
                    self.network.mobilevit.conv_1x1_exp]
        backbone = self.network.backbone
        return [backbone.embeddings, *backbone.model.layer, backbone.norm]

    def head(self) -> nn.Module:
        return {"resnet": lambda: self.network.fc, "mobilevit": lambda: self.network.classifier,
                "dinov3": lambda: self.network.head}[self.family]()


def build_classifier(architecture: str, num_classes: int, *, fine_tune: str = "full",
                     drop_path_rate: float = 0.0, weights: str | None = None) -> Classifier:
    """``architecture`` for ``num_classes`` classes; ``weights``: pretrained weights of all but the
    head (:func:`~detstudy.tasks.classification.weights.load_pretrained`); ``fine_tune``: what trains."""
    if architecture not in CLASSIFICATION_VARIANTS:
        raise ValueError(f"unknown classification architecture {architecture!r}. "
                         f"Fix: use one of {', '.join(CLASSIFICATION_VARIANTS)}.")
    variant = CLASSIFICATION_VARIANTS[architecture]
    if variant["library"] == "resnet":
        block = Bottleneck if variant["block"] == "bottleneck" else BasicBlock
        network = ResNet(block, list(variant["layers"]), num_classes=num_classes)
    elif variant["library"] == "mobilevit":
        config = MobileViTConfig(num_labels=num_classes, hidden_sizes=tuple(variant["hidden_sizes"]),
                                 neck_hidden_sizes=tuple(variant["neck_hidden_sizes"]),
                                 num_attention_heads=variant["heads"], drop_path_rate=drop_path_rate)
        network = MobileViTForImageClassification(config)
    else:
        config = DINOv3ViTConfig(hidden_size=variant["width"], num_hidden_layers=variant["depth"],
                                 num_attention_heads=variant["heads"], intermediate_size=4 * variant["width"],
                                 patch_size=variant["patch"], num_register_tokens=variant["registers"],
                                 drop_path_rate=drop_path_rate)
        network = nn.Module()
        network.backbone = DINOv3ViTModel(config)
        network.head = nn.Linear(2 * variant["width"], num_classes)
    model = Classifier(network, architecture, {"num_classes": num_classes, "fine_tune": fine_tune,
                                               "drop_path_rate": drop_path_rate})
    if weights:
        load_pretrained(model, weights)
    set_trainable(model, fine_tune)
    return model


def set_trainable(model: Classifier, fine_tune: str) -> None:
    """``full``: everything trains; ``head``: the head only; ``last_<n>``: the last n blocks and the head."""
    if fine_tune == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return
    if fine_tune == "head":
        last = 0
    elif fine_tune.startswith("last_") and fine_tune[5:].isdigit() and int(fine_tune[5:]) >= 1:
        last = int(fine_tune[5:])
    else:
        raise ValueError(f"fine_tune {fine_tune!r}: use full, head or last_<n> (the last n blocks and the head)")
    blocks = model.blocks()
    if last > len(blocks):
        raise ValueError(f"fine_tune {fine_tune!r}: {model.architecture} has {len(blocks)} blocks. Fix: at most "
                         f"last_{len(blocks)}, or full")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for module in [*blocks[len(blocks) - last:], model.head()]:
        for parameter in module.parameters():
            parameter.requires_grad_(True)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
