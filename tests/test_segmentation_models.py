"""The segmentation families: built from configs (offline), logits at the input size, encoder
weights loaded loudly from a file, refused when they do not fit."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from detstudy.study.architectures import SEGMENTATION_VARIANTS
from detstudy.tasks.segmentation.models import build_segmenter, parameter_count

DEMOS = ["upernet_convnext_demo", "upernet_maxvit_demo", "segformer_demo"]


@pytest.mark.parametrize("architecture", DEMOS)
def test_logits_at_the_input_size(architecture):
    torch.manual_seed(0)
    model = build_segmenter(architecture, 7, 64).eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 7, 64, 64)
    assert model.settings == {"num_classes": 7, "resolution": 64, "drop_path_rate": 0.0}


def test_the_full_models_have_their_published_sizes():
    """UPerNet-ConvNeXt-T 60 M (ConvNeXt paper, ADE20K), MaxViT-T encoder 31 M (with its
    classifier), SegFormer-B3 47.3 M (SegFormer paper)."""
    sizes = {name: parameter_count(build_segmenter(name, 150, 512)) / 1e6
             for name in ("upernet_convnext_tiny", "segformer_b3")}
    assert sizes["upernet_convnext_tiny"] == pytest.approx(60, abs=1.0)
    assert sizes["segformer_b3"] == pytest.approx(47.3, abs=0.3)
    maxvit = build_segmenter("upernet_maxvit_tiny", 150, 384)
    assert parameter_count(maxvit.encoder) / 1e6 == pytest.approx(30.9, abs=1.0)


def test_maxvit_windows_follow_the_resolution():
    model = build_segmenter("upernet_maxvit_demo", 3, 96).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 96, 96)).shape == (1, 3, 96, 96)
    with pytest.raises(ValueError, match="resolution 100 is not a multiple of 32.*Fix: use e.g. 96"):
        build_segmenter("upernet_maxvit_demo", 3, 100)


@pytest.mark.parametrize("architecture", DEMOS)
def test_encoder_weights_load_from_a_file(tmp_path, architecture):
    torch.manual_seed(1)
    source = build_segmenter(architecture, 5, 64)
    path = tmp_path / "encoder.safetensors"
    save_file({f"backbone.{k}": v.contiguous() for k, v in source.encoder.state_dict().items()}, str(path))
    torch.manual_seed(2)
    loaded = build_segmenter(architecture, 5, 64, weights=str(path))
    for key, value in source.encoder.state_dict().items():
        assert torch.equal(loaded.encoder.state_dict()[key], value), key


def test_encoder_weights_of_another_model_are_refused(tmp_path):
    path = tmp_path / "segformer.pt"
    torch.save(build_segmenter("segformer_demo", 5, 64).encoder.state_dict(), path)
    with pytest.raises(ValueError, match=r"do not fit upernet_convnext_demo: \d+ encoder weights missing"):
        build_segmenter("upernet_convnext_demo", 5, 64, weights=str(path))


def test_a_hub_id_not_in_the_cache_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="(?s)nvidia/mit-b3.*neither a local file nor a hub id.*Fix"):
        build_segmenter("segformer_demo", 5, 64, weights="nvidia/mit-b3")


def test_every_variant_is_a_family_of_the_grid():
    assert {v["family"] for v in SEGMENTATION_VARIANTS.values()} == {"cnn", "hybrid", "vit"}
