"""Pretrained weights of a classifier's backbone, loaded loudly: from a local file
(``.safetensors`` or a torch state dict), a torchvision weights name (the ResNets:
``ResNet18_Weights.IMAGENET1K_V1``, downloaded once into the torch hub cache) or a hub id
(MobileViT: ``apple/mobilevit-small``; DINOv3: ``facebook/dinov3-vits16-pretrain-lvd1689m``; read
from the local cache when offline, or a folder written by ``save_pretrained``). Every backbone
weight must be filled by a tensor of its shape, or loading fails naming the keys; the head (its
class count is the study's) starts afresh."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from detstudy.engine.weights import read_state_dict

log = logging.getLogger("detstudy.classification")

#: The head's parameters in each family's network (never loaded: the class count differs).
HEAD_PREFIXES = {"resnet": "fc.", "mobilevit": "classifier.", "dinov3": "head."}
#: Prefixes a saved state may carry around the network's own names.
_WRAPPERS = ("module.", "model.", "network.")


def _from_library(model, source: str) -> dict[str, torch.Tensor]:
    try:
        if model.family == "resnet":
            from torchvision.models import get_weight

            return get_weight(source).get_state_dict(progress=False)
        if model.family == "mobilevit":
            from transformers import MobileViTForImageClassification

            return MobileViTForImageClassification.from_pretrained(source).state_dict()
        from transformers import DINOv3ViTModel

        return {f"backbone.{k}": v for k, v in DINOv3ViTModel.from_pretrained(source).state_dict().items()}
    except (OSError, ValueError, RuntimeError, KeyError, AttributeError) as error:
        how = ("a torchvision weights name such as ResNet18_Weights.IMAGENET1K_V1" if model.family == "resnet"
               else "a hub id downloaded once with network access (then read from the cache, also offline)")
        raise FileNotFoundError(f"weights {source!r} for {model.architecture}: neither a local file nor {how} "
                                f"({str(error).splitlines()[0]}). Fix: give a .safetensors/.pth file or {how}") from error


def load_pretrained(model, source: str) -> None:
    """Fill everything of ``model`` (a ``models.Classifier``) but its head from ``source``;
    refuses weights that leave a backbone weight unfilled or do not fit, naming them."""
    path = Path(source).expanduser()
    state = read_state_dict(path) if path.is_file() else _from_library(model, source)
    head = HEAD_PREFIXES[model.family]
    target = {k: v for k, v in model.network.state_dict().items() if not k.startswith(head)}
    found = {}
    for key, value in state.items():
        while key not in target and key.startswith(_WRAPPERS):
            key = key.split(".", 1)[1]
        if key in target:
            found[key] = value
    missing = sorted(set(target) - set(found))
    wrong = sorted(k for k in found if found[k].shape != target[k].shape)
    if missing or wrong:
        raise ValueError(f"weights {source}: do not fit {model.architecture}: {len(missing)} backbone weights missing "
                         f"(first: {missing[:3]}), {len(wrong)} of another shape (first: {wrong[:3]}). Fix: use "
                         "weights of this architecture (its sizes: detstudy.study.architectures.CLASSIFICATION_VARIANTS)")
    model.network.load_state_dict(found, strict=False)
    log.info("%s: %d backbone tensors loaded from %s; the head (%s*) starts afresh", model.architecture,
             len(found), source, head)


__all__ = ["HEAD_PREFIXES", "load_pretrained"]
