"""Where a DEIMv2 looks: read back from the model's own forward pass, never recomputed.

* The DINOv3 backbone: the class token's attention over the patches in the last ViT layer, per
  head, from transformers' own eager attention (the layer returns its weights; SDPA, the default
  kernel, does not, so the backbone runs eagerly while it is read).
* The decoder: each query's deformable sampling locations and attention weights in the layer
  that makes the predictions, as the layer hands them to its sampling kernel
  (``ms_deformable_attn_core``, wrapped while it is read).

Both come from one ``predict``-equivalent pass on one image, so every detection it returns is
a detection of :meth:`Deimv2Adapter.predict`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torchvision.ops import box_convert

from detstudy.tasks.detection.models.deimv2_forward import deimv2_forward
from detstudy.tasks.detection.multimodal.fusion import text_fusion_of


@dataclass
class Sampling:
    """One detection's decoder sampling: ``points`` [heads, points, 2] in image pixels (x, y),
    ``weights`` [heads, points] (each head's weights sum to 1), ``levels`` [points] (0 = 1/8)."""
    box: list
    score: float
    label: int
    query: int
    points: torch.Tensor
    weights: torch.Tensor
    levels: torch.Tensor
    text_similarity: list | None = None  # cosine similarity to each class description (text-fused)


@dataclass
class Looks:
    image_size: tuple[int, int]        # (height, width) of the original image
    patch_grid: tuple[int, int]        # (rows, columns) of ViT patches
    backbone: torch.Tensor             # [heads, rows, columns]: the class token's attention
    detections: list[Sampling]


def _vit_attentions(model) -> list:
    from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTAttention

    return [m for m in model.model.conv_encoder.backbone.modules() if isinstance(m, DINOv3ViTAttention)]


@contextmanager
def _eager_backbone(model):
    config = model.model.conv_encoder.backbone.config
    kept = config._attn_implementation
    config._attn_implementation = "eager"
    try:
        yield
    finally:
        config._attn_implementation = kept


@contextmanager
def _recorded_sampling(layers, record: dict):
    """Wrap every decoder layer's sampling kernel: ``record[i]`` = (locations, weights) of layer i."""
    kept = []
    for i, layer in enumerate(layers):
        attention = layer.encoder_attn
        core = attention.ms_deformable_attn_core

        def recording(value, shapes, locations, weights, points, method="default", _i=i, _core=core):
            record[_i] = (locations.detach(), weights.detach())
            return _core(value, shapes, locations, weights, points, method)

        kept.append((attention, core))
        attention.ms_deformable_attn_core = recording
    try:
        yield
    finally:
        for attention, core in kept:
            attention.ms_deformable_attn_core = core


@torch.no_grad()
def where_deimv2_looks(adapter, image: torch.Tensor, top_k: int = 5) -> Looks:
    """Backbone attention and the decoder sampling of the ``top_k`` best detections on ``image``
    ([3, H, W], 0-1), by the same selection as ``predict`` (top scores over queries x classes)."""
    model = adapter.model
    model.eval()
    pixels = adapter._pixels([image])
    attentions = _vit_attentions(model)
    captured = {}
    handle = attentions[-1].register_forward_hook(lambda m, args, out: captured.update(weights=out[1].detach()))
    sampling: dict[int, tuple] = {}
    try:
        with _eager_backbone(model), _recorded_sampling(model.model.decoder.layers, sampling):
            output = deimv2_forward(model, pixels)
    finally:
        handle.remove()
    rows, columns = pixels.shape[-2] // adapter_patch(model), pixels.shape[-1] // adapter_patch(model)
    weights = captured["weights"][0].float().cpu()  # [heads, tokens, tokens]
    prefix = weights.shape[-1] - rows * columns  # the class token (and registers, if any) first
    backbone = weights[:, 0, prefix:].reshape(-1, rows, columns)

    height, width = image.shape[-2:]
    logits = output["pred_logits"][0].float().cpu()
    pred_boxes = output["pred_boxes"][0].float().cpu()
    num_classes = logits.shape[-1]
    scores, index = logits.sigmoid().flatten().topk(min(top_k, logits.numel()))
    # deimv2_forward stops at the decoder's eval layer in eval mode: the last layer recorded is the one
    # that made the predictions (eval_idx), and last_hidden_state is its output
    locations, point_weights = (t.float().cpu() for t in sampling[max(sampling)])
    attention = model.model.decoder.layers[max(sampling)].encoder_attn
    levels = torch.cat([torch.full((n,), level) for level, n in enumerate(attention.num_points_list)])
    similarity = _text_similarity(model, output)
    scale = torch.tensor([width, height], dtype=locations.dtype)
    detections = []
    for score, flat in zip(scores.tolist(), index.tolist()):
        query, label = divmod(flat, num_classes)
        box = box_convert(pred_boxes[query], "cxcywh", "xyxy") * scale.repeat(2)
        detections.append(Sampling(
            box=[round(v, 2) for v in box.tolist()], score=score, label=label, query=query,
            points=locations[0, query, :, :, :] * scale,  # [heads, points, 2], 0-1 of the input -> pixels
            weights=point_weights[0, query], levels=levels,
            text_similarity=None if similarity is None else similarity[query].tolist()))
    return Looks(image_size=(height, width), patch_grid=(rows, columns), backbone=backbone, detections=detections)


def adapter_patch(model) -> int:
    return model.model.conv_encoder.backbone.config.patch_size


def _text_similarity(model, output):
    fusion = text_fusion_of(model)
    return None if fusion is None else fusion.similarity(output["last_hidden_state"])[0].float().cpu()
