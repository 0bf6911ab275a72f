"""The ViT attention figures draw what the model did: the sampling points are the ones its
kernel passed to ``grid_sample``, the weights the ones it multiplied by, the detections those
``predict`` returns, the backbone map the class token's row of the eager attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detstudy.tasks.detection.attention_plots import plot_backbone_attention, plot_decoder_sampling
from detstudy.tasks.detection.models.deimv2 import build_deimv2
from detstudy.tasks.detection.models.deimv2_attention import where_deimv2_looks

CLASSES = ["crack", "stain", "scratch"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    adapter = build_deimv2("deimv2_demo", len(CLASSES), 96, num_queries=30)
    layer = adapter.model.model.decoder.layers[-1].encoder_attn
    with torch.no_grad():  # hand-set attention weights: softmax of a known bias, whatever the query
        layer.attention_weights.weight.zero_()
        layer.attention_weights.bias.copy_(torch.linspace(-1.0, 1.0, layer.attention_weights.bias.numel()))
    return adapter


def test_the_points_are_where_the_kernel_sampled(model, monkeypatch):
    image = torch.rand(3, 80, 120)
    grids = []
    original = torch.nn.functional.grid_sample

    def recording(values, grid, *args, **kwargs):
        grids.append(grid.detach().clone())
        return original(values, grid, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "grid_sample", recording)
    looks = where_deimv2_looks(model, image, top_k=3)
    monkeypatch.undo()
    layer = model.model.model.decoder.layers[-1].encoder_attn
    last = grids[-len(layer.num_points_list):]  # the prediction layer's levels, in order
    heads = layer.n_heads
    for detection in looks.detections:
        start = 0
        for level, grid in enumerate(last):  # [heads, queries, points of the level, 2] in -1..1
            count = layer.num_points_list[level]
            sampled = (grid[:heads, detection.query] + 1) / 2 * torch.tensor([120.0, 80.0])
            assert torch.allclose(detection.points[:, start:start + count], sampled, atol=1e-4)
            assert (detection.levels[start:start + count] == level).all()
            start += count
    expected = torch.softmax(layer.attention_weights.bias.view(heads, -1), dim=-1)
    for detection in looks.detections:
        assert torch.allclose(detection.weights, expected, atol=1e-6)


def test_the_detections_are_predicts(model):
    image = torch.rand(3, 80, 120)
    looks = where_deimv2_looks(model, image, top_k=4)
    predicted = model.predict([image])[0]
    assert [d.score for d in looks.detections] == pytest.approx(predicted["scores"][:4].tolist(), abs=1e-5)
    for detection, box in zip(looks.detections, predicted["boxes"][:4]):
        assert detection.box == pytest.approx(box.tolist(), abs=0.05)
    assert looks.patch_grid == (6, 6) and looks.backbone.shape == (3, 6, 6)
    row = looks.backbone.sum(dim=(1, 2))  # the class token's attention to the patches, per head
    assert (row > 0).all() and (row < 1).all()  # the rest goes to the class token itself


def test_the_figures_draw_those_points(model, tmp_path):
    image = torch.rand(3, 80, 120)
    looks = where_deimv2_looks(model, image, top_k=2)
    picture = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    figure = plot_decoder_sampling([picture], [looks], CLASSES, tmp_path / "decoder.png")
    for ax, detection in zip(figure.axes, looks.detections):
        drawn = ax.collections[0].get_offsets()
        assert np.allclose(np.asarray(drawn), detection.points.reshape(-1, 2).numpy())
        sizes = ax.collections[0].get_sizes()
        assert np.allclose(sizes, 4 + 400 * detection.weights.reshape(-1).numpy())
        assert ax.get_title().startswith(CLASSES[detection.label])
    backbone = plot_backbone_attention([picture], [looks], tmp_path / "backbone.png")
    assert len(backbone.axes) == 2 + looks.backbone.shape[0]
    assert (tmp_path / "decoder.png").stat().st_size > 0 and (tmp_path / "backbone.png").stat().st_size > 0


def test_a_text_fused_run_shows_each_detections_similarity_to_the_descriptions(tmp_path):
    from detstudy.tasks.detection.multimodal.fusion import attach_text_fusion

    torch.manual_seed(1)
    adapter = build_deimv2("deimv2_demo", len(CLASSES), 96, num_queries=30)
    attach_text_fusion(adapter.model, torch.randn(len(CLASSES), 16), 0.07)
    image = torch.rand(3, 96, 96)
    looks = where_deimv2_looks(adapter, image, top_k=3)
    _, similarity = adapter.query_text_similarity([image])[0]
    for detection in looks.detections:
        assert detection.text_similarity == pytest.approx(similarity[detection.query].tolist(), abs=1e-5)
    picture = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    figure = plot_decoder_sampling([picture], [looks], CLASSES, tmp_path / "decoder.png")
    bars = figure.axes[3]  # the second row: the first detection's similarities
    assert [round(p.get_width(), 5) for p in bars.patches] == [round(v, 5) for v in looks.detections[0].text_similarity]
