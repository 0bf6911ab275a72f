"""What the DEIMv2 parity check compares, on this project's side.

``benchmarks/deimv2_parity.py`` runs the official implementation and this module's
:func:`our_tensors` on the same seeded weights (:func:`seeded_official_state`, written in the
official layout and mapped by ``deimv2_keys``), images and targets, and compares every named
tensor; ``tests/test_deimv2_parity.py`` compares :func:`our_tensors` with the official values
that the benchmark saved as a fixture. Names: ``backbone.tap{i}`` (ViT tokens), ``sta.{i}``,
``backbone.out{i}`` (fused 1/8, 1/16, 1/32 maps), ``encoder.out{i}``, then the decoder outputs
(``main.*``, ``aux{i}.*``, ``pre.*``, ``enc0.*``, ``dn{i}.*``, ``dn_pre.*``, in training) or
``eval.*`` and ``detections.*``, and ``loss.<term>`` for every loss term.
"""

from __future__ import annotations

import math
import re
import zlib

import torch
from torchvision.ops import box_convert

from detstudy.tasks.detection.models.deimv2_forward import deimv2_forward

VARIANT_CLASSES = 80  # the official COCO configs
SAMPLES = 1024        # values kept per tensor in the fixture
TOP_DETECTIONS = 100
CLASS_PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)


def seeded_official_state(shapes: dict[str, list[int]], constants: dict[str, torch.Tensor], seed: int
                          ) -> dict[str, torch.Tensor]:
    """Deterministic random weights in the official layout, the same on every machine
    (uniform draws in float64, which no CPU dispatch changes). ``constants``: official buffers
    kept at their values (``up``, ``reg_scale``, RoPE periods, deformable point scales, anchors)."""
    state = {}
    for key, shape in shapes.items():
        if key in constants:
            state[key] = constants[key].clone()
            continue
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
            continue
        generator = torch.Generator().manual_seed((zlib.crc32(key.encode()) ^ seed) & 0x7FFFFFFF)
        unit = torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1  # U(-1, 1)
        if len(shape) >= 2:
            fan_in = 1
            for size in shape[1:]:
                fan_in *= size
            value = unit / fan_in ** 0.5
        elif key.endswith("running_var"):
            value = 1 + 0.2 * unit.abs()
        elif key.endswith(("weight", "scale")) and "head" not in key:
            value = 1 + 0.1 * unit  # norms
        elif key.endswith("score_head.bias") or re.search(r"score_head\.\d+\.bias$", key):
            value = CLASS_PRIOR_BIAS + 0.1 * unit  # trained detectors score most queries low, as the official init
        else:
            value = 0.1 * unit      # biases, running means, tokens
        state[key] = value.to(torch.float32)
    return state


def seeded_inputs(seed: int, batch: int, size: int) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Normalised images and official targets (``labels``, ``boxes`` cxcywh in [0, 1])."""
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(batch, 3, size, size, generator=generator, dtype=torch.float64) * 4 - 2).float()
    targets = []
    for index in range(batch):
        count = 3 + 2 * index
        centres = 0.25 + 0.5 * torch.rand(count, 2, generator=generator, dtype=torch.float64)
        sizes = 0.05 + 0.35 * torch.rand(count, 2, generator=generator, dtype=torch.float64)
        labels = torch.randint(0, VARIANT_CLASSES, (count,), generator=generator)
        targets.append({"labels": labels, "boxes": torch.cat([centres, sizes], 1).float()})
    return images, targets


def canonical(tensor: torch.Tensor, query_index: torch.Tensor) -> torch.Tensor:
    """Queries [batch, queries, ...] in ascending order of their encoder position. Top-k
    selection orders near-equal scores by float noise; self-attention is permutation
    equivariant, so the two implementations can list the same queries in another order."""
    order = query_index.argsort(dim=1)
    index = order.reshape(*order.shape, *([1] * (tensor.ndim - 2))).expand(-1, -1, *tensor.shape[2:])
    return tensor.gather(1, index)


def flatten_outputs(outputs: dict, query_index: torch.Tensor) -> dict[str, torch.Tensor]:
    """The decoder's training outputs under parity names, matching queries in canonical order."""
    keys = ("pred_logits", "pred_boxes", "pred_corners")
    matching = {"main": [outputs], "aux": outputs.get("aux_outputs", []), "enc": outputs.get("enc_aux_outputs", []),
                "pre": [outputs["pre_outputs"]] if "pre_outputs" in outputs else []}
    named = {}
    for group, layers in matching.items():
        for i, layer in enumerate(layers):
            label = group if group in ("main", "pre") else f"{group}{i}"
            named.update({f"{label}.{k}": canonical(layer[k], query_index) for k in keys if k in layer})
    for i, layer in enumerate(outputs.get("dn_outputs", [])):
        named.update({f"dn{i}.{k}": layer[k] for k in keys if k in layer})
    if "dn_pre_outputs" in outputs:
        named.update({f"dn_pre.{k}": outputs["dn_pre_outputs"][k] for k in keys if k in outputs["dn_pre_outputs"]})
    return named


def detections(logits: torch.Tensor, boxes: torch.Tensor, size: int = 1) -> dict[str, torch.Tensor]:
    """Official PostProcessor (focal scores, top-k over queries x classes); boxes xyxy in units
    of ``size`` (1: normalised, as compared)."""
    scores, index = logits.sigmoid().flatten(1).topk(TOP_DETECTIONS, dim=-1)
    classes = logits.shape[-1]
    xyxy = box_convert(boxes, "cxcywh", "xyxy") * size
    picked = xyxy.gather(1, (index // classes).unsqueeze(-1).repeat(1, 1, 4))
    return {"detections.scores": scores, "detections.labels": (index % classes).float(), "detections.boxes": picked}


def our_tensors(model, images, targets, *, training: bool, seed: int, epoch: int, criterion=None
                ) -> dict[str, torch.Tensor]:
    """Every parity tensor of this project's DEIMv2 (a transformers model after
    ``restore_official_architecture``), on ``images``/``targets``."""

    captured: dict[str, torch.Tensor] = {}
    conv = model.model.conv_encoder

    def keep(name):
        def hook(_module, _inputs, output):
            values = output.feature_maps if hasattr(output, "feature_maps") else output
            for i, value in enumerate(values):
                if name == "backbone.tap":  # [B, D, H, W] -> official tokens [B, H*W, D]
                    value = value.flatten(2).transpose(1, 2)
                captured[f"{name}{i}"] = value.detach().clone()
        return hook

    handles = [conv.backbone.register_forward_hook(keep("backbone.tap")),
               conv.spatial_tuning_adapter.register_forward_hook(keep("sta.")),
               conv.register_forward_hook(keep("backbone.out")),
               model.model.encoder.register_forward_hook(keep("encoder.out"))]
    model.train(training)
    try:
        torch.manual_seed(seed)
        with torch.set_grad_enabled(training):
            outputs = deimv2_forward(model, images, targets if training else None)
    finally:
        for handle in handles:
            handle.remove()
    if training:
        captured.update(flatten_outputs(outputs, outputs["query_index"]))
        if criterion is not None:
            losses = criterion(outputs, targets, epoch=epoch)
            captured.update({f"loss.{k}": v.detach().reshape(()) for k, v in losses.items()})
    else:
        captured["eval.pred_logits"] = canonical(outputs["pred_logits"], outputs["query_index"])
        captured["eval.pred_boxes"] = canonical(outputs["pred_boxes"], outputs["query_index"])
        captured.update(detections(outputs["pred_logits"], outputs["pred_boxes"]))
    return {k: v.detach().float() for k, v in captured.items()}


def sample(tensor: torch.Tensor) -> torch.Tensor:
    """At most SAMPLES evenly spaced values of a tensor (the fixture keeps these)."""
    flat = tensor.detach().reshape(-1).float()
    if flat.numel() <= SAMPLES:
        return flat.clone()
    return flat[torch.linspace(0, flat.numel() - 1, SAMPLES).long()].clone()


def max_differences(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], *, sampled: bool
                    ) -> dict[str, float]:
    """Per reference name: max |ours - reference| (inf when ours lacks it or the shapes differ)."""
    result = {}
    for name, value in reference.items():
        mine = ours.get(name)
        if mine is None:
            result[name] = float("inf")
            continue
        mine = sample(mine) if sampled else mine.reshape(-1)
        value = value.reshape(-1)
        result[name] = float((mine - value).abs().max()) if mine.shape == value.shape else float("inf")
    return result
