"""The text-embeddings artefact: the class prompts encoded once by a frozen text encoder.

Two files: a safetensors matrix ``[classes, dim]`` (rows in the dataset's category order,
L2-normalised) and a JSON record of exactly what produced it (categories, prompts, encoder,
pooling), which the report shows.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from detstudy.tasks.detection.data.coco import CategoryMap, load_coco_json
from detstudy.engine.io import atomic_path, write_json
from detstudy.study.descriptions import load_descriptions, prompts_for

log = logging.getLogger("detstudy.text")


def text_embeddings(*, descriptions: str | Path, annotations: str | Path, encoder: dict[str, Any],
                    prompt: str, embeddings_path: str | Path, prompts_path: str | Path) -> dict[str, Any]:
    """Encode one prompt per category of ``annotations`` (the training split)."""
    from detstudy.tasks.detection.multimodal.text_encoder import encode_texts  # transformers only where it is needed

    categories = CategoryMap.from_coco(load_coco_json(annotations))
    names = list(categories.names)
    prompts = prompts_for(load_descriptions(descriptions), names, prompt, source=descriptions)
    embeddings, info = encode_texts(prompts, encoder["model"], pooling=encoder.get("pooling", "auto"),
                                    max_length=encoder.get("max_length"))
    record = {"categories": names, "prompts": prompts, "template": prompt, "descriptions": str(descriptions),
              "encoder": info, "shape": list(embeddings.shape),
              "cosine_similarity": [[round(v, 4) for v in row] for row in (embeddings @ embeddings.T).tolist()]}
    with atomic_path(embeddings_path) as tmp:
        save_file({"embeddings": embeddings.contiguous()}, str(tmp),
                  metadata={"categories": json.dumps(names), "encoder": info["model"]})
    write_json(prompts_path, record)
    for name, text in zip(names, prompts):
        log.info("%s: %s", name, text)
    log.info("%d x %d embeddings from %s (%s pooling)", *embeddings.shape, info["model"], info["pooling"])
    return record


def read_class_embeddings(path: str | Path, category_names: list[str]) -> torch.Tensor:
    """The matrix, checked against the detector's categories (same classes, same order)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        stored = json.loads(handle.metadata()["categories"])
    if stored != list(category_names):
        raise ValueError(f"{path}: embeddings for categories {stored}, but the detector has {list(category_names)}. "
                         "Fix: rerun the text_embeddings rule on this dataset.")
    return load_file(str(path))["embeddings"]
