"""Module replacements that turn transformers' DEIMv2 port into the official architecture, and
the official initialisation.

Each replacement restores one behaviour of the official code (Intellindust-AI-Lab/DEIMv2) that
the port hard-codes otherwise; the forward pass and the loss are replaced as a whole in
``deimv2_forward`` and ``deimv2_criterion``. Checked against the official model by
``benchmarks/deimv2_parity.py`` and ``tests/test_deimv2_parity.py``.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import init
from transformers.models.deimv2.modeling_deimv2 import (
    Deimv2Gate, Deimv2LQE, Deimv2MLP, Deimv2MultiscaleDeformableAttention, Deimv2SelfAttention, Deimv2SwiGLUFFN,
)

from detstudy.tasks.detection.models.deimv2_forward import deimv2_forward

CLASS_PRIOR = 0.01


def _prior_bias(probability: float) -> float:
    return float(-math.log((1 - probability) / probability))


def _silu_heads(model: nn.Module) -> list[Deimv2MLP]:
    """The box heads (encoder, pre-head, per layer, both tied copies) and the LQE MLPs."""
    core, decoder = model.model, model.model.decoder
    heads = [core.enc_bbox_head, decoder.pre_bbox_head, decoder.query_pos_head]
    heads += list(decoder.bbox_embed) + list(model.bbox_embed)
    heads += [lqe.reg_conf for lqe in decoder.lqe_layers]
    return heads


def _clamp_to_half_range(_module, args):
    return (args[0].clamp(min=-65504, max=65504), *args[1:])


def restore_official_architecture(model: nn.Module) -> nn.Module:
    """In place, on a ``Deimv2ForObjectDetection`` with a DINOv3 backbone."""
    backbone = model.model.conv_encoder.backbone
    # The official ViT-Tiny(+) has no final norm and no layer scale: transformers' backbone
    # always normalises its last stage (whatever apply_layernorm says), so the 1/32 tap differed.
    backbone.norm = nn.Identity()
    for layer in backbone.model.layer:
        layer.layer_scale1 = nn.Identity()
        layer.layer_scale2 = nn.Identity()
    backbone.embeddings.mask_token = None  # masked-image pretraining only; not in the official graph
    # Query selection reads the raw memory: the official model has no enc_output Linear+LayerNorm
    # (deimv2_forward does not call it; removing it keeps it out of the parameters and the optimiser).
    del model.model.enc_output
    # Official mlp_act / activation: SiLU in every box head, the query-position head and the LQE.
    for head in _silu_heads(model):
        head.act = nn.SiLU()
    # The official layer clamps its residual stream to the fp16 range before the last norm
    # (norm3(target.clamp(-65504, 65504))): an fp16 overflow stays finite instead of NaN.
    for layer in model.model.decoder.layers:
        layer.final_layer_norm.register_forward_pre_hook(_clamp_to_half_range)
    # model(pixel_values, targets) runs the official forward (the port's forward is not this model)
    model.forward = functools.partial(deimv2_forward, model)
    return model


def _reset_default(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.BatchNorm2d, nn.LayerNorm)):
        module.reset_parameters()


def _fused_xavier(linears: list[nn.Linear]) -> None:
    """xavier_uniform_ over the official fused projection (MHA in_proj, SwiGLU w12) that
    transformers splits into ``linears``: the bound uses the fused fan-out."""
    fan_in = linears[0].in_features
    fan_out = sum(linear.out_features for linear in linears)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    for linear in linears:
        init.uniform_(linear.weight, -bound, bound)
        if linear.bias is not None:
            init.zeros_(linear.bias)


def _deformable_init(attention: Deimv2MultiscaleDeformableAttention) -> None:
    init.constant_(attention.sampling_offsets.weight, 0)
    heads = attention.n_heads
    thetas = torch.arange(heads, dtype=torch.float32) * (2.0 * math.pi / heads)
    grid = torch.stack([thetas.cos(), thetas.sin()], -1)
    grid = grid / grid.abs().max(-1, keepdim=True).values
    grid = grid.reshape(heads, 1, 2).tile([1, sum(attention.num_points_list), 1])
    grid *= torch.cat([torch.arange(1, n + 1) for n in attention.num_points_list]).reshape(1, -1, 1)
    with torch.no_grad():
        attention.sampling_offsets.bias.copy_(grid.flatten())
    init.constant_(attention.attention_weights.weight, 0)
    init.constant_(attention.attention_weights.bias, 0)


@torch.no_grad()
def official_init(model: nn.Module) -> None:
    """Re-initialise everything outside the ViT as the official code does (PyTorch defaults,
    then DEIMTransformer._reset_parameters and the per-module resets); the port instead draws
    every Linear/Conv from N(0, 0.01). The ViT gets the official ViT init (truncated normal 0.02
    for linears and the class token), which pretrained DINOv3 weights then replace."""
    core, decoder = model.model, model.model.decoder
    backbone = core.conv_encoder.backbone
    for module in backbone.modules():
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.Conv2d)):
            module.reset_parameters()
    init.trunc_normal_(backbone.embeddings.cls_token, std=0.02, a=-2.0, b=2.0)
    backbone_modules = set(backbone.modules())
    for module in model.modules():
        if module not in backbone_modules:
            _reset_default(module)
    for module in model.modules():
        if isinstance(module, Deimv2SelfAttention):  # nn.MultiheadAttention's own reset
            _fused_xavier([module.q_proj, module.k_proj, module.v_proj])
            init.zeros_(module.o_proj.bias)
        elif isinstance(module, Deimv2SwiGLUFFN):
            _fused_xavier([module.gate_proj, module.up_proj])
            init.xavier_uniform_(module.down_proj.weight)
            init.zeros_(module.down_proj.bias)
        elif isinstance(module, Deimv2Gate):
            init.constant_(module.gate.weight, 0)
            init.constant_(module.gate.bias, _prior_bias(0.5))
        elif isinstance(module, Deimv2MultiscaleDeformableAttention):
            _deformable_init(module)
        elif isinstance(module, Deimv2LQE):
            init.constant_(module.reg_conf.layers[-1].weight, 0)
            init.constant_(module.reg_conf.layers[-1].bias, 0)
    for norm in [m for m in model.modules() if type(m).__name__ == "Deimv2RMSNorm"]:
        init.ones_(norm.weight)
    bias = _prior_bias(CLASS_PRIOR)
    init.constant_(core.enc_score_head.bias, bias)
    for head in (core.enc_bbox_head, decoder.pre_bbox_head, *decoder.bbox_embed):
        init.constant_(head.layers[-1].weight, 0)
        init.constant_(head.layers[-1].bias, 0)
    for head in decoder.class_embed:
        init.constant_(head.bias, bias)
    for layer in decoder.query_pos_head.layers:
        init.xavier_uniform_(layer.weight)
    if hasattr(core, "denoising_class_embed"):
        embed = core.denoising_class_embed
        init.normal_(embed.weight[:-1])
        init.zeros_(embed.weight[-1])
    _share_initial_copies(core)


def _share_initial_copies(core: nn.Module) -> None:
    """The official code builds one prototype and deep-copies it: every decoder layer, class
    head and box head starts as the same weights, as do the two lateral convs, the two
    downsampling convs and all four fusion blocks of the encoder (top-down and bottom-up).
    The LQEs are built one by one and stay independent."""
    encoder, decoder = core.encoder, core.decoder
    for first, *copies in ([*encoder.fpn_blocks, *encoder.pan_blocks], list(encoder.lateral_convs),
                           list(encoder.downsample_convs), list(decoder.layers), list(decoder.class_embed),
                           list(decoder.bbox_embed)):
        for module in copies:
            module.load_state_dict(first.state_dict())
