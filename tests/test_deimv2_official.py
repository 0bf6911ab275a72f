"""Each override that turns transformers' DEIMv2 port into the official model, on its own."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from detstudy.tasks.detection.models.deimv2 import _loss_group, build_deimv2
from detstudy.tasks.detection.models.deimv2_forward import anchors_for, deimv2_forward, denoising_group


@pytest.fixture(scope="module")
def demo():
    torch.manual_seed(0)
    return build_deimv2("deimv2_demo", 6, 128, num_queries=50, num_denoising=10).model


def test_the_last_backbone_tap_is_not_normalised(demo):
    """transformers' DINOv3 backbone normalises its last stage whatever apply_layernorm says;
    the official ViT-Tiny returns the raw block output."""
    backbone = demo.model.conv_encoder.backbone.eval()
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        output = backbone(pixels, output_hidden_states=True)
    raw = output.hidden_states[-1][:, 1:].transpose(1, 2).reshape(1, -1, 4, 4)
    assert torch.equal(output.feature_maps[-1], raw)
    assert isinstance(backbone.norm, nn.Identity)
    assert all(isinstance(layer.layer_scale1, nn.Identity) for layer in backbone.model.layer)


def test_no_enc_output_projection_and_silu_heads(demo):
    assert not hasattr(demo.model, "enc_output")
    decoder = demo.model.decoder
    heads = [demo.model.enc_bbox_head, decoder.pre_bbox_head, decoder.query_pos_head, *decoder.bbox_embed,
             *[lqe.reg_conf for lqe in decoder.lqe_layers]]
    assert all(isinstance(head.act, nn.SiLU) for head in heads)
    assert decoder.layers[0].encoder_attn.num_points_list == [3, 6, 3]


def test_query_positions_are_computed_once_from_the_initial_boxes(demo):
    calls = []
    handle = demo.model.decoder.query_pos_head.register_forward_hook(lambda m, i, o: calls.append(i[0].clone()))
    demo.train()
    try:
        targets = [{"labels": torch.tensor([1, 2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.3, 0.6, 0.1, 0.1]])}]
        deimv2_forward(demo, torch.randn(1, 3, 128, 128), targets)
    finally:
        handle.remove()
    assert len(calls) == 1  # the port ran it once per decoder layer, on each layer's refined boxes


def test_official_initialisation(demo):
    core, decoder = demo.model, demo.model.decoder
    prior = -math.log((1 - 0.01) / 0.01)
    assert torch.allclose(core.enc_score_head.bias, torch.full_like(core.enc_score_head.bias, prior))
    assert all(torch.allclose(h.bias, torch.full_like(h.bias, prior)) for h in decoder.class_embed)
    for head in (core.enc_bbox_head, decoder.pre_bbox_head, *decoder.bbox_embed):
        assert not head.layers[-1].weight.any() and not head.layers[-1].bias.any()
    attention = decoder.layers[0].self_attn
    d = attention.q_proj.in_features
    bound = math.sqrt(6.0 / (d + 3 * d))  # xavier over nn.MultiheadAttention's fused in_proj
    weights = torch.cat([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight])
    assert weights.abs().max() <= bound and weights.abs().max() > 0.9 * bound
    gate = decoder.layers[0].gateway.gate
    assert not gate.weight.any() and not gate.bias.any()  # prior 0.5 -> bias 0
    offsets = decoder.layers[0].encoder_attn.sampling_offsets
    assert not offsets.weight.any() and offsets.bias.abs().max() == 6  # grid init, up to 6 points per level
    # PyTorch's default Linear init (kaiming uniform a=sqrt(5): bound 1/sqrt(fan_in)), not N(0, 0.01)
    fc = core.enc_score_head.weight
    assert fc.abs().max() <= 1 / math.sqrt(fc.shape[1]) and fc.std() > 0.5 / math.sqrt(3 * fc.shape[1])


def test_deep_copied_modules_start_identical_as_official():
    """The official code deep-copies one prototype decoder layer, class head, box head, lateral
    conv, downsampling conv and fusion block; the LQEs are built one by one."""
    fresh = build_deimv2("deimv2_demo", 6, 128, num_queries=50, num_denoising=10).model  # untrained norms
    encoder, decoder = fresh.model.encoder, fresh.model.decoder

    def same(modules):
        first = modules[0].state_dict()
        return all(torch.equal(first[k], v) for m in modules[1:] for k, v in m.state_dict().items())

    assert same(list(decoder.layers)) and same(list(decoder.class_embed)) and same(list(decoder.bbox_embed))
    assert same([*encoder.fpn_blocks, *encoder.pan_blocks])
    assert same(list(encoder.lateral_convs)) and same(list(encoder.downsample_convs))
    assert decoder.layers[0].mlp.up_proj.weight.std() > 0  # drawn, not zeroed
    lqe = [layer.reg_conf.layers[0].weight for layer in decoder.lqe_layers]
    assert not torch.equal(lqe[0], lqe[1])


def test_denoising_boxes_keep_positive_sizes():
    """The official code flips negative widths/heights the noise can produce; the port does not
    (a negative size becomes sigmoid(inverse_sigmoid(<0)) = 1e-5)."""
    torch.manual_seed(3)
    targets = [{"labels": torch.tensor([0, 1, 2]),  # away from the borders: no size is clipped to 0
                "boxes": torch.tensor([[0.5, 0.5, 0.3, 0.3], [0.3, 0.3, 0.2, 0.2], [0.7, 0.6, 0.15, 0.3]])}]
    embed = nn.Embedding(7, 8, padding_idx=6)
    _, box_logits, mask, meta = denoising_group(targets, 6, 20, embed, 30, 0.5, 1.0)
    sizes = box_logits.sigmoid()[..., 2:]
    assert (sizes > 1e-3).all(), sizes.min()
    assert meta["dn_num_group"] == 10 and mask.shape == (80, 80)
    assert mask[60:, :60].all() and not mask[:6, :6].any() and mask[:6, 6:60].all()


def test_a_batch_with_an_image_without_boxes_trains(demo):
    from detstudy.tasks.detection.models.deimv2_criterion import Deimv2Criterion

    demo.train()
    targets = [{"labels": torch.tensor([1, 2]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.3], [0.3, 0.6, 0.1, 0.1]])},
               {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}]
    outputs = deimv2_forward(demo, torch.randn(2, 3, 128, 128), targets)
    losses = Deimv2Criterion(6)(outputs, targets)
    assert all(torch.isfinite(v) for v in losses.values()) and "loss_mal_dn_0" in losses


def test_the_decoder_clamps_before_its_last_norm_as_official(demo):
    layer = demo.model.decoder.layers[0]
    seen = []
    handle = layer.final_layer_norm.register_forward_hook(lambda m, i, o: seen.append(i[0].abs().max()))
    try:
        layer.final_layer_norm(torch.full((1, 2, 96), 1e6))
    finally:
        handle.remove()
    assert seen[0] <= 65504


def test_anchors_are_the_official_ones():
    anchors, valid = anchors_for([(2, 2)], "cpu")
    expected = torch.tensor([[0.25, 0.25, 0.05, 0.05], [0.75, 0.25, 0.05, 0.05],
                             [0.25, 0.75, 0.05, 0.05], [0.75, 0.75, 0.05, 0.05]])
    assert torch.allclose(anchors[0].sigmoid(), expected) and valid.all()


def test_every_loss_term_is_grouped_into_one_history_column():
    assert _loss_group("loss_mal_aux_2") == "loss_mal"
    assert _loss_group("loss_fgl_dn_pre") == "loss_fgl"
    assert _loss_group("loss_giou_enc_0") == "loss_giou"
    assert _loss_group("loss_bbox") == "loss_bbox"


def test_losses_reach_every_decoder_layer(demo):
    """A gradient from the loss reaches every decoder layer's class and box heads (the port
    left one decoder layer without a matched classification loss)."""
    from detstudy.tasks.detection.models import build_detector

    torch.manual_seed(0)
    adapter = build_detector("deimv2_demo", 6, 128, {"num_queries": 50, "num_denoising": 10})
    adapter.model.train()
    images = [torch.rand(3, 96, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 10.0, 60.0, 50.0]]), "labels": torch.tensor([2])}]
    losses = adapter.losses(images, targets)
    # no DDF yet: the box heads start at zero, so every layer's corners equal the teacher's (as official)
    assert set(losses) == {"loss_mal", "loss_bbox", "loss_giou", "loss_fgl"}
    sum(losses.values()).backward()
    for i, head in enumerate(adapter.model.model.decoder.class_embed):
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0, i


def test_multiscale_training_sizes_follow_the_official_schedule():
    import random

    from detstudy.tasks.detection.models import build_detector
    from detstudy.tasks.detection.models.deimv2 import multiscale_sizes

    assert multiscale_sizes(640, 20) == [480, 512, 544, 576, 608] + [640] * 20 + [800, 768, 736, 704, 672]
    adapter = build_detector("deimv2_demo", 6, 128, {"num_queries": 20, "multiscale_repeat": 2,
                                                     "multiscale_stop_epoch": 3})
    random.seed(0)
    adapter.set_epoch(2)
    assert {adapter.training_size() for _ in range(200)} == {96, 128, 160}
    adapter.set_epoch(3)
    assert {adapter.training_size() for _ in range(20)} == {128}
    assert build_detector("deimv2_demo", 6, 128, {"num_queries": 20}).training_size() == 128


def test_inputs_are_resized_with_antialiasing():
    from detstudy.tasks.detection.models import build_detector

    adapter = build_detector("deimv2_demo", 6, 64, {"num_queries": 20})
    stripes = torch.zeros(3, 256, 256)
    stripes[:, :, ::2] = 1.0  # one-pixel stripes: a 4x antialiased reduction averages them to grey
    pixels = adapter._pixels([stripes])
    grey = adapter._pixels([torch.full((3, 256, 256), 0.5)])
    assert torch.allclose(pixels[..., 1:-1], grey[..., 1:-1], atol=1e-4)  # away from the border columns


def test_weight_decay_follows_the_official_parameter_groups():
    """The official S config's no-decay groups, applied to the official key list (the parity
    fixture): the 1-D parameters they leave in the decayed default group (the STA's batch-norm
    weights and the fusion norms) are exactly the ones this model decays."""
    import re
    from pathlib import Path

    shapes = torch.load(Path(__file__).parent / "fixtures" / "deimv2_parity.pt",
                        weights_only=True)["variants"]["s"]["shapes"]
    no_decay = [r"^(?=.*.dinov3)(?=.*(?:norm|bn|bias)).*$", r"^(?=.*(?:sta|encoder|decoder))(?=.*(?:norm|bn|bias)).*$"]
    untrained = re.compile(r"(running_mean|running_var|num_batches_tracked|rope_embed\.periods|\.up|\.reg_scale|"
                           r"num_points_scale)$")  # buffers and frozen constants of the official model
    official = sorted(shape[0] for key, shape in shapes.items() if len(shape) == 1 and not untrained.search(key)
                      and not any(re.match(pattern, key) for pattern in no_decay))
    adapter = build_deimv2("deimv2_s", 80, 640)
    ours = sorted(p.numel() for n, p in adapter.model.named_parameters()
                  if p.requires_grad and p.ndim == 1 and adapter.decays(n, p))
    assert ours == official and len(ours) == 10
