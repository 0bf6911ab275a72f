"""Frozen text encoder: class descriptions -> L2-normalised embeddings (MiniLM-style or CLIP text towers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

POOLINGS = ("auto", "mean", "cls", "projection")
CLIP_TYPES = ("clip", "clip_text_model")


def resolve_model_source(name: str) -> str:
    """'package:<module>/<subfolder>' -> folder inside that installed package; local path -> absolute; else hub id."""
    if name.startswith("package:"):
        module, _, sub = name[len("package:"):].partition("/")
        # find_spec locates the package without importing it (its __init__ may pull heavy deps).
        spec = importlib.util.find_spec(module) if module else None
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"text model {name!r}: Python package {module!r} is not installed (or not a package "
                             f"folder); pip install {module.replace('_', '-')}, or give a local folder or hub id")
        folder = Path(next(iter(spec.submodule_search_locations))) / sub
        if not sub or not folder.is_dir():
            raise ValueError(f"text model {name!r}: no subfolder {sub!r} in package {module!r} ({folder}); "
                             f"use 'package:{module}/<folder holding config.json>'")
        return str(folder.resolve())
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser().resolve())
    return name


def _load(resolved: str, config, clip: bool, projection: bool):
    from transformers import AutoModel, CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    from transformers.utils import logging as hf_logging

    if clip:
        cls = CLIPTextModelWithProjection if projection else CLIPTextModel
        kwargs = {}
        if hasattr(config, "text_config"):
            # Full CLIPModel checkpoint: transformers 5.23 extracts text_config by itself but keeps its own
            # projection_dim (default 512) instead of the top-level one -> size-mismatch error. Pass it explicitly.
            text = config.text_config.to_dict()
            kwargs["config"] = CLIPTextConfig(**{**text, "projection_dim": config.projection_dim})
    else:
        cls, kwargs = AutoModel, {}
    # The load report would list every vision-tower weight of a full CLIP as UNEXPECTED; we check the
    # keys that matter (missing = randomly initialised) ourselves below.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = cls.from_pretrained(resolved, dtype=torch.float32, output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    if info["missing_keys"]:
        hint = " (pooling='projection' needs a CLIP checkpoint with text_projection)" if projection else ""
        raise ValueError(f"text model {resolved!r}: weights missing from the checkpoint would be randomly "
                         f"initialised: {sorted(info['missing_keys'])}{hint}")
    return model.eval()


def encode_texts(texts: list[str], model: str, *, pooling: str = "auto", max_length: int | None = None,
                 batch_size: int = 32) -> tuple[torch.Tensor, dict]:
    """Embed texts with a frozen encoder -> ([len(texts), dim] float32 CPU, unit rows; info dict)."""
    from transformers import AutoConfig, AutoTokenizer

    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    resolved = resolve_model_source(model)
    try:
        config = AutoConfig.from_pretrained(resolved)
        tokenizer = AutoTokenizer.from_pretrained(resolved)
    except OSError as err:
        raise ValueError(f"text model {model!r} (resolved {resolved!r}) could not be loaded: {err}. Without internet "
                         "(HF_HUB_OFFLINE=1) download the model to a local folder and give its path, or use "
                         "'package:<module>/<subfolder>' for a model shipped as a Python package") from err
    clip = config.model_type in CLIP_TYPES
    if pooling == "projection" and not clip:
        raise ValueError(f"text model {model!r} is a {config.model_type!r} model without a text projection; "
                         "pooling='projection' needs a CLIP text tower, use 'auto', 'mean' or 'cls'")
    used = ("projection" if clip else "mean") if pooling == "auto" else pooling
    net = _load(resolved, config, clip, used == "projection")

    text_config = getattr(config, "text_config", config)
    if max_length is None:  # The tokenizer's limit is often a 1e30 sentinel; positions are the hard limit.
        max_length = min(tokenizer.model_max_length, 512, getattr(text_config, "max_position_embeddings", 512))
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
            # CLIP text towers take no token_type_ids (a BERT tokenizer next to a CLIP model would add them).
            inputs = {k: enc[k] for k in ("input_ids", "attention_mask")} if clip else dict(enc)
            out = net(**inputs)
            if used == "projection":
                emb = out.text_embeds
            elif used == "cls":
                emb = out.last_hidden_state[:, 0]
            else:  # Mean over real tokens only (sentence-transformers convention), padding excluded.
                mask = enc["attention_mask"].unsqueeze(-1).to(out.last_hidden_state.dtype)
                emb = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(emb.float())
    dim = net.config.projection_dim if used == "projection" else net.config.hidden_size
    emb = torch.cat(chunks) if chunks else torch.zeros(0, dim)
    emb = torch.nn.functional.normalize(emb, dim=1).cpu()
    info = {"model": model, "resolved": resolved, "model_type": config.model_type, "pooling": used, "dim": dim}
    return emb, info
