"""The segmentation families, built from the libraries made for them.

* CNN: transformers' ``UperNetForSemanticSegmentation`` on its ConvNeXt backbone
  (UPerNet-ConvNeXt-T is mmsegmentation's and the ConvNeXt paper's ADE20K model);
* hybrid: the same UPerNet head on timm's MaxViT encoder (transformers has no MaxViT);
* ViT: transformers' ``SegformerForSemanticSegmentation`` (MiT encoder, all-MLP decoder).

A variant of ``detstudy.study.architectures.SEGMENTATION_VARIANTS`` fixes the sizes, so a config
fully determines a model; the demo variants are the same classes at CPU size. Every model
returns logits upsampled to the input size (SegFormer predicts at 1/4, UPerNet upsamples itself).

Pretrained encoder weights (``weights``) come from a local file (``.safetensors`` or a torch
state dict) or a hub id (transformers or timm, read from the local cache when offline), and load
loudly: the source is logged and every encoder weight must be filled by a key of the file, or
loading fails naming the keys.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (ConvNextConfig, PreTrainedModel, SegformerConfig, SegformerForSemanticSegmentation,
                          TimmBackbone, TimmBackboneConfig, UperNetConfig, UperNetForSemanticSegmentation)
from transformers.models.upernet.modeling_upernet import UperNetFCNHead, UperNetHead

from detstudy.engine.weights import read_state_dict
from detstudy.study.architectures import SEGMENTATION_VARIANTS
from detstudy.study.segmentation import resolution_problem

log = logging.getLogger("detstudy.segmentation")

#: timm's MaxViT-T: its window and grid partitions are set from the image size it is built for.
MAXVIT_TIMM_NAME = "maxvit_tiny_tf_224"
#: The ConvNeXt stages UPerNet reads (the hub loader asks for all four: its default is the last).
CONVNEXT_STAGES = ("stage1", "stage2", "stage3", "stage4")


class TimmUperNet(UperNetForSemanticSegmentation):
    """transformers' UPerNet over a timm encoder built with its own arguments (image size,
    widths, depths). ``load_backbone`` builds a timm backbone from the model name alone, which
    fixes MaxViT's attention windows to the name's 224 px; this builds the same
    ``TimmBackbone`` with the arguments passed to ``timm.create_model`` and leaves the
    head and forward pass to UPerNet unchanged."""

    def __init__(self, config: UperNetConfig, timm_arguments: dict[str, Any]):
        PreTrainedModel.__init__(self, config)  # not UperNet's own: it would build the 224 px encoder first
        self.backbone = TimmBackbone(config.backbone_config, **timm_arguments)
        self.decode_head = UperNetHead(config, in_channels=self.backbone.channels)
        self.auxiliary_head = (UperNetFCNHead(config, in_channels=self.backbone.channels)
                               if config.use_auxiliary_head else None)
        self.post_init()


class Segmenter(nn.Module):
    """One interface for the three families: ``forward(images [B, 3, H, W]) -> logits
    [B, classes, H, W]``, and ``encoder`` (the pretrained part)."""

    def __init__(self, network: nn.Module, encoder: nn.Module, architecture: str, settings: dict[str, Any]):
        super().__init__()
        self.network = network
        self.architecture = architecture
        self.settings = dict(settings)  # what rebuilds it: the checkpoint stores these
        self.encoder_name = next(name for name, module in network.named_modules() if module is encoder)

    @property
    def encoder(self) -> nn.Module:
        return self.network.get_submodule(self.encoder_name)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.network(pixel_values=images).logits
        if logits.shape[-2:] != images.shape[-2:]:  # SegFormer: 1/4 of the input
            logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return logits


def check_resolution(architecture: str, resolution: int) -> None:
    problem = resolution_problem(resolution)
    if problem:
        raise ValueError(f"{architecture}: {problem}")


def _upernet_config(variant: dict, num_classes: int, backbone_config) -> UperNetConfig:
    return UperNetConfig(backbone_config=backbone_config, num_labels=num_classes, hidden_size=variant["head"],
                         auxiliary_in_channels=variant["widths"][2], use_auxiliary_head=False)


def build_segmenter(architecture: str, num_classes: int, resolution: int, *, weights: str | None = None,
                    drop_path_rate: float = 0.0) -> Segmenter:
    """``architecture`` (a key of ``SEGMENTATION_VARIANTS``) for ``num_classes`` classes at
    ``resolution`` px (MaxViT's windows are set from it), pretrained encoder from ``weights``."""
    if architecture not in SEGMENTATION_VARIANTS:
        raise ValueError(f"unknown segmentation architecture {architecture!r}. "
                         f"Fix: use one of {', '.join(SEGMENTATION_VARIANTS)}.")
    check_resolution(architecture, resolution)
    variant = SEGMENTATION_VARIANTS[architecture]
    depths, widths = list(variant["depths"]), list(variant["widths"])
    if variant["encoder"] == "convnext":
        backbone = ConvNextConfig(depths=depths, hidden_sizes=widths, drop_path_rate=drop_path_rate,
                                  out_features=list(CONVNEXT_STAGES))
        network = UperNetForSemanticSegmentation(_upernet_config(variant, num_classes, backbone))
    elif variant["encoder"] == "maxvit":
        backbone = TimmBackboneConfig(backbone=MAXVIT_TIMM_NAME, out_indices=[1, 2, 3, 4])
        network = TimmUperNet(_upernet_config(variant, num_classes, backbone),
                              {"img_size": resolution, "embed_dim": tuple(widths), "depths": tuple(depths),
                               "stem_width": variant["stem"], "drop_path_rate": drop_path_rate})
    else:
        config = SegformerConfig(depths=depths, hidden_sizes=widths, num_attention_heads=list(variant["heads"]),
                                 decoder_hidden_size=variant["head"], num_labels=num_classes,
                                 drop_path_rate=drop_path_rate, semantic_loss_ignore_index=255)
        network = SegformerForSemanticSegmentation(config)
    encoder = network.segformer if variant["encoder"] == "mit" else network.backbone
    model = Segmenter(network, encoder, architecture,
                      {"num_classes": num_classes, "resolution": resolution, "drop_path_rate": drop_path_rate})
    if weights:
        load_encoder_weights(model, weights)
    return model


_PREFIXES = ("module.", "model.", "backbone.", "segformer.", "convnext.", "encoder.", "_backbone.")
#: Encoder weights a pretrained classifier does not have: transformers' ConvNeXt backbone
#: normalises each stage's output for the decoder; they keep their initial values (scale 1, shift
#: 0), as when transformers loads an ImageNet ConvNeXt into UPerNet.
_OWN_WEIGHTS = {"convnext": ("hidden_states_norms.",)}


def _bare(key: str) -> str:
    """A weight's name without the wrappers' prefixes: timm's features_only net and
    transformers' TimmBackbone (``_backbone.``), checkpoints' ``module.``/``model.``, ..."""
    while key.startswith(_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def _encoder_state_from_hub(architecture: str, source: str) -> dict[str, torch.Tensor]:
    encoder = SEGMENTATION_VARIANTS[architecture]["encoder"]
    try:
        if encoder == "maxvit":
            import timm

            # at the name's own size; load_encoder_weights resizes the attention bias tables
            network = timm.create_model(f"hf-hub:{source}", pretrained=True, features_only=True, out_indices=(1, 2, 3, 4))
            return network.state_dict()
        if encoder == "convnext":
            from transformers import ConvNextBackbone

            return ConvNextBackbone.from_pretrained(source, out_features=list(CONVNEXT_STAGES)).state_dict()
        from transformers import SegformerModel

        return SegformerModel.from_pretrained(source).state_dict()
    except (OSError, ValueError, RuntimeError) as error:
        raise FileNotFoundError(
            f"encoder weights {source!r}: neither a local file nor a hub id that could be loaded ({error}). "
            "Fix: give the path of a .safetensors/.pth file, or download the hub id once with network access "
            "(it is then read from the cache, also with HF_HUB_OFFLINE=1)") from error


def _fit_maxvit(state: dict[str, torch.Tensor], encoder: nn.Module) -> dict[str, torch.Tensor]:
    """timm's own adaptation of MaxViT weights to this encoder (bare names): relative-position
    bias tables resized to its attention windows (a 224-px checkpoint at 384 px). A whole
    classifier's ``stages.N.`` are the features-only net's ``stages_N.``."""
    from timm.models.maxxvit import checkpoint_filter_fn

    inner = encoder._backbone  # transformers' TimmBackbone around timm's features-only net
    names = set(inner.state_dict())
    state = {re.sub(r"^stages\.(\d+)\.", r"stages_\1.", key): value for key, value in state.items()}
    return checkpoint_filter_fn({k: v for k, v in state.items() if k in names}, inner)


def load_encoder_weights(model: Segmenter, source: str) -> None:
    """Fill the encoder from ``source`` (a file or a hub id); refuses a file that leaves an
    encoder weight unfilled or whose tensors do not fit, naming them. Names are matched without
    the wrappers' prefixes; MaxViT's attention bias tables are resized to the resolution's
    windows; ConvNeXt's output norms, absent from an ImageNet classifier, keep their start."""
    path = Path(source).expanduser()
    state = read_state_dict(path) if path.is_file() else _encoder_state_from_hub(model.architecture, source)
    encoder_kind = SEGMENTATION_VARIANTS[model.architecture]["encoder"]
    target = model.encoder.state_dict()
    by_bare = {_bare(key): key for key in target}
    bare_state = {_bare(key): value for key, value in state.items()}
    if encoder_kind == "maxvit":
        bare_state = _fit_maxvit(bare_state, model.encoder)
    given = {by_bare[key]: value for key, value in bare_state.items() if key in by_bare}
    own = _OWN_WEIGHTS.get(encoder_kind, ())
    kept = sorted(k for k in set(target) - set(given) if _bare(k).startswith(own))
    missing = sorted(set(target) - set(given) - set(kept))
    wrong = sorted(k for k in given if given[k].shape != target[k].shape)
    if missing or wrong:
        raise ValueError(f"encoder weights {source}: do not fit {model.architecture}: "
                         f"{len(missing)} encoder weights missing (first: {missing[:3]}), "
                         f"{len(wrong)} of another shape (first: {wrong[:3]}). Fix: use weights of this encoder "
                         "(ConvNeXt-T for upernet_convnext_tiny, MaxViT-T for upernet_maxvit_tiny, MiT-B3 for segformer_b3)")
    model.encoder.load_state_dict({**{k: target[k] for k in kept}, **given})
    log.info("%s: encoder weights loaded from %s (%d tensors%s)", model.architecture, source, len(given),
             f"; {len(kept)} output-norm tensors at their initial values" if kept else "")


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
