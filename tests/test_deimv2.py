"""DEIMv2 (DINOv3 backbone) variants: sizes, conventions, checkpoints and transformers weights."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from detstudy.tasks.detection.checkpoint import load_checkpoint, save_checkpoint
from detstudy.tasks.detection.data.coco import CategoryMap, SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.tasks.detection.evaluation.inference import predict_dataset
from detstudy.tasks.detection.models import build_detector
from detstudy.study.architectures import family_of
from detstudy.tasks.detection.models.deimv2 import deimv2_config
from detstudy.steps.train import train


def test_official_architecture_settings():
    s, m = deimv2_config("deimv2_s", 6), deimv2_config("deimv2_m", 6)
    assert (s.backbone_config.hidden_size, s.backbone_config.num_attention_heads, s.encoder_hidden_dim) == (192, 3, 192)
    assert (m.backbone_config.hidden_size, m.backbone_config.num_attention_heads, m.encoder_hidden_dim) == (256, 4, 256)
    for config in (s, m):
        assert config.backbone_config.out_indices == [4, 8, 12]  # after blocks 3, 7 and 11
        assert (config.decoder_layers, config.decoder_ffn_dim, config.num_queries, config.num_denoising) == (4, 512, 300, 100)
        assert config.spatial_tuning_adapter_inplanes == 16 and config.focal_loss_gamma == 1.5
    assert (s.depth_mult, s.hidden_expansion, m.hidden_expansion) == (0.67, 0.34, 0.67)
    assert family_of("deimv2_s") == "vit"


def test_resolution_is_checked():
    with pytest.raises(ValueError, match="multiple of 32"):
        build_detector("deimv2_demo", 3, 200)
    with pytest.raises(ValueError, match="fewer than the 300 queries"):
        build_detector("deimv2_demo", 3, 96)


def test_demo_trains_and_predicts_in_original_pixels():
    torch.manual_seed(0)
    adapter = build_detector("deimv2_demo", 6, 128)
    adapter.model.train()
    losses = adapter.losses([torch.rand(3, 50, 70)], [{"boxes": torch.tensor([[5.0, 5, 30, 25]]),
                                                       "labels": torch.tensor([4])}])
    assert {"loss_mal", "loss_bbox", "loss_giou"} <= set(losses)
    sum(losses.values()).backward()
    adapter.model.eval()
    (prediction,) = adapter.predict([torch.rand(3, 50, 70)])
    assert prediction["boxes"].shape == (100, 4) and prediction["scores"].shape == (100,)
    assert (prediction["boxes"][:, 2] <= 70).all() and (prediction["boxes"][:, 3] <= 50).all()
    assert (prediction["labels"] >= 0).all() and (prediction["labels"] < 6).all()


@pytest.mark.kernel_sensitive
def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    adapter = build_detector("deimv2_demo", 2, 128)
    save_checkpoint(tmp_path / "best.pt", adapter, CategoryMap((1, 2), ("a", "b")))
    loaded, _, _ = load_checkpoint(tmp_path / "best.pt")
    adapter.model.eval()
    image = [torch.rand(3, 64, 64)]
    assert torch.allclose(adapter.predict(image)[0]["scores"], loaded.predict(image)[0]["scores"])


def official_layout(backbone, prefix="_model."):
    """A transformers DINOv3 backbone's weights written back in the official ViT-Tiny key layout."""
    own = backbone.state_dict()
    state = {f"{prefix}patch_embed.proj.weight": own["embeddings.patch_embeddings.weight"],
             f"{prefix}patch_embed.proj.bias": own["embeddings.patch_embeddings.bias"],
             f"{prefix}cls_token": own["embeddings.cls_token"]}
    blocks = {int(k.split(".")[2]) for k in own if k.startswith("model.layer.")}
    for i in sorted(blocks):
        layer = f"model.layer.{i}."
        for kind in ("weight", "bias"):
            state[f"{prefix}blocks.{i}.attn.qkv.{kind}"] = torch.cat(
                [own[f"{layer}attention.{p}_proj.{kind}"] for p in "qkv"])
            state[f"{prefix}blocks.{i}.attn.proj.{kind}"] = own[f"{layer}attention.o_proj.{kind}"]
            state[f"{prefix}blocks.{i}.mlp.fc1.{kind}"] = own[f"{layer}mlp.up_proj.{kind}"]
            state[f"{prefix}blocks.{i}.mlp.fc2.{kind}"] = own[f"{layer}mlp.down_proj.{kind}"]
            for norm in ("norm1", "norm2"):
                state[f"{prefix}blocks.{i}.{norm}.{kind}"] = own[f"{layer}{norm}.{kind}"]
    head_dim = own["embeddings.cls_token"].shape[-1] // 3
    state[f"{prefix}rope_embed.periods"] = 100.0 ** (2 * torch.arange(head_dim // 4) / (head_dim // 2))
    return state


def backbone_of(adapter):
    return adapter.model.model.conv_encoder.backbone


def test_official_dinov3_backbone_file_loads_through_the_key_mapping(tmp_path):
    torch.manual_seed(1)
    source = backbone_of(build_detector("deimv2_demo", 6, 128))
    torch.save(official_layout(source), tmp_path / "vit_distill.pt")
    torch.manual_seed(2)
    adapter = build_detector("deimv2_demo", 6, 128, {"backbone_weights": str(tmp_path / "vit_distill.pt")})
    loaded = backbone_of(adapter).state_dict()
    for key, value in source.state_dict().items():
        if "mask_token" not in key:
            assert torch.equal(loaded[key], value), key


def test_a_file_in_the_official_key_list_loads_into_the_s_backbone(tmp_path):
    """The file is written from the official model's own key list and shapes (the parity
    fixture, written by the official code), not from this project's mapping: every official key
    must be consumed, every backbone weight filled, and the tensors land where the official
    ViT uses them (the fused qkv split into q, k, v; fc1/fc2 as the MLP; the patch embedding)."""
    from pathlib import Path

    shapes = torch.load(Path(__file__).parent / "fixtures" / "deimv2_parity.pt",
                        weights_only=True)["variants"]["s"]["shapes"]
    prefix = "backbone.dinov3._model."
    generator = torch.Generator().manual_seed(0)
    state = {key[len(prefix):]: torch.randn(shape, generator=generator) for key, shape in shapes.items()
             if key.startswith(prefix)}
    head_dim = 192 // 3
    state["rope_embed.periods"] = 100.0 ** (2 * torch.arange(head_dim // 4) / (head_dim // 2))  # official formula
    torch.save(state, tmp_path / "vitt_distill.pt")
    backbone = backbone_of(build_detector("deimv2_s", 6, 128, {"backbone_weights": str(tmp_path / "vitt_distill.pt")}))
    ours = backbone.state_dict()
    qkv = state["blocks.5.attn.qkv.weight"]
    assert torch.equal(ours["model.layer.5.attention.q_proj.weight"], qkv[:192])
    assert torch.equal(ours["model.layer.5.attention.k_proj.weight"], qkv[192:384])
    assert torch.equal(ours["model.layer.5.attention.v_proj.weight"], qkv[384:])
    assert torch.equal(ours["model.layer.11.mlp.up_proj.weight"], state["blocks.11.mlp.fc1.weight"])
    assert torch.equal(ours["model.layer.0.mlp.down_proj.bias"], state["blocks.0.mlp.fc2.bias"])
    assert torch.equal(ours["embeddings.patch_embeddings.weight"], state["patch_embed.proj.weight"])
    assert torch.equal(ours["embeddings.cls_token"], state["cls_token"])
    assert len(state) == 4 + 12 * 12  # patch embed (2), cls token, periods; 12 tensors per block


def test_official_backbone_file_problems_fail_loudly(tmp_path):
    source = backbone_of(build_detector("deimv2_demo", 6, 128))
    with pytest.raises(FileNotFoundError, match="never trains from scratch silently"):
        build_detector("deimv2_demo", 6, 128, {"backbone_weights": str(tmp_path / "vitt_distill.pt")})
    state = official_layout(source, prefix="")
    del state["blocks.1.mlp.fc2.weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="model.layer.1.mlp.down_proj.weight"):
        build_detector("deimv2_demo", 6, 128, {"backbone_weights": str(tmp_path / "missing.pt")})
    state = official_layout(source) | {"_model.head.weight": torch.zeros(3)}
    torch.save(state, tmp_path / "unexpected.pt")
    with pytest.raises(ValueError, match="_model.head.weight"):
        build_detector("deimv2_demo", 6, 128, {"backbone_weights": str(tmp_path / "unexpected.pt")})
    torch.save(official_layout(source), tmp_path / "demo.pt")
    with pytest.raises(ValueError, match="shape mismatches"):
        build_detector("deimv2_s", 6, 128, {"backbone_weights": str(tmp_path / "demo.pt")})


@pytest.mark.parametrize("category_ids", [(1, 2), (3, 12)], ids=["1-based", "non-contiguous"])
def test_dataset_ids_become_zero_based_labels_and_come_back(tmp_path, category_ids):
    """The transformers loss indexes a one-hot of num_labels: ids 3 and 12 would fail there
    unless mapped to 0 and 1; the detections carry the dataset's ids again."""
    images, annotations = [], []
    for index in range(4):
        Image.new("RGB", (64, 64), (30 + 50 * index, 60, 90)).save(tmp_path / f"{index}.png")
        images.append({"id": 100 + index, "file_name": f"{index}.png", "width": 64, "height": 64})
        annotations.append({"id": index + 1, "image_id": 100 + index, "category_id": category_ids[index % 2],
                            "bbox": [8 + index, 10, 24, 20], "area": 480, "iscrowd": 0})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": f"c{i}"} for i in category_ids]}
    (tmp_path / "split.json").write_text(json.dumps(coco))
    split = SplitPaths(tmp_path / "split.json", tmp_path)
    train(architecture="deimv2_demo", model_settings={"num_queries": 20, "num_denoising": 4},
          train_settings={"epochs": 1, "batch_size": 2, "optimizer": "adamw", "lr": 1e-4, "warmup_iters": 0,
                          "augmentation": {"mixup": 1.0, "epochs": [0, 1, 1]}},
          train_split=split, val_split=split, resolution=64, seed=0, checkpoint_path=tmp_path / "best.pt",
          history_path=tmp_path / "history.csv", device="cpu", threads=1)
    adapter, categories, _ = load_checkpoint(tmp_path / "best.pt")
    dataset = CocoDetection(split)
    assert [dataset[i][1]["labels"].tolist() for i in range(2)] == [[0], [1]]
    detections = predict_dataset(adapter, dataset, torch.device("cpu"), batch_size=2)
    assert {d["category_id"] for d in detections} == set(category_ids)


def test_a_checkpoint_is_rebuilt_from_its_own_config_not_from_todays_variant_table(tmp_path, monkeypatch):
    from detstudy.study import architectures

    torch.manual_seed(0)
    adapter = build_detector("deimv2_demo", 2, 128, {"num_queries": 50, "num_denoising": 10})
    save_checkpoint(tmp_path / "best.pt", adapter, CategoryMap((1, 2), ("a", "b")))
    edited = {**architectures.VARIANTS["deimv2_demo"], "ffn": 128, "decoder_layers": 2}
    monkeypatch.setitem(architectures.VARIANTS, "deimv2_demo", edited)  # someone edits the table later
    loaded, _, _ = load_checkpoint(tmp_path / "best.pt")
    assert loaded.model.config.decoder_layers == 3 and loaded.model.config.decoder_ffn_dim == 256
    adapter.model.eval()
    image = [torch.rand(3, 64, 64)]
    assert torch.allclose(adapter.predict(image)[0]["scores"], loaded.predict(image)[0]["scores"])


def test_a_checkpoint_holds_every_training_setting_resolved(tmp_path):
    from detstudy.engine.settings import TrainSettings

    from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset

    paths = generate_synthetic_dataset(tmp_path / "data", seed=0, split_sizes={"train": 2, "val": 1, "test": 1}, image_size=64)
    data = {split: SplitPaths.of(**p) for split, p in paths.items()}
    train(architecture="deimv2_demo", model_settings={"num_queries": 20, "num_denoising": 10},
          train_settings={"epochs": 1, "batch_size": 2, "lr_schedule": "constant", "warmup_iters": 0},
          train_split=data["train"], val_split=data["val"], resolution=64, seed=0,
          checkpoint_path=tmp_path / "best.pt", history_path=tmp_path / "history.csv", device="cpu", threads=1)
    stored = load_checkpoint(tmp_path / "best.pt")[2]["train_settings"]
    assert stored["select_metric"] == TrainSettings().select_metric and stored["amp_dtype"] == "float16"
    assert set(stored) == set(TrainSettings().__dataclass_fields__)
    assert stored["augmentation"]["mosaic_cache"] == 50 and stored["augmentation"]["epochs"] == [0, 0, 1]
