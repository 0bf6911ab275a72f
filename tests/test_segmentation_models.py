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


def _save(state: dict, path) -> str:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return str(path)


@pytest.mark.parametrize("features_only", [True, False], ids=["timm-features", "timm-classifier"])
def test_a_maxvit_checkpoint_at_its_own_size_loads_at_another_resolution(tmp_path, features_only):
    """timm's MaxViT as published (built at the name's 224 px, features-only as the hub loader
    gives it, or the whole classifier with its head): names matched through the wrappers'
    prefixes, attention bias tables resized to the 64-px model's windows by timm's own rule."""
    import timm
    from timm.layers import resize_rel_pos_bias_table

    from detstudy.tasks.segmentation.models import MAXVIT_TIMM_NAME

    torch.manual_seed(3)
    sizes = {"embed_dim": (32, 32, 64, 64), "depths": (1, 1, 1, 1), "stem_width": 16}
    extra = {"features_only": True, "out_indices": (1, 2, 3, 4)} if features_only else {}
    published = timm.create_model(MAXVIT_TIMM_NAME, pretrained=False, **sizes, **extra)
    state = published.state_dict()
    stage = "stages_0" if features_only else "stages.0"
    table = f"{stage}.blocks.0.attn_block.attn.rel_pos.relative_position_bias_table"
    assert state[table].shape[-1] == 13  # (2 x 7 - 1): the 224-px windows
    model = build_segmenter("upernet_maxvit_demo", 5, 64, weights=_save(state, tmp_path / "maxvit.safetensors"))
    loaded = model.encoder.state_dict()
    assert torch.equal(loaded["_backbone.stem.conv1.weight"], state["stem.conv1.weight"])
    assert torch.equal(loaded[f"_backbone.{stage.replace('.', '_')}.blocks.0.attn_block.attn.qkv.weight"],
                       state[f"{stage}.blocks.0.attn_block.attn.qkv.weight"])
    resized = loaded["_backbone.stages_0.blocks.0.attn_block.attn.rel_pos.relative_position_bias_table"]
    assert resized.shape[-1] == 3  # (2 x 2 - 1): 64 px / 32 = windows of 2
    assert torch.equal(resized, resize_rel_pos_bias_table(state[table], new_window_size=(2, 2),
                                                          new_bias_shape=resized.shape))


def test_an_imagenet_convnext_loads_and_its_missing_output_norms_keep_their_start(tmp_path):
    """transformers' ConvNeXt as published: the backbone (output norm of stage 4 only) or the
    whole classifier (``convnext.`` names, no output norms); the other weights all taken."""
    from transformers import ConvNextConfig, ConvNextForImageClassification
    from transformers import ConvNextBackbone

    torch.manual_seed(4)
    config = ConvNextConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128])
    for published in (ConvNextBackbone(config), ConvNextForImageClassification(config)):
        state = published.state_dict()
        model = build_segmenter("upernet_convnext_demo", 5, 64, weights=_save(state, tmp_path / "convnext.safetensors"))
        loaded = model.encoder.state_dict()
        prefix = "convnext." if "convnext.embeddings.patch_embeddings.weight" in state else ""
        taken = [k for k in loaded if f"{prefix}{k}" in state]
        assert len(taken) >= len(loaded) - 8 and all(torch.equal(loaded[k], state[f"{prefix}{k}"]) for k in taken)
        for key in set(loaded) - set(taken):  # output norms the checkpoint does not have
            assert key.startswith("hidden_states_norms.")
            assert torch.equal(loaded[key], torch.ones_like(loaded[key]) if key.endswith("weight")
                               else torch.zeros_like(loaded[key])), key


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
