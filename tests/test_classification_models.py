"""The classification families: logits for any class count, the published sizes, and the
fine-tuning choices (full, head, last n blocks)."""

from __future__ import annotations

import pytest
import torch

from detstudy.study.architectures import CLASSIFICATION_VARIANTS
from detstudy.tasks.classification.models import PREPROCESSING, build_classifier, parameter_count

DEMOS = ["resnet_demo", "mobilevit_demo", "dinov3_demo"]


@pytest.mark.parametrize("architecture", DEMOS)
def test_logits_for_the_classes(architecture):
    model = build_classifier(architecture, 6).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 6)
    assert model.family in PREPROCESSING


def test_the_full_models_have_their_published_sizes():
    """With 1000 classes: ResNet-18 11.7 M, ResNet-50 25.6 M (torchvision), MobileViT-S 5.6 M
    (its paper; 4.94 M with the seed study's 10 classes), DINOv3 ViT-S/16 21.6 M (its backbone 21 M)."""
    sizes = {name: parameter_count(build_classifier(name, 1000)) / 1e6
             for name in ("resnet18", "resnet50", "mobilevit_s")}
    assert sizes["resnet18"] == pytest.approx(11.69, abs=0.01)
    assert sizes["resnet50"] == pytest.approx(25.56, abs=0.01)
    assert sizes["mobilevit_s"] == pytest.approx(5.58, abs=0.03)
    assert parameter_count(build_classifier("mobilevit_s", 10)) / 1e6 == pytest.approx(4.94, abs=0.01)
    vit = build_classifier("dinov3_vits16", 10)
    assert parameter_count(vit.network.backbone) / 1e6 == pytest.approx(21.6, abs=0.1)


@pytest.mark.parametrize("architecture", DEMOS)
def test_fine_tuning_trains_the_head_or_the_last_blocks(architecture):
    model = build_classifier(architecture, 6, fine_tune="head")
    assert {id(p) for p in model.parameters() if p.requires_grad} == {id(p) for p in model.head().parameters()}
    last = build_classifier(architecture, 6, fine_tune="last_1")
    count = sum(p.numel() for p in last.parameters() if p.requires_grad)
    assert count == sum(p.numel() for p in last.head().parameters()) + sum(p.numel() for p in last.blocks()[-1].parameters())
    with pytest.raises(ValueError, match="last_99.*at most"):
        build_classifier(architecture, 6, fine_tune="last_99")
    with pytest.raises(ValueError, match="full, head or last_<n>"):
        build_classifier(architecture, 6, fine_tune="some")


def test_every_variant_is_a_family_of_the_grid():
    assert {v["family"] for v in CLASSIFICATION_VARIANTS.values()} == {"cnn", "hybrid", "vit"}
