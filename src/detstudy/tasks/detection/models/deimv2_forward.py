"""DEIMv2's forward pass as the official code runs it, over transformers' modules.

transformers' ``Deimv2Model.forward`` and its D-FINE decoder loop differ from the official
``DEIMTransformer`` (Intellindust-AI-Lab/DEIMv2, engine/deim/deim_decoder.py) in ways no
config switch reaches, so this module replaces both and keeps every layer of the port:

* query selection reads the raw encoder memory (the port first passes it through an extra
  ``enc_output`` Linear+LayerNorm, which the official model does not have);
* the query positional embedding is computed once from the initial reference boxes and
  reused by every decoder layer (the port recomputes it from each layer's refined boxes);
* the outputs keep the official structure (main, per-layer ``aux_outputs`` each with its own
  corners, ``pre_outputs``, encoder proposals, denoising queries), which is what the official
  criterion supervises (``detstudy.tasks.detection.models.deimv2_criterion``);
* the denoising queries flip negative box sizes as the official code does.

Targets are the official ones: per image ``labels`` (0-based) and ``boxes`` (cxcywh, 0-1).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torchvision.ops import box_convert
from transformers.models.deimv2.modeling_deimv2 import distance2bbox, inverse_sigmoid, weighting_function

ANCHOR_GRID = 0.05  # the official anchor size at stride 8, doubled per level
ANCHOR_EPS = 1e-2   # anchors closer than this to the image border are invalid


def anchors_for(shapes: list[tuple[int, int]], device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder anchors (logit space, +inf where invalid) and their validity mask, official layout."""
    anchors = []
    for level, (height, width) in enumerate(shapes):
        grid_y, grid_x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        centres = (torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0) + 0.5) / torch.tensor([width, height], dtype=dtype)
        sizes = torch.ones_like(centres) * ANCHOR_GRID * (2.0 ** level)
        anchors.append(torch.cat([centres, sizes], dim=-1).reshape(-1, height * width, 4))
    anchors = torch.cat(anchors, dim=1).to(device)
    valid = ((anchors > ANCHOR_EPS) * (anchors < 1 - ANCHOR_EPS)).all(-1, keepdim=True)
    anchors = torch.log(anchors / (1 - anchors))
    return torch.where(valid, anchors, torch.inf), valid


def denoising_group(targets: list[dict[str, torch.Tensor]], num_classes: int, num_queries: int,
                    class_embed: torch.nn.Module, num_denoising: int, label_noise: float, box_noise: float):
    """Contrastive denoising queries (official ``get_contrastive_denoising_training_group``):
    the same random draws in the same order, and negative box sizes flipped positive, which
    the port omits. Returns (query content, box logits, attention mask [T, T] True = blocked,
    meta) or four ``None`` when the batch has no boxes."""
    counts = [len(t["labels"]) for t in targets]
    most = max(counts) if counts else 0
    if num_denoising <= 0 or most == 0:
        return None, None, None, None
    device = targets[0]["labels"].device
    groups = max(num_denoising // most, 1)
    batch = len(counts)
    classes = torch.full([batch, most], num_classes, dtype=torch.int32, device=device)
    boxes = torch.zeros([batch, most, 4], device=device)
    padded = torch.zeros([batch, most], dtype=torch.bool, device=device)
    for i, count in enumerate(counts):
        if count:
            classes[i, :count] = targets[i]["labels"]
            boxes[i, :count] = targets[i]["boxes"]
            padded[i, :count] = True
    classes = classes.tile([1, 2 * groups])
    boxes = boxes.tile([1, 2 * groups, 1])
    padded = padded.tile([1, 2 * groups])
    negative = torch.zeros([batch, most * 2, 1], device=device)
    negative[:, most:] = 1
    negative = negative.tile([1, groups, 1])
    positive_index = torch.nonzero((1 - negative).squeeze(-1) * padded)[:, 1]
    positive_index = torch.split(positive_index, [n * groups for n in counts])
    total = int(most * 2 * groups)
    if label_noise > 0:
        flip = torch.rand_like(classes, dtype=torch.float) < (label_noise * 0.5)
        new_label = torch.randint_like(flip, 0, num_classes, dtype=classes.dtype)
        classes = torch.where(flip & padded, new_label, classes)
    if box_noise > 0:
        corners = box_convert(boxes, "cxcywh", "xyxy")
        half = torch.tile(boxes[..., 2:] * 0.5, [1, 1, 2]) * box_noise
        sign = torch.randint_like(boxes, 0, 2) * 2.0 - 1.0
        part = torch.rand_like(boxes)
        part = (part + 1.0) * negative + part * (1 - negative)
        corners = (corners + sign * part * half).clip(min=0.0, max=1.0)
        boxes = box_convert(corners, "xyxy", "cxcywh")
        boxes[boxes < 0] *= -1
    box_logits = inverse_sigmoid(boxes)
    size = total + num_queries
    mask = torch.zeros([size, size], dtype=torch.bool, device=device)
    mask[total:, :total] = True  # matching queries cannot see the denoising ones
    for g in range(groups):  # denoising groups cannot see each other
        start, end = most * 2 * g, most * 2 * (g + 1)
        mask[start:end, end:total] = True
        mask[start:end, :start] = True
    meta = {"dn_positive_idx": positive_index, "dn_num_group": groups, "dn_num_split": [total, num_queries]}
    return class_embed(classes), box_logits, mask, meta


def _layer_outputs(logits, boxes, corners, refs, teacher_corners, teacher_logits) -> list[dict[str, torch.Tensor]]:
    return [{"pred_logits": a, "pred_boxes": b, "pred_corners": c, "ref_points": d,
             "teacher_corners": teacher_corners, "teacher_logits": teacher_logits}
            for a, b, c, d in zip(logits, boxes, corners, refs)]


def deimv2_forward(model, pixel_values: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None,
                   *, decoder_hook: Callable[[int, torch.Tensor], Any] | None = None) -> dict[str, Any]:
    """Run a transformers ``Deimv2ForObjectDetection`` the official way; returns the official
    output dict (``pred_logits``, ``pred_boxes`` and, in training, everything the criterion needs),
    plus ``last_hidden_state`` (the final queries) and ``query_index`` (each query's encoder
    position, [batch, queries])."""
    core, config = model.model, model.config
    decoder = core.decoder
    features = core.conv_encoder(pixel_values)
    maps = core.encoder(list(features)).feature_maps
    sources = [proj(feature) for proj, feature in zip(core.decoder_input_proj, maps)]
    shapes = [tuple(source.shape[-2:]) for source in sources]
    memory = torch.cat([source.flatten(2).transpose(1, 2) for source in sources], dim=1)
    spatial_shapes = torch.tensor(shapes, dtype=torch.long, device=memory.device)

    training = model.training
    dn_content = dn_boxes = attention_mask = dn_meta = None
    if training and config.num_denoising > 0 and targets is not None:
        dn_content, dn_boxes, attention_mask, dn_meta = denoising_group(
            targets, config.num_labels, config.num_queries, core.denoising_class_embed, config.num_denoising,
            config.label_noise_ratio, config.box_noise_scale)

    # query selection on the raw memory (the official model has no enc_output projection)
    anchors, valid = anchors_for(shapes, memory.device)
    anchors = anchors.repeat(memory.shape[0], 1, 1) if memory.shape[0] > 1 else anchors
    masked = valid.to(memory.dtype) * memory
    enc_logits = core.enc_score_head(masked)
    top = torch.topk(enc_logits.max(-1).values, config.num_queries, dim=-1).indices
    pick = lambda t: t.gather(1, top.unsqueeze(-1).repeat(1, 1, t.shape[-1]))  # noqa: E731
    top_memory = pick(masked)
    enc_box_logits = core.enc_bbox_head(top_memory) + pick(anchors)
    enc_outputs = [{"pred_logits": pick(enc_logits), "pred_boxes": enc_box_logits.sigmoid()}] if training else []
    content = top_memory.detach()
    ref_logits = enc_box_logits.detach()
    if dn_boxes is not None:
        ref_logits = torch.cat([dn_boxes, ref_logits], dim=1)
        content = torch.cat([dn_content, content], dim=1)

    # decoder (official TransformerDecoder.forward)
    eval_index = config.eval_idx if config.eval_idx >= 0 else config.decoder_layers + config.eval_idx
    project = weighting_function(config.max_num_bins, decoder.up, decoder.reg_scale)
    mask = None
    if attention_mask is not None:  # additive, for transformers' attention interface
        mask = torch.zeros(attention_mask.shape, dtype=memory.dtype, device=memory.device)
        mask = mask.masked_fill(attention_mask, float("-inf"))[None, None]
    ref_detach = ref_logits.sigmoid()
    query_pos = decoder.query_pos_head(ref_detach).clamp(min=-10, max=10)  # once, from the initial boxes
    output, output_detach, corners_undetach = content, 0, 0
    all_boxes, all_logits, all_corners, all_refs = [], [], [], []
    for i, layer in enumerate(decoder.layers):
        output = layer(output, position_embeddings=query_pos, reference_points=ref_detach.unsqueeze(2),
                       spatial_shapes=spatial_shapes, spatial_shapes_list=shapes,
                       encoder_hidden_states=memory, encoder_attention_mask=mask)
        if decoder_hook is not None:
            decoder_hook(i, output)
        if i == 0:
            pre_boxes = torch.sigmoid(decoder.pre_bbox_head(output) + inverse_sigmoid(ref_detach))
            pre_logits = decoder.class_embed[0](output)
            ref_initial = pre_boxes.detach()
        corners = decoder.bbox_embed[i](output + output_detach) + corners_undetach
        boxes = distance2bbox(ref_initial, decoder.integral(corners, project), decoder.reg_scale)
        if training or i == eval_index:
            logits = decoder.lqe_layers[i](decoder.class_embed[i](output), corners)
            all_logits.append(logits)
            all_boxes.append(boxes)
            all_corners.append(corners)
            all_refs.append(ref_initial)
            if not training:
                break
        corners_undetach = corners
        ref_detach = boxes.detach()
        output_detach = output.detach()

    out_boxes, out_logits = torch.stack(all_boxes), torch.stack(all_logits)
    out_corners, out_refs = torch.stack(all_corners), torch.stack(all_refs)
    if not training:
        return {"pred_logits": out_logits[-1], "pred_boxes": out_boxes[-1], "last_hidden_state": output,
                "query_index": top}
    if dn_meta is not None:
        split = dn_meta["dn_num_split"]
        dn_pre_logits, pre_logits = torch.split(pre_logits, split, dim=1)
        dn_pre_boxes, pre_boxes = torch.split(pre_boxes, split, dim=1)
        dn_logits, out_logits = torch.split(out_logits, split, dim=2)
        dn_boxes_out, out_boxes = torch.split(out_boxes, split, dim=2)
        dn_corners, out_corners = torch.split(out_corners, split, dim=2)
        dn_refs, out_refs = torch.split(out_refs, split, dim=2)
    result = {"pred_logits": out_logits[-1], "pred_boxes": out_boxes[-1], "pred_corners": out_corners[-1],
              "ref_points": out_refs[-1], "up": decoder.up, "reg_scale": decoder.reg_scale,
              "last_hidden_state": output, "query_index": top,
              "aux_outputs": _layer_outputs(out_logits[:-1], out_boxes[:-1], out_corners[:-1], out_refs[:-1],
                                            out_corners[-1], out_logits[-1]),
              "enc_aux_outputs": enc_outputs,
              "pre_outputs": {"pred_logits": pre_logits, "pred_boxes": pre_boxes}}
    if dn_meta is not None:
        result["dn_outputs"] = _layer_outputs(dn_logits, dn_boxes_out, dn_corners, dn_refs,
                                              dn_corners[-1], dn_logits[-1])
        result["dn_pre_outputs"] = {"pred_logits": dn_pre_logits, "pred_boxes": dn_pre_boxes}
        result["dn_meta"] = dn_meta
    return result
