"""The CNN baselines: torchvision Faster R-CNN with ResNet-18 or EfficientNet-B0 FPN backbones.

Everything the study varies is a keyword here (FPN width, box-head width, proposal
and RoI counts, anchors, normalisation, pretrained weights), so a CPU demo and the
thesis run use the same code with different config values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
import torchvision
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import misc as misc_ops
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from detstudy.tasks.detection.models.base import DetectorAdapter

# architecture -> torchvision classification model, the stages that feed the FPN
# (IntermediateLayerGetter names -> channels), and the groups that
# ``trainable_backbone_layers`` unfreezes from the top.
_BACKBONES: dict[str, dict[str, Any]] = {
    "fasterrcnn_resnet18_fpn": {
        "torchvision_model": "resnet18",
        "return_layers": {"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        "in_channels": [64, 128, 256, 512],
        "trainable_groups": [["layer4"], ["layer3"], ["layer2"], ["layer1"], ["conv1", "bn1"]],
    },
    "fasterrcnn_efficientnet_b0_fpn": {
        "torchvision_model": "efficientnet_b0",
        # features: 2 -> stride 4 (24 ch), 3 -> 8 (40), 5 -> 16 (112), 7 -> 32 (320)
        "return_layers": {"2": "0", "3": "1", "5": "2", "7": "3"},
        "in_channels": [24, 40, 112, 320],
        "trainable_groups": [["6", "7"], ["4", "5"], ["3"], ["2"], ["0", "1"]],
    },
}

_NORM_LAYERS = {"frozen_batchnorm": misc_ops.FrozenBatchNorm2d, "batchnorm": nn.BatchNorm2d}


def _load_backbone_weights(network: nn.Module, weights: str, torchvision_model: str) -> None:
    """Load classification weights: a local state-dict file, or torchvision's named weights."""
    path = Path(weights).expanduser()
    if path.suffix in {".pt", ".pth", ".bin", ".safetensors"} or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"backbone weights file {path} not found. "
                                    "Fix: give an existing .pth/.safetensors file or a torchvision weights name "
                                    f"such as {torchvision.models.get_model_weights(torchvision_model).DEFAULT}.")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
    else:
        allowed = torchvision.models.get_model_weights(torchvision_model)
        try:
            enum_value = torchvision.models.get_weight(weights)
        except (ValueError, KeyError, AttributeError):
            enum_value = None
        if enum_value not in list(allowed):
            names = ", ".join(f"{allowed.__name__}.{w.name}" for w in allowed)
            raise ValueError(f"backbone weights {weights!r} are not weights of {torchvision_model}. "
                             f"Fix: use one of {names}, or a local file path.")
        state = enum_value.get_state_dict(progress=False)
    # The classifier of the ImageNet model is not part of the detector's backbone.
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
    missing, unexpected = network.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "classifier."))]
    if missing or unexpected:
        raise ValueError(f"backbone weights {weights!r} do not fit {torchvision_model}: "
                         f"missing {missing[:5]}, unexpected {list(unexpected)[:5]}. "
                         "Fix: use a state dict saved from torchvision's model of the same name.")


def _backbone(architecture: str, *, fpn_channels: int, norm: str, trainable_layers: int,
              weights: str | None, stochastic_depth_prob: float | None) -> BackboneWithFPN:
    spec = _BACKBONES[architecture]
    if norm not in _NORM_LAYERS:
        raise ValueError(f"norm {norm!r} is not one of {sorted(_NORM_LAYERS)}")
    builder = getattr(torchvision.models, spec["torchvision_model"])
    extra = {}
    if stochastic_depth_prob is not None:
        if not spec["torchvision_model"].startswith("efficientnet"):
            raise ValueError(f"stochastic_depth_prob applies to EfficientNet backbones, not {architecture}. "
                             "Fix: remove it from this model's settings.")
        extra["stochastic_depth_prob"] = stochastic_depth_prob
    network = builder(weights=None, norm_layer=_NORM_LAYERS[norm], **extra)
    if weights:
        _load_backbone_weights(network, weights, spec["torchvision_model"])
    body = network if spec["torchvision_model"].startswith("resnet") else network.features
    if not 0 <= trainable_layers <= len(spec["trainable_groups"]):
        raise ValueError(f"trainable_backbone_layers must be in 0..{len(spec['trainable_groups'])}")
    trainable = {name for group in spec["trainable_groups"][:trainable_layers] for name in group}
    for name, parameter in body.named_parameters():
        parameter.requires_grad_(name.split(".")[0] in trainable)
    return BackboneWithFPN(body, return_layers=spec["return_layers"], in_channels_list=spec["in_channels"],
                           out_channels=fpn_channels, extra_blocks=LastLevelMaxPool())


class FasterRCNNAdapter(DetectorAdapter):
    family = "cnn"
    backbone_prefix = "backbone.body."

    def losses(self, images, targets):
        # torchvision reserves label 0 for the background.
        shifted = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]
        return self.model(images, shifted)

    @torch.no_grad()
    def predict(self, images):
        outputs = self.model(images)
        return [{"boxes": o["boxes"], "scores": o["scores"], "labels": o["labels"] - 1} for o in outputs]


def build_faster_rcnn(architecture: str, num_classes: int, resolution: int, *,
                      fpn_channels: int = 256, box_head_width: int = 1024,
                      anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
                      aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
                      rpn_pre_nms_top_n_train: int = 2000, rpn_post_nms_top_n_train: int = 2000,
                      rpn_pre_nms_top_n_test: int = 1000, rpn_post_nms_top_n_test: int = 1000,
                      rpn_batch_size_per_image: int = 256, box_batch_size_per_image: int = 512,
                      box_score_thresh: float = 0.05, box_nms_thresh: float = 0.5,
                      box_detections_per_img: int = 100, norm: str = "frozen_batchnorm",
                      trainable_backbone_layers: int = 3, backbone_weights: str | None = None,
                      stochastic_depth_prob: float | None = None) -> FasterRCNNAdapter:
    """Faster R-CNN whose longer image side is resized to ``resolution`` pixels.

    ``anchor_sizes`` has one size per pyramid level: four backbone stages plus the
    max-pool level, so five. The defaults are torchvision's; ``stochastic_depth_prob``
    (EfficientNet only, torchvision's default 0.2) regularises long schedules but slows
    short from-scratch ones.
    """
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in locals().items()
                if k not in {"architecture", "num_classes", "resolution"}}
    if len(anchor_sizes) != 5:
        raise ValueError(f"anchor_sizes needs one size per FPN level (5), got {list(anchor_sizes)}")
    backbone = _backbone(architecture, fpn_channels=fpn_channels, norm=norm,
                         trainable_layers=trainable_backbone_layers, weights=backbone_weights,
                         stochastic_depth_prob=stochastic_depth_prob)
    anchors = AnchorGenerator(sizes=tuple((int(s),) for s in anchor_sizes),
                              aspect_ratios=(tuple(float(a) for a in aspect_ratios),) * len(anchor_sizes))
    box_head = TwoMLPHead(fpn_channels * 7 * 7, box_head_width)
    model = FasterRCNN(
        backbone, min_size=resolution, max_size=resolution, rpn_anchor_generator=anchors,
        box_head=box_head, box_predictor=FastRCNNPredictor(box_head_width, num_classes + 1),
        rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=rpn_batch_size_per_image, box_batch_size_per_image=box_batch_size_per_image,
        box_score_thresh=box_score_thresh, box_nms_thresh=box_nms_thresh,
        box_detections_per_img=box_detections_per_img,
    )
    # NHWC weights: oneDNN (CPU) and tensor cores (GPU) convolve faster without layout
    # reorders; on the 2-core demo machine a training step is 12-19% faster (measured).
    model = model.to(memory_format=torch.channels_last)
    return FasterRCNNAdapter(model, architecture, num_classes, resolution, settings)


__all__ = ["FasterRCNNAdapter", "build_faster_rcnn"]
